// Max and average pooling over square windows (NCHW), as PyTorch's MaxPool2d and AvgPool2d
// (count_include_pad = true); a global average pool is kernel = stride = H = W.
#pragma once
#include <cstdint>

namespace macer::kernels {

struct Pool2dShape {
  int n, c, h, w;
  int kernel, stride, pad = 0;
  int out_h() const { return (h + 2 * pad - kernel) / stride + 1; }
  int out_w() const { return (w + 2 * pad - kernel) / stride + 1; }
};

// maxpool_forward:  y = max over the window; argmax (N,C,P,Q) = flat index h*W+w in the plane
//                   of the first maximum (padding never wins)
// maxpool_backward: dx[argmax] += dy
// avgpool_forward:  y = sum over the window / (kernel*kernel)
// avgpool_backward: dx += dy / (kernel*kernel) over the window
#define MACER_POOL_API                                                                        \
  void maxpool_forward(const Pool2dShape& s, const float* x, float* y, int32_t* argmax);     \
  void maxpool_backward(const Pool2dShape& s, const float* dy, const int32_t* argmax,        \
                        float* dx);                                                          \
  void avgpool_forward(const Pool2dShape& s, const float* x, float* y);                      \
  void avgpool_backward(const Pool2dShape& s, const float* dy, float* dx);

namespace cpu { MACER_POOL_API }
namespace cuda { MACER_POOL_API }
#undef MACER_POOL_API

namespace cpu {
// One (H, W) plane of maxpool_forward (y and argmax (P, Q)), and of maxpool_backward with
// `overwrite` (dx = 0 first): for ops that pool a plane while it is in cache (the convolution
// with its max pool, kernels/conv2d.h).
void maxpool_plane(const Pool2dShape& s, const float* x, float* y, int32_t* argmax);  // argmax may be null
void maxpool_backward_plane(const Pool2dShape& s, const float* dy, const int32_t* argmax, float* dx, bool overwrite);
// maxpool_backward with `overwrite`: dx = 0, then dx[argmax] += dy, plane by plane while the
// plane is in cache (the first gradient to reach x: no separate zero-fill pass over dx).
void maxpool_backward(const Pool2dShape& s, const float* dy, const int32_t* argmax, float* dx, bool overwrite);
}  // namespace cpu

}  // namespace macer::kernels
