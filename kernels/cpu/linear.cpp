// CPU linear layer (kernels/linear.h) through a row-major sgemm: y = x W^T + b, dx += dy W,
// dW += dy^T x, db += column sums of dy. The sgemm is oneDNN's when built with it (its threads
// are the OpenMP threads of the other kernels, so no second pool competes for the cores), else
// OpenBLAS's.
#include "kernels/linear.h"

#include "kernels/cpu/parallel.h"
#include "kernels/cpu/sgemm.h"

namespace macer::kernels::cpu {

void linear_forward(const LinearShape& s, const float* x, const float* weight, const float* bias, float* y) {
  if (bias)
    for (int r = 0; r < s.n; ++r)
      for (int o = 0; o < s.out; ++o) y[int64_t(r) * s.out + o] = bias[o];
  sgemm(false, true, s.n, s.out, s.in, x, s.in, weight, s.in, bias ? 1.0f : 0.0f, y, s.out);
}

void linear_backward_data(const LinearShape& s, const float* dy, const float* weight, float* dx) {
  sgemm(false, false, s.n, s.in, s.out, dy, s.out, weight, s.in, 1.0f, dx, s.in);
}

void linear_backward_weight(const LinearShape& s, const float* x, const float* dy, float* dweight) {
  sgemm(true, false, s.out, s.in, s.n, dy, s.out, x, s.in, 1.0f, dweight, s.in);
}

// db[o] += sum over rows of dy[r][o]: blocks of columns over the threads, rows summed in order.
void linear_backward_bias(const LinearShape& s, const float* dy, float* dbias) {
  parallel_for(s.out, s.n, [&](int64_t o0, int64_t o1) {
    for (int r = 0; r < s.n; ++r)
      for (int64_t o = o0; o < o1; ++o) dbias[o] += dy[int64_t(r) * s.out + o];
  });
}

}  // namespace macer::kernels::cpu
