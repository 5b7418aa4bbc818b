// A synthetic data set for tests and benches: per class a smooth mean pattern, per image
// that pattern plus Gaussian noise; deterministic from the seed and learnable. Part of data/.
#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "data/formats.h"
#include "data/in_memory.h"
#include "data/seed.h"
#include "kernels/check.h"

namespace macer::data {

namespace {

constexpr int kGrid = 4;            // each class pattern is a bilinear 4x4 grid per channel
constexpr double kNoise = 0.15;     // per-pixel noise standard deviation
constexpr double kPi = 3.14159265358979323846;

// Uniform in [0, 1) from 53 bits, identical on every standard library.
double unit(std::mt19937_64& rng) { return double(rng() >> 11) * 0x1.0p-53; }

// A standard normal by Box-Muller (std::normal_distribution differs between libraries).
double normal(std::mt19937_64& rng) {
  double u1 = 1.0 - unit(rng), u2 = unit(rng);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * kPi * u2);
}

// The mean image of every class, (classes, C, H, W), values in [0.2, 0.8].
std::vector<double> class_patterns(const DatasetOptions& o) {
  const int c = o.synthetic_channels, h = o.synthetic_height, w = o.synthetic_width;
  std::mt19937_64 rng(mix_seed(o.seed, kSyntheticSalt, 0));
  std::vector<double> means(size_t(o.synthetic_classes) * c * h * w);
  std::vector<double> grid(kGrid * kGrid);
  for (int k = 0; k < o.synthetic_classes; ++k)
    for (int ch = 0; ch < c; ++ch) {
      for (double& g : grid) g = 0.2 + 0.6 * unit(rng);
      double* plane = means.data() + (size_t(k) * c + ch) * h * w;
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
          // Bilinear interpolation of the grid at the pixel's position.
          double gy = h > 1 ? double(y) * (kGrid - 1) / (h - 1) : 0, gx = w > 1 ? double(x) * (kGrid - 1) / (w - 1) : 0;
          int y0 = std::min(int(gy), kGrid - 2), x0 = std::min(int(gx), kGrid - 2);
          double fy = gy - y0, fx = gx - x0;
          double top = grid[y0 * kGrid + x0] * (1 - fx) + grid[y0 * kGrid + x0 + 1] * fx;
          double bot = grid[(y0 + 1) * kGrid + x0] * (1 - fx) + grid[(y0 + 1) * kGrid + x0 + 1] * fx;
          plane[y * w + x] = top * (1 - fy) + bot * fy;
        }
    }
  return means;
}

}  // namespace

std::unique_ptr<Dataset> open_synthetic(const std::string&, const std::string& split, const DatasetOptions& o) {
  MACER_CHECK(o.synthetic_size > 0 && o.synthetic_size <= 10'000'000,
              "synthetic: size " << o.synthetic_size << " outside 1..10000000");
  MACER_CHECK(o.synthetic_channels >= 1 && o.synthetic_channels <= 4 && o.synthetic_height >= 1 &&
                  o.synthetic_height <= 1024 && o.synthetic_width >= 1 && o.synthetic_width <= 1024,
              "synthetic: bad image shape " << o.synthetic_channels << "x" << o.synthetic_height << "x"
                                            << o.synthetic_width);
  MACER_CHECK(o.synthetic_classes >= 2 && o.synthetic_classes <= 1000,
              "synthetic: class count " << o.synthetic_classes << " outside 2..1000");
  const int64_t n = o.synthetic_size;
  const size_t numel = size_t(o.synthetic_channels) * o.synthetic_height * o.synthetic_width;
  const std::vector<double> means = class_patterns(o);
  const uint64_t split_key = split == "train" ? 1 : 2;

  std::vector<uint8_t> pixels(size_t(n) * numel);
  std::vector<int32_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    // One stream per image, so image i is the same whatever the set's size.
    std::mt19937_64 rng(mix_seed(o.seed ^ kSyntheticSalt, split_key, uint64_t(i)));
    const int32_t label = int32_t(rng() % uint64_t(o.synthetic_classes));
    labels[size_t(i)] = label;
    const double* mean = means.data() + size_t(label) * numel;
    uint8_t* out = pixels.data() + size_t(i) * numel;
    for (size_t k = 0; k < numel; ++k) {
      double v = mean[k] + kNoise * normal(rng);
      out[k] = uint8_t(std::lround(std::min(1.0, std::max(0.0, v)) * 255.0));
    }
  }
  return std::make_unique<InMemoryDataset>("synthetic", o.synthetic_channels, o.synthetic_height,
                                           o.synthetic_width, o.synthetic_classes, std::move(pixels),
                                           std::move(labels));
}

}  // namespace macer::data
