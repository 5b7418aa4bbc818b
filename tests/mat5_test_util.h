// A small MATLAB level-5 .mat writer for the data/ tests (test_data_svhn.cpp, test_fuzz_data.cpp):
// data elements (small or tagged), miMATRIX variables, miCOMPRESSED wrapping and the 128-byte header.
#pragma once
#include <zlib.h>

#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

#include "data/mat5.h"
#include "data_test_util.h"

namespace data_test {

namespace m5 = macer::data::mat5;

inline void put_le32(Bytes& b, uint32_t v) {
  for (int s = 0; s < 32; s += 8) b.push_back(uint8_t(v >> s));
}

// A data element: the small format when it fits in 4 bytes (and `small`), else tag + padded data.
inline Bytes element(uint32_t type, const Bytes& data, bool small = true) {
  Bytes b;
  if (small && data.size() <= 4) {
    put_le32(b, type | uint32_t(data.size()) << 16);
    b.insert(b.end(), data.begin(), data.end());
    b.resize(8, 0);
    return b;
  }
  put_le32(b, type);
  put_le32(b, uint32_t(data.size()));
  b.insert(b.end(), data.begin(), data.end());
  b.resize((b.size() + 7) / 8 * 8, 0);
  return b;
}

// An miMATRIX element: array flags, dimensions, name, real part stored as `data_type`.
inline Bytes matrix(const std::string& name, int mx_class, const std::vector<int32_t>& dims, uint32_t data_type,
                    const Bytes& real) {
  Bytes flags, d, inner;
  put_le32(flags, uint32_t(mx_class));
  put_le32(flags, 0);
  for (int32_t v : dims) put_le32(d, uint32_t(v));
  for (const Bytes& e : {element(m5::miUINT32, flags, false), element(m5::miINT32, d, false),
                         element(m5::miINT8, Bytes(name.begin(), name.end())), element(data_type, real)})
    inner.insert(inner.end(), e.begin(), e.end());
  return element(m5::miMATRIX, inner, false);
}

// An miCOMPRESSED element holding `elem` (no padding, as MATLAB and scipy write it).
inline Bytes compressed(const Bytes& elem) {
  uLongf n = compressBound(uLong(elem.size()));
  Bytes z(n);
  compress2(z.data(), &n, elem.data(), uLong(elem.size()), 6);
  z.resize(n);
  Bytes b;
  put_le32(b, m5::miCOMPRESSED);
  put_le32(b, uint32_t(z.size()));
  b.insert(b.end(), z.begin(), z.end());
  return b;
}

// The 128-byte header: text, subsystem offset, version and endian indicator.
inline Bytes header(const std::string& text = "MATLAB 5.0 MAT-file, Platform: test, written by macer tests",
                    uint16_t version = 0x0100, const char* endian = "IM") {
  Bytes b(text.begin(), text.end());
  b.resize(116, ' ');
  b.resize(124, 0);  // subsystem data offset
  b.push_back(uint8_t(version & 0xff));
  b.push_back(uint8_t(version >> 8));
  b.push_back(uint8_t(endian[0]));
  b.push_back(uint8_t(endian[1]));
  return b;
}

inline Bytes doubles(const std::vector<double>& v) {
  Bytes b(v.size() * 8);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

inline Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes b;
  for (const Bytes& p : parts) b.insert(b.end(), p.begin(), p.end());
  return b;
}

}  // namespace data_test
