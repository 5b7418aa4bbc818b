// CPU reference of the linear layer (kernels/linear.h) through OpenBLAS sgemm, row-major:
// y = x W^T + b, dx += dy W, dW += dy^T x, db += column sums of dy.
#include "kernels/linear.h"

#include <cblas.h>

namespace macer::kernels::cpu {

void linear_forward(const LinearShape& s, const float* x, const float* weight, const float* bias, float* y) {
  if (bias)
    for (int r = 0; r < s.n; ++r)
      for (int o = 0; o < s.out; ++o) y[int64_t(r) * s.out + o] = bias[o];
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s.n, s.out, s.in, 1.0f, x, s.in, weight, s.in,
              bias ? 1.0f : 0.0f, y, s.out);
}

void linear_backward_data(const LinearShape& s, const float* dy, const float* weight, float* dx) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s.n, s.in, s.out, 1.0f, dy, s.out, weight, s.in, 1.0f,
              dx, s.in);
}

void linear_backward_weight(const LinearShape& s, const float* x, const float* dy, float* dweight) {
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, s.out, s.in, s.n, 1.0f, dy, s.out, x, s.in, 1.0f, dweight,
              s.in);
}

void linear_backward_bias(const LinearShape& s, const float* dy, float* dbias) {
  for (int r = 0; r < s.n; ++r)
    for (int o = 0; o < s.out; ++o) dbias[o] += dy[int64_t(r) * s.out + o];
}

}  // namespace macer::kernels::cpu
