// A reader for MATLAB level-5 .mat files (the format SVHN ships in): the 128-byte header,
// then data elements; miMATRIX numeric arrays, plain or inside miCOMPRESSED (zlib). Part of data/.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace macer::data::mat5 {

// Data types of element tags (the MAT-file format reference, table 1-1).
enum : uint32_t {
  miINT8 = 1, miUINT8 = 2, miINT16 = 3, miUINT16 = 4, miINT32 = 5, miUINT32 = 6,
  miSINGLE = 7, miDOUBLE = 9, miINT64 = 12, miUINT64 = 13, miMATRIX = 14, miCOMPRESSED = 15,
};
// Array classes of miMATRIX array flags; only the numeric ones (6..15) are read.
enum : int { mxDOUBLE_CLASS = 6, mxSINGLE_CLASS = 7, mxUINT8_CLASS = 9, mxUINT64_CLASS = 15 };

// One numeric variable. Its real part is kept as stored (any numeric miTYPE, little-endian),
// in the file's or the inflated element's buffer, without a copy.
struct Array {
  std::string name;
  int mx_class = 0;
  bool complex = false;
  std::vector<int64_t> dims;  // MATLAB order: column-major, first index fastest
  uint32_t data_type = 0;     // miTYPE of the stored real part
  std::shared_ptr<const std::vector<uint8_t>> buffer;
  size_t offset = 0, nbytes = 0;  // the real part within *buffer

  int64_t numel() const;
  const uint8_t* real() const { return buffer->data() + offset; }
  double value(int64_t k) const;  // element k of the real part, any stored type
  // The real part as bytes; throws "<what>: value v at k is not an integer in 0..255" otherwise.
  std::vector<uint8_t> to_u8(const std::string& what) const;
  std::vector<double> to_f64() const;
};

// Every numeric array variable in the file at `path` (cells, structs, chars, sparse arrays
// are skipped). Throws one macer::Error naming the file on anything malformed.
std::vector<Array> read_file(const std::string& path);
// The same over bytes already in memory; `path` only names them in errors.
std::vector<Array> parse(std::shared_ptr<const std::vector<uint8_t>> bytes, const std::string& path);

// Size in bytes of one value of numeric miTYPE `t`, 0 for a non-numeric type.
size_t type_size(uint32_t t);

}  // namespace macer::data::mat5
