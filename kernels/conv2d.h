// 2-d convolution (NCHW, OIHW weights, square stride and padding, optional bias): one
// declaration; on the CPU a fast path (oneDNN when built with it) and the plain reference
// cpu::ref (im2col + sgemm) that tests check it against; on the GPU cuDNN.
#pragma once

#include <cstdint>

#include "kernels/pool.h"
#include "kernels/precision.h"

namespace macer::kernels {

struct Conv2dShape {
  int n, c, h, w;     // input (N, C, H, W)
  int k, r, s;        // weight (K, C, R, S)
  int stride = 1, pad = 0;
  // BF16: x, weight and dy rounded to bfloat16, products accumulated in float32; every tensor
  // the caller passes or gets is float32 in either precision (kernels/precision.h), except bf16
  // activations (x_bf16, y_bf16 below).
  Precision precision = Precision::FP32;
  // Memory formats (engine/tensor.h): x and dx (N,H,W,C) when x_channels_last, y and dy (N,P,Q,K)
  // when y_channels_last; else (N,C,H,W). The CPU takes any combination (oneDNN natively, the
  // other paths through reordered copies); CUDA takes neither.
  bool x_channels_last = false, y_channels_last = false;
  // The backward data pass writes dx (=) instead of adding to it (+=): the CPU; CUDA refuses it.
  bool dx_overwrite = false;
  // bf16 activations (the CPU in bf16 precision, engine/precision.h bf16_activations): x (y)
  // holds bfloat16 bits (uint16_t), channels-last, read and written by oneDNN as they are; their
  // gradients dx and dy stay float32. Only the CPU overloads below with untyped x and y take
  // them, and only where conv2d_takes_bf16 (they throw otherwise).
  bool x_bf16 = false, y_bf16 = false;
  int out_h() const { return (h + 2 * pad - r) / stride + 1; }
  int out_w() const { return (w + 2 * pad - s) / stride + 1; }
};

// forward:         y (N,K,P,Q)  = conv(x, weight) + bias      (y overwritten; bias may be null)
// backward_data:   dx (N,C,H,W) += conv_transpose(dy, weight)  (= with dx_overwrite)
// backward_weight: dweight (K,C,R,S) += correlation of x and dy
// backward_bias:   dbias (K) += sum of dy over N, P, Q
// backward:        the three above in one call, each skipped when its output is null (the CPU
//                  fast path then brings dy into its layout once for both convolutions)
#define MACER_CONV2D_API                                                                     \
  void conv2d_forward(const Conv2dShape& s, const float* x, const float* weight,             \
                      const float* bias, float* y);                                         \
  void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* weight,      \
                            float* dx);                                                     \
  void conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* dy,         \
                              float* dweight);                                              \
  void conv2d_backward_bias(const Conv2dShape& s, const float* dy, float* dbias);             \
  void conv2d_backward(const Conv2dShape& s, const float* x, const float* dy,                \
                       const float* weight, float* dx, float* dweight, float* dbias);

namespace cpu { MACER_CONV2D_API }
namespace cpu::ref { MACER_CONV2D_API }
namespace cuda { MACER_CONV2D_API }
#undef MACER_CONV2D_API

namespace cpu {
// Which implementation cpu::conv2d_* run: the fast path when the build has one (oneDNN), else
// the reference. MACER_CPU_CONV=reference in the environment starts with the reference.
bool conv2d_fast_path_built();
void conv2d_use_reference(bool on);
bool conv2d_using_reference();
// The path in words, for run records: "reference", or "onednn+unfold" (oneDNN's direct kernels
// for channel counts in blocks of 16 and the stems, the unfolding for the rest, chosen by shape).
const char* conv2d_path();
// True when `s` runs on oneDNN's kernels with whole blocks of 16 output channels, whose layout
// for the activations is channels-last: an output in that format then needs no reorder
// (ops::conv2d asks, engine/precision.h).
bool conv2d_prefers_channels_last(const Conv2dShape& s);

// The training forward's copy of x for its backward (bf16 on oneDNN: x cast and laid out as the
// weights pass reads it, one conversion fewer per step). kept_bytes: its size, 0 where the path
// keeps none (fp32, the unfolding, the reference, a bf16 x read as it is). conv2d_forward with
// `keep` (kept_bytes long) leaves the copy there; conv2d_backward with `kept` (that copy, x
// unchanged since) reads it.
// x and y are float32, or bf16 bits with s.x_bf16 / s.y_bf16; keep and kept may be null.
size_t conv2d_kept_bytes(const Conv2dShape& s, bool bias);
void conv2d_forward(const Conv2dShape& s, const void* x, const float* weight, const float* bias, void* y, void* keep);
void conv2d_backward(const Conv2dShape& s, const void* x, const float* dy, const float* weight, float* dx,
                     float* dweight, float* dbias, const void* kept);
// True when `s` (bf16 precision, y channels-last) runs on oneDNN, which reads and writes bf16
// activations as they are (x_bf16 with x channels-last, y_bf16); other paths take float32.
bool conv2d_takes_bf16(const Conv2dShape& s);

// A convolution and the max pool over its output as one op (ops::conv2d_max_pool2d: LeNet's
// conv then MaxPool2d) where the convolution unfolds (NCHW operands, channel counts oneDNN
// would pad): each chunk's output is pooled while in cache, so the (N,K,P,Q) output is never
// written, and the backward scatters the pooled gradient into each chunk the same way. `ps` is
// the pool over the convolution's output (ps.n, c, h, w = N, K, P, Q); equal to conv2d_* then
// maxpool_* up to float rounding of the bias gradient's order.
// fused:    whether (cs, ps) takes this path (else run the two ops)
// forward:  y (N,K,P',Q') = max pool of (conv(x, weight) + bias), then with `relu` max(y, 0);
//           argmax as maxpool_forward's (-1 where the ReLU gave 0: no gradient), or null when no
//           backward follows (inference)
// backward: dy is the pooled gradient (N,K,P',Q'); dx (+= or = with cs.dx_overwrite), dweight
//           (+=) and dbias (+=) as conv2d_backward, each skipped when null
bool conv2d_max_pool2d_fused(const Conv2dShape& cs, const Pool2dShape& ps);
void conv2d_max_pool2d_forward(const Conv2dShape& cs, const Pool2dShape& ps, const float* x, const float* weight,
                               const float* bias, float* y, int32_t* argmax, bool relu = false);
void conv2d_max_pool2d_backward(const Conv2dShape& cs, const Pool2dShape& ps, const float* x, const float* dy,
                                const int32_t* argmax, const float* weight, float* dx, float* dweight, float* dbias);
}  // namespace cpu

}  // namespace macer::kernels
