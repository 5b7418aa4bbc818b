// The oneDNN fast path of the CPU convolution (kernels/cpu/conv2d_dnnl.cpp), called only by
// kernels/cpu/conv2d.cpp; same contracts as kernels/conv2d.h (forward overwrites, backwards add),
// in the shape's precision.
#pragma once

#include "kernels/conv2d.h"

namespace macer::kernels::cpu::dnnl_conv {

bool built();  // false when the build has no oneDNN: the functions below then throw
// The bytes of x as the forward (with a bias or not) brings it in (bf16, oneDNN's layout); 0 when
// it reads x as it is.
size_t kept_input_bytes(const Conv2dShape& s, bool bias);
// `keep` (kept_input_bytes long, or null): where the forward leaves x as it brought it in.
// x and y: float32, or bf16 bits with s.x_bf16 / s.y_bf16 (kernels/conv2d.h).
void forward(const Conv2dShape& s, const void* x, const float* weight, const float* bias, void* y,
             void* keep = nullptr);
void backward_data(const Conv2dShape& s, const float* dy, const float* weight, float* dx);
void backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dweight);
// Both backward convolutions (dx or dweight may be null), dy reordered once when both run; `kept`:
// the forward's `keep` of this x (or null), read by the weights pass instead of converting x again.
void backward(const Conv2dShape& s, const void* x, const float* dy, const float* weight, float* dx, float* dweight,
              const void* kept = nullptr);

}  // namespace macer::kernels::cpu::dnnl_conv
