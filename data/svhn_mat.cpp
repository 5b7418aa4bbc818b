// SVHN cropped digits (train_32x32.mat, test_32x32.mat): X is uint8 32x32x3xN in MATLAB's
// column-major order, y is Nx1 with label 10 meaning digit 0. Part of data/, over mat5.h.
#include <cmath>
#include <string>
#include <vector>

#include "data/formats.h"
#include "data/in_memory.h"
#include "data/io.h"
#include "data/mat5.h"
#include "kernels/check.h"

namespace macer::data {

namespace {

const mat5::Array& variable(const std::vector<mat5::Array>& arrays, const std::string& name, const std::string& path) {
  for (const auto& a : arrays)
    if (a.name == name) return a;
  MACER_CHECK(false, path << ": no numeric variable '" << name << "' (expected X and y of SVHN)");
  return arrays.front();  // not reached
}

}  // namespace

std::unique_ptr<Dataset> open_svhn(const std::string& dir, const std::string& split, const DatasetOptions&) {
  const std::string path = io::join(dir, split + "_32x32.mat");
  std::vector<mat5::Array> arrays = mat5::read_file(path);
  const mat5::Array& x = variable(arrays, "X", path);
  const mat5::Array& y = variable(arrays, "y", path);

  // X: 32 x 32 x 3 x N (MATLAB drops a trailing singleton, so N = 1 reads as 32 x 32 x 3).
  std::vector<int64_t> d = x.dims;
  if (d.size() == 3) d.push_back(1);
  MACER_CHECK(d.size() == 4 && d[0] == 32 && d[1] == 32 && d[2] == 3 && !x.complex,
              path << ": X has dimensions " << [&] {
                std::string s;
                for (size_t k = 0; k < x.dims.size(); ++k) s += (k ? "x" : "") + std::to_string(x.dims[k]);
                return s;
              }() << " (expected real 32x32x3xN)");
  const int64_t n = d[3];
  MACER_CHECK(n > 0, path << ": X holds no images");
  MACER_CHECK(y.numel() == n && !y.complex && (y.dims.size() == 2 && (y.dims[0] == 1 || y.dims[1] == 1)),
              path << ": y holds " << y.numel() << " labels for " << n << " images (expected an Nx1 vector)");

  std::vector<int32_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    double v = y.value(i);
    MACER_CHECK(v >= 0 && v <= 10 && v == std::floor(v),
                path << ": label " << v << " of image " << i << " (expected 1..10, 10 meaning digit 0)");
    labels[size_t(i)] = int32_t(v) % 10;
  }

  // Column-major X(r, c, ch, i) sits at r + 32 c + 1024 ch + 3072 i; the dataset wants
  // row-major CHW per image, out[i][ch][r][c]: each 32x32 plane is transposed.
  // uint8 storage (the official files) is read in place; other storage is converted first.
  std::vector<uint8_t> converted;
  if (x.data_type != mat5::miUINT8) converted = x.to_u8(path + ": X");
  const uint8_t* src = x.data_type == mat5::miUINT8 ? x.real() : converted.data();
  std::vector<uint8_t> pixels(size_t(n) * 3072);
  for (int64_t i = 0; i < n; ++i)
    for (int ch = 0; ch < 3; ++ch) {
      const uint8_t* plane = src + size_t(i) * 3072 + size_t(ch) * 1024;
      uint8_t* out = pixels.data() + size_t(i) * 3072 + size_t(ch) * 1024;
      for (int r = 0; r < 32; ++r)
        for (int c = 0; c < 32; ++c) out[r * 32 + c] = plane[r + 32 * c];
    }
  // The digits, label d for digit d (the .mat files' label 10 for '0' is mapped to 0 above).
  std::vector<std::string> names;
  for (int d = 0; d < 10; ++d) names.push_back(std::to_string(d));
  return std::make_unique<InMemoryDataset>("svhn", 3, 32, 32, 10, std::move(pixels), std::move(labels),
                                           std::move(names));
}

}  // namespace macer::data
