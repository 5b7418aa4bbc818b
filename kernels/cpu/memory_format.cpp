// CPU reorders between (N,C,H,W) and (N,H,W,C) (kernels/memory_format.h): per image, a
// transpose of its (C, HW) matrix in 16 x 16 tiles, so reads and writes both stay in cache lines.
#include "kernels/memory_format.h"

#include <algorithm>

#include "kernels/cpu/parallel.h"

namespace macer::kernels::cpu {

namespace {

constexpr int64_t kTile = 16;

// dst (cols x rows) = transpose of src (rows x cols), or dst += it; both row-major.
void transpose(int64_t rows, int64_t cols, const float* src, float* dst, bool accumulate) {
  for (int64_t r0 = 0; r0 < rows; r0 += kTile)
    for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
      const int64_t r1 = std::min(rows, r0 + kTile), c1 = std::min(cols, c0 + kTile);
      for (int64_t c = c0; c < c1; ++c) {
        float* d = dst + c * rows;
        if (accumulate)
          for (int64_t r = r0; r < r1; ++r) d[r] += src[r * cols + c];
        else
          for (int64_t r = r0; r < r1; ++r) d[r] = src[r * cols + c];
      }
    }
}

// Each image's (rows x cols) matrix transposed; images split over the threads, or, for a batch
// smaller than the threads, rows of one image at a time.
void transpose_images(int64_t n, int64_t rows, int64_t cols, const float* src, float* dst, bool accumulate) {
  const int64_t image = rows * cols;
  if (n >= max_threads() || n == 0) {
    parallel_for(n, image, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) transpose(rows, cols, src + i * image, dst + i * image, accumulate);
    });
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    const float* s = src + i * image;
    float* d = dst + i * image;
    // Tiles of source rows per thread: each writes its own columns of every destination row.
    const int64_t tiles = (rows + kTile - 1) / kTile;
    parallel_for(tiles, kTile * cols, [&](int64_t t0, int64_t t1) {
      const int64_t r0 = t0 * kTile, r1 = std::min(rows, t1 * kTile);
      for (int64_t c = 0; c < cols; ++c)
        for (int64_t r = r0; r < r1; ++r) {
          float& out = d[c * rows + r];
          out = accumulate ? out + s[r * cols + c] : s[r * cols + c];
        }
    });
  }
}

}  // namespace

void to_channels_last(int64_t n, int64_t c, int64_t hw, const float* src, float* dst, bool accumulate) {
  transpose_images(n, c, hw, src, dst, accumulate);  // per image: (C, HW) -> (HW, C)
}

void to_contiguous(int64_t n, int64_t c, int64_t hw, const float* src, float* dst, bool accumulate) {
  transpose_images(n, hw, c, src, dst, accumulate);  // per image: (HW, C) -> (C, HW)
}

}  // namespace macer::kernels::cpu
