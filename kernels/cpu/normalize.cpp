// CPU reference of the input normalization (kernels/normalize.h): plain loops over (N, C, HW).
#include "kernels/normalize.h"

namespace macer::kernels::cpu {

void normalize_forward(const NormalizeShape& s, const float* x, float* y) {
  for (int64_t i = 0; i < s.n; ++i)
    for (int c = 0; c < s.c; ++c) {
      const int64_t base = (i * s.c + c) * s.hw;
      for (int64_t j = 0; j < s.hw; ++j) y[base + j] = (x[base + j] - s.mean[c]) / s.std[c];
    }
}

void normalize_backward(const NormalizeShape& s, const float* dy, float* dx) {
  for (int64_t i = 0; i < s.n; ++i)
    for (int c = 0; c < s.c; ++c) {
      const int64_t base = (i * s.c + c) * s.hw;
      for (int64_t j = 0; j < s.hw; ++j) dx[base + j] += dy[base + j] / s.std[c];
    }
}

}  // namespace macer::kernels::cpu
