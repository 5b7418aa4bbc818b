// The unfolding fast path of the CPU convolution (kernels/cpu/conv2d_unfold.cpp), called only by
// kernels/cpu/conv2d.cpp; same contracts as kernels/conv2d.h (forward overwrites, backwards add).
#pragma once

#include "kernels/conv2d.h"

namespace macer::kernels::cpu::unfold_conv {

void forward(const Conv2dShape& s, const float* x, const float* weight, const float* bias, float* y);
void backward_data(const Conv2dShape& s, const float* dy, const float* weight, float* dx);
void backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dweight);

}  // namespace macer::kernels::cpu::unfold_conv
