// File helpers for the data set readers: whole-file reads (raw, or gzip through zlib), path
// joins and big/little-endian integers. Internal to data/; every error names the file.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace macer::data::io {

std::string join(const std::string& dir, const std::string& name);
bool is_file(const std::string& path);
bool is_dir(const std::string& path);

// The whole file; throws "<path>: cannot open (<reason>)" or "<path>: read failed".
std::vector<uint8_t> read_file(const std::string& path);
// The whole file, decompressed when it is gzip data, as is otherwise (zlib's gzread).
// A truncated or corrupt gzip stream throws "<path>: corrupt or truncated gzip data (...)"; a
// name ending in .gz whose bytes are not gzip throws "<path>: not gzip (...)".
std::vector<uint8_t> read_file_gz(const std::string& path);

// The first of `candidates` that is a file; else throws "<what>: not found in <dir> (looked for ...)".
std::string find_file(const std::string& dir, const std::vector<std::string>& candidates, const std::string& what);

inline uint32_t be32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

}  // namespace macer::data::io
