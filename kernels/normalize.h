// Per-channel input normalization, the first op of a model (after the noise, as Cohen's
// NormalizeLayer): y = (x - mean[c]) / std[c] over NC(HW) tensors. CPU and CUDA behind one API.
#pragma once
#include <cstdint>

namespace macer::kernels {

constexpr int kMaxNormalizeChannels = 8;

// x is (N, C, HW) in memory; mean and std are passed by value (no device buffers), so a launch
// needs no allocation and no copy.
struct NormalizeShape {
  int64_t n = 0;
  int c = 0;
  int64_t hw = 0;
  float mean[kMaxNormalizeChannels] = {};
  float std[kMaxNormalizeChannels] = {};
};

// normalize_forward:  y = (x - mean[c]) / std[c]
// normalize_backward: dx += dy / std[c]          (dy/dx is diagonal: 1 / std of x's channel)
#define MACER_NORMALIZE_API                                                          \
  void normalize_forward(const NormalizeShape& s, const float* x, float* y);        \
  void normalize_backward(const NormalizeShape& s, const float* dy, float* dx);

namespace cpu { MACER_NORMALIZE_API }
namespace cuda { MACER_NORMALIZE_API }
#undef MACER_NORMALIZE_API

}  // namespace macer::kernels
