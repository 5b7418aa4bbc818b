// The unfolding fast path of the CPU convolution (kernels/cpu/conv2d_unfold.cpp), called only by
// kernels/cpu/conv2d.cpp; same contracts as kernels/conv2d.h (forward overwrites, backwards add;
// backward_data writes with dx_overwrite), in fp32 or bf16 (Conv2dShape::precision).
#pragma once

#include "kernels/conv2d.h"

namespace macer::kernels::cpu::unfold_conv {

// A max pool fused after the convolution (kernels/conv2d.h, conv2d_max_pool2d_*): forward then
// writes the pooled y (N,K,P',Q') and `argmax`, and the backwards take the pooled dy with it.
struct Pooled {
  const Pool2dShape* shape = nullptr;  // none: the plain convolution
  int32_t* argmax_out = nullptr;       // forward: written
  const int32_t* argmax = nullptr;     // backwards: read
  bool relu = false;                   // forward: y = max(y, 0), argmax -1 where y <= 0 (no gradient)
};

void forward(const Conv2dShape& s, const float* x, const float* weight, const float* bias, float* y,
             const Pooled& pool = {});
void backward_data(const Conv2dShape& s, const float* dy, const float* weight, float* dx, const Pooled& pool = {});
void backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dweight, const Pooled& pool = {});
// Both (dx may be null; dweight null: backward_data), each chunk's dy brought together once.
void backward(const Conv2dShape& s, const float* x, const float* dy, const float* weight, float* dx, float* dweight,
              const Pooled& pool = {});

}  // namespace macer::kernels::cpu::unfold_conv
