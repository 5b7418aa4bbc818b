// File helpers for the data set readers (see io.h): whole-file reads, raw or gzip through
// zlib's gzopen/gzread, with every error naming the file. Internal to data/.
#include "data/io.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "kernels/check.h"

namespace macer::data::io {

namespace fs = std::filesystem;

std::string join(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return (fs::path(dir) / name).string();
}

bool is_file(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

bool is_dir(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

namespace {

void check_openable(const std::string& path) {
  std::error_code ec;
  MACER_CHECK(fs::exists(path, ec), path << ": cannot open (no such file)");
  MACER_CHECK(!fs::is_directory(path, ec), path << ": cannot open (is a directory)");
}

}  // namespace

std::vector<uint8_t> read_file(const std::string& path) {
  check_openable(path);
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  MACER_CHECK(in, path << ": cannot open (" << std::strerror(errno) << ")");
  std::streamoff size = in.tellg();
  MACER_CHECK(size >= 0, path << ": cannot determine file size");
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  in.seekg(0);
  if (size > 0) in.read(reinterpret_cast<char*>(bytes.data()), size);
  MACER_CHECK(in.good() || (in.eof() && in.gcount() == size), path << ": read failed");
  return bytes;
}

std::vector<uint8_t> read_file_gz(const std::string& path) {
  check_openable(path);
  if (path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0) {
    // zlib would read a file without the gzip magic as raw bytes; a .gz that is not gzip is a
    // mistake worth naming.
    unsigned char magic[2] = {0, 0};
    std::ifstream in(path, std::ios::binary);
    in.read(reinterpret_cast<char*>(magic), 2);
    MACER_CHECK(in.gcount() == 2 && magic[0] == 0x1f && magic[1] == 0x8b,
                path << ": not gzip (no gzip header; a raw file should not end in .gz)");
  }
  gzFile f = gzopen(path.c_str(), "rb");
  MACER_CHECK(f != nullptr, path << ": cannot open (" << std::strerror(errno) << ")");
  std::vector<uint8_t> out;
  std::vector<uint8_t> chunk(1 << 20);
  std::string failure;
  for (;;) {
    int n = gzread(f, chunk.data(), unsigned(chunk.size()));
    if (n < 0) break;  // the error is read below
    if (n == 0) break;
    out.insert(out.end(), chunk.begin(), chunk.begin() + n);
  }
  int err = Z_OK;
  const char* msg = gzerror(f, &err);
  // Z_BUF_ERROR at the end means the gzip stream stopped early (a truncated file).
  if (err != Z_OK && err != Z_STREAM_END) failure = msg ? msg : "unknown zlib error";
  gzclose_r(f);
  MACER_CHECK(failure.empty(), path << ": corrupt or truncated gzip data (" << failure << ")");
  return out;
}

std::string find_file(const std::string& dir, const std::vector<std::string>& candidates,
                      const std::string& what) {
  for (const auto& name : candidates) {
    std::string p = join(dir, name);
    if (is_file(p)) return p;
  }
  std::ostringstream os;
  for (size_t i = 0; i < candidates.size(); ++i) os << (i ? ", " : "") << candidates[i];
  MACER_CHECK(false, join(dir, candidates.empty() ? "" : candidates[0])
                         << ": " << what << " not found (looked in " << (dir.empty() ? "." : dir) << " for "
                         << os.str() << ")");
  return {};
}

}  // namespace macer::data::io
