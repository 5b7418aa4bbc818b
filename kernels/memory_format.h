// Reordering a 4-d float tensor between PyTorch's two memory formats, (N,C,H,W) "contiguous" and
// (N,H,W,C) "channels_last": the CPU kernel behind ops::contiguous and Tensor's conversions.
#pragma once
#include <cstdint>

namespace macer::kernels::cpu {

// The tensor as N images of C channels by HW positions. to_channels_last: dst[n][i][c] = src[n][c][i];
// to_contiguous: dst[n][c][i] = src[n][i][c]; with accumulate, dst += instead of dst = (a
// backward's gradient). src and dst must not overlap.
void to_channels_last(int64_t n, int64_t c, int64_t hw, const float* src, float* dst, bool accumulate = false);
void to_contiguous(int64_t n, int64_t c, int64_t hw, const float* src, float* dst, bool accumulate = false);

}  // namespace macer::kernels::cpu
