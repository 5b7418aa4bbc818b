// CPU reference of the elementwise ops (kernels/elementwise.h): plain loops.
#include "kernels/elementwise.h"

namespace macer::kernels::cpu {

void relu_forward(int64_t n, const float* x, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void relu_backward(int64_t n, const float* y, const float* dy, float* dx) {
  for (int64_t i = 0; i < n; ++i)
    if (y[i] > 0.0f) dx[i] += dy[i];
}

void add_forward(int64_t n, const float* a, const float* b, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

void accumulate(int64_t n, const float* src, float* dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}

void fill(int64_t n, float value, float* dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] = value;
}

void scale(int64_t n, float alpha, float* dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] *= alpha;
}

}  // namespace macer::kernels::cpu
