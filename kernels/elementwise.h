// Elementwise ops: relu, the residual add, accumulation, fill and scale.
// Backward kernels accumulate (+=) into their gradient outputs.
#pragma once
#include <cstdint>

namespace macer::kernels {

// relu_forward:  y = max(x, 0)
// relu_backward: dx += dy * [y > 0]          (y is the forward output)
// add_forward:   y = a + b
// accumulate:    dst += src
// fill:          dst = value
// scale:         dst *= alpha
#define MACER_ELEMENTWISE_API                                                         \
  void relu_forward(int64_t n, const float* x, float* y);                            \
  void relu_backward(int64_t n, const float* y, const float* dy, float* dx);          \
  void add_forward(int64_t n, const float* a, const float* b, float* y);              \
  void accumulate(int64_t n, const float* src, float* dst);                           \
  void fill(int64_t n, float value, float* dst);                                      \
  void scale(int64_t n, float alpha, float* dst);

namespace cpu { MACER_ELEMENTWISE_API }
namespace cuda { MACER_ELEMENTWISE_API }
#undef MACER_ELEMENTWISE_API

// The residual block's relu(a + b) fused on the CPU (ops::add_relu; on the GPU it runs as
// add_forward, relu_forward, then relu_backward and two accumulates):
// add_relu_forward:  y = max(a + b, 0)
// add_relu_backward: g = dy * [y > 0]; da += g (when da), db += g (when db); with a_overwrite
//                    da = g, with b_overwrite db = g (da is written before db is added to,
//                    element by element, so da == db works)
namespace cpu {
// relu_backward with `overwrite`: dx = dy * [y > 0] (the first gradient to reach x; no zero fill).
void relu_backward(int64_t n, const float* y, const float* dy, float* dx, bool overwrite);
void add_relu_forward(int64_t n, const float* a, const float* b, float* y);
void add_relu_backward(int64_t n, const float* y, const float* dy, float* da, float* db, bool a_overwrite = false,
                       bool b_overwrite = false);

// The same on bf16 activations (uint16_t bfloat16 bits, kernels/precision.h; the CPU's bf16
// precision stores activations so, engine/precision.h): values computed in float32 from the
// bf16 inputs and rounded to nearest even once when stored; gradients (dy, dx, da, db) float32.
void relu_forward(int64_t n, const uint16_t* x, uint16_t* y);
void relu_backward(int64_t n, const uint16_t* y, const float* dy, float* dx, bool overwrite);
void add_relu_forward(int64_t n, const uint16_t* a, const uint16_t* b, uint16_t* y);
void add_relu_backward(int64_t n, const uint16_t* y, const float* dy, float* da, float* db, bool a_overwrite,
                       bool b_overwrite);
// Conversions: y = float(x) (exact), y = bf16(x) (rounded to nearest even, kernels/precision.h).
void bf16_to_float32(int64_t n, const uint16_t* x, float* y);
void float32_to_bf16(int64_t n, const float* x, uint16_t* y);
}  // namespace cpu

}  // namespace macer::kernels
