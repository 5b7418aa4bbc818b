// Fully connected layer y = x W^T + b with x (N, IN), W (OUT, IN), b (OUT), as PyTorch's
// Linear: sgemm (or oneDNN's bf16 matmul) on the CPU, cuBLAS on the GPU.
#pragma once

#include "kernels/precision.h"

namespace macer::kernels {

struct LinearShape {
  int n, in, out;
  // BF16: x, W and dy rounded to bfloat16, products accumulated in float32 (kernels/precision.h);
  // every tensor passed is float32 in either precision.
  Precision precision = Precision::FP32;
};

// forward:         y (N,OUT) = x W^T + b          (overwritten; bias may be null)
// backward_data:   dx (N,IN) += dy W
// backward_weight: dW (OUT,IN) += dy^T x
// backward_bias:   db (OUT) += sum over rows of dy
#define MACER_LINEAR_API                                                                   \
  void linear_forward(const LinearShape& s, const float* x, const float* weight,          \
                      const float* bias, float* y);                                       \
  void linear_backward_data(const LinearShape& s, const float* dy, const float* weight,    \
                            float* dx);                                                   \
  void linear_backward_weight(const LinearShape& s, const float* x, const float* dy,       \
                              float* dweight);                                            \
  void linear_backward_bias(const LinearShape& s, const float* dy, float* dbias);

namespace cpu { MACER_LINEAR_API }
namespace cuda { MACER_LINEAR_API }
#undef MACER_LINEAR_API

}  // namespace macer::kernels
