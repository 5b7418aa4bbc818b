// The oneDNN fast path of the CPU convolution (kernels/cpu/conv2d_dnnl.cpp), called only by
// kernels/cpu/conv2d.cpp; same contracts as kernels/conv2d.h (forward overwrites, backwards add),
// in the shape's precision.
#pragma once

#include "kernels/conv2d.h"

namespace macer::kernels::cpu::dnnl_conv {

bool built();  // false when the build has no oneDNN: the functions below then throw
void forward(const Conv2dShape& s, const float* x, const float* weight, const float* bias, float* y);
void backward_data(const Conv2dShape& s, const float* dy, const float* weight, float* dx);
void backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dweight);
// Both backward convolutions (dx or dweight may be null), dy reordered once when both run.
void backward(const Conv2dShape& s, const float* x, const float* dy, const float* weight, float* dx, float* dweight);

}  // namespace macer::kernels::cpu::dnnl_conv
