// data/resize.h: Pillow's Resample.c (precompute_coeffs, normalize_coeffs_8bpc,
// ImagingResampleHorizontal_8bpc / Vertical_8bpc) for RGB images and the bilinear filter.
#include "data/resize.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <cstdint>
#include <utility>
#include <vector>

#include "kernels/check.h"

namespace macer::data {

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // Pillow's PRECISION_BITS

// Per output pixel: the first input index, the count, and `ksize` fixed-point weights.
struct Coeffs {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> k;  // (out, ksize)
};

double triangle(double x) {
  x = std::abs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

// precompute_coeffs with box (0, in_size) and the bilinear filter (support 1), then
// normalize_coeffs_8bpc.
Coeffs coefficients(int in_size, int out_size) {
  const double scale = double(float(in_size)) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = 1.0 * filterscale;
  Coeffs c;
  c.ksize = int(std::ceil(support)) * 2 + 1;
  c.first.resize(size_t(out_size));
  c.count.resize(size_t(out_size));
  c.k.assign(size_t(out_size) * c.ksize, 0);
  std::vector<double> w(size_t(c.ksize));
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale, ss = 1.0 / filterscale;
    const int xmin = std::max(int(center - support + 0.5), 0);
    const int xmax = std::min(int(center + support + 0.5), in_size) - xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[size_t(x)] = triangle((x + xmin - center + 0.5) * ss);
      ww += w[size_t(x)];
    }
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? w[size_t(x)] / ww : w[size_t(x)];
      c.k[size_t(xx) * c.ksize + x] = int32_t(v < 0 ? -0.5 + v * (1 << kPrecisionBits) : 0.5 + v * (1 << kPrecisionBits));
    }
    c.first[size_t(xx)] = xmin;
    c.count[size_t(xx)] = xmax;
  }
  return c;
}

uint8_t clip8(int64_t in) {
  if (in >= (int64_t(1) << kPrecisionBits << 8)) return 255;
  if (in <= 0) return 0;
  return uint8_t(in >> kPrecisionBits);
}

}  // namespace

std::pair<int, int> resized_shorter_side(int width, int height, int size) {
  if (width <= height) return {size, int(double(size) * height / width)};
  return {int(double(size) * width / height), size};
}

RgbImage resize_bilinear_pil(const RgbImage& in, int out_w, int out_h) {
  MACER_CHECK(out_w >= 1 && out_h >= 1 && in.width >= 1 && in.height >= 1,
              "resize from " << in.width << "x" << in.height << " to " << out_w << "x" << out_h);
  if (out_w == in.width && out_h == in.height) return in;
  const Coeffs ch = coefficients(in.width, out_w), cv = coefficients(in.height, out_h);
  // Horizontal pass over the rows the vertical pass reads (all rows when the height stays).
  const bool vertical = out_h != in.height;
  const int y_first = vertical ? cv.first[0] : 0;
  const int y_last = vertical ? cv.first[size_t(out_h - 1)] + cv.count[size_t(out_h - 1)] : in.height;
  RgbImage tmp;
  const RgbImage* src = &in;
  if (out_w != in.width) {
    tmp.width = out_w, tmp.height = y_last - y_first;
    tmp.pixels.resize(size_t(tmp.width) * tmp.height * 3);
    for (int y = 0; y < tmp.height; ++y) {
      const uint8_t* row = in.pixels.data() + size_t(y + y_first) * in.width * 3;
      uint8_t* out = tmp.pixels.data() + size_t(y) * out_w * 3;
      for (int xx = 0; xx < out_w; ++xx) {
        const int32_t* k = ch.k.data() + size_t(xx) * ch.ksize;
        const uint8_t* p = row + size_t(ch.first[size_t(xx)]) * 3;
        int64_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
        for (int x = 0; x < ch.count[size_t(xx)]; ++x) {
          s0 += int64_t(p[3 * x]) * k[x];
          s1 += int64_t(p[3 * x + 1]) * k[x];
          s2 += int64_t(p[3 * x + 2]) * k[x];
        }
        out[3 * xx] = clip8(s0), out[3 * xx + 1] = clip8(s1), out[3 * xx + 2] = clip8(s2);
      }
    }
    src = &tmp;
  }
  if (!vertical) return src == &tmp ? tmp : *src;
  RgbImage res;
  res.width = out_w, res.height = out_h;
  res.pixels.resize(size_t(out_w) * out_h * 3);
  const int row0 = src == &tmp ? y_first : 0;  // tmp starts at input row y_first
  for (int yy = 0; yy < out_h; ++yy) {
    const int32_t* k = cv.k.data() + size_t(yy) * cv.ksize;
    const int ymin = cv.first[size_t(yy)] - row0, ymax = cv.count[size_t(yy)];
    uint8_t* out = res.pixels.data() + size_t(yy) * out_w * 3;
    for (int i = 0; i < out_w * 3; ++i) {
      int64_t s = 1 << (kPrecisionBits - 1);
      for (int y = 0; y < ymax; ++y) s += int64_t(src->pixels[size_t(ymin + y) * out_w * 3 + size_t(i)]) * k[y];
      out[i] = clip8(s);
    }
  }
  return res;
}

}  // namespace macer::data

namespace macer::data {

CropBox random_resized_crop_box(int width, int height, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto uniform = [&](double lo, double hi) { return lo + (hi - lo) * double(rng() >> 11) * 0x1.0p-53; };
  const double area = double(width) * height, log_lo = std::log(3.0 / 4.0), log_hi = std::log(4.0 / 3.0);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * uniform(0.08, 1.0), ratio = std::exp(uniform(log_lo, log_hi));
    const int w = int(std::nearbyint(std::sqrt(target * ratio))), h = int(std::nearbyint(std::sqrt(target / ratio)));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      CropBox b;
      b.top = int(rng() % uint64_t(height - h + 1)), b.left = int(rng() % uint64_t(width - w + 1));
      b.height = h, b.width = w;
      return b;
    }
  }
  CropBox b;  // fallback: central crop of the whole image at the nearest allowed ratio
  const double in_ratio = double(width) / height;
  b.width = width, b.height = height;
  if (in_ratio < 3.0 / 4.0) {
    b.height = int(std::nearbyint(width / (3.0 / 4.0)));
  } else if (in_ratio > 4.0 / 3.0) {
    b.width = int(std::nearbyint(height * (4.0 / 3.0)));
  }
  b.top = (height - b.height) / 2, b.left = (width - b.width) / 2;
  return b;
}

RgbImage crop(const RgbImage& in, const CropBox& box) {
  MACER_CHECK(box.top >= 0 && box.left >= 0 && box.height >= 1 && box.width >= 1 && box.top + box.height <= in.height &&
                  box.left + box.width <= in.width,
              "crop box outside the image");
  RgbImage out;
  out.width = box.width, out.height = box.height;
  out.pixels.resize(size_t(box.width) * box.height * 3);
  for (int y = 0; y < box.height; ++y)
    std::copy_n(in.pixels.data() + (size_t(box.top + y) * in.width + size_t(box.left)) * 3, size_t(box.width) * 3,
                out.pixels.data() + size_t(y) * box.width * 3);
  return out;
}

}  // namespace macer::data
