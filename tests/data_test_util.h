// Helpers for the tests (data/ tests first): a temporary folder removed at exit, byte
// writers (raw and gzip), and images of a data set read back as bytes for exact comparison.
#pragma once
#include <zlib.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace data_test {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

// A fresh folder under the system temp dir, removed when the object goes.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& tag) {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("macer_test_data_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

inline void write_bytes(const std::string& path, const Bytes& b) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

inline void write_gz(const std::string& path, const Bytes& b) {
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, b.data(), unsigned(b.size()));
  gzclose(f);
}

inline Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

inline void put_be32(Bytes& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(uint8_t(v >> s));
}

// Image i of `ds` as bytes (round(v * 255)); every reader here stores bytes, so this is exact.
inline Bytes image_bytes(const macer::data::Dataset& ds, int64_t i) {
  std::vector<float> f(size_t(ds.image_numel()));
  ds.image(i, f.data());
  Bytes b(f.size());
  for (size_t k = 0; k < f.size(); ++k) b[k] = uint8_t(std::lround(f[k] * 255.0f));
  return b;
}

}  // namespace data_test
