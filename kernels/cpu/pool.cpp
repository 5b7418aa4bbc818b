// CPU max and average pooling (kernels/pool.h), one (n, c) plane at a time; the planes are
// split over the threads (each writes only its own planes, so threads change no bit).
#include "kernels/pool.h"

#include <algorithm>
#include <limits>

#include "kernels/cpu/parallel.h"

namespace macer::kernels::cpu {

namespace {

// The common 2x2, stride 2, no padding window (LeNet) over one plane: always inside the plane,
// visited in the general loop's order (row by row), a later value winning only when strictly
// greater (branch-free selects: the comparisons are unpredictable). kArgmax false (inference):
// the maxima alone, without their positions, which vectorize.
template <bool kArgmax>
void maxpool_2x2_plane(const Pool2dShape& s, const float* xp, float* yp, int32_t* ap) {
  const int ph = s.out_h(), pw = s.out_w(), W = s.w;
  for (int oh = 0; oh < ph; ++oh) {
    const float* r0 = xp + 2 * oh * W;
    const float* r1 = r0 + W;
    const int32_t top = 2 * oh * W, bottom = top + W;
    for (int ow = 0; ow < pw; ++ow) {
      const int i = 2 * ow;
      float best = r0[i];
      int32_t at = top + i;
      const bool b1 = r0[i + 1] > best;
      best = b1 ? r0[i + 1] : best, at = b1 ? top + i + 1 : at;
      const bool b2 = r1[i] > best;
      best = b2 ? r1[i] : best, at = b2 ? bottom + i : at;
      const bool b3 = r1[i + 1] > best;
      best = b3 ? r1[i + 1] : best, at = b3 ? bottom + i + 1 : at;
      yp[oh * pw + ow] = best;
      if constexpr (kArgmax) ap[oh * pw + ow] = at;
    }
  }
}

}  // namespace

void maxpool_plane(const Pool2dShape& s, const float* xp, float* yp, int32_t* ap) {
  if (s.kernel == 2 && s.stride == 2 && s.pad == 0)
    return ap ? maxpool_2x2_plane<true>(s, xp, yp, ap) : maxpool_2x2_plane<false>(s, xp, yp, nullptr);
  const int ph = s.out_h(), pw = s.out_w();
  for (int oh = 0; oh < ph; ++oh)
    for (int ow = 0; ow < pw; ++ow) {
      float best = -std::numeric_limits<float>::infinity();
      int32_t at = -1;
      for (int kh = 0; kh < s.kernel; ++kh)
        for (int kw = 0; kw < s.kernel; ++kw) {
          int ih = oh * s.stride - s.pad + kh, iw = ow * s.stride - s.pad + kw;
          if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;  // padding never wins
          float v = xp[ih * s.w + iw];
          if (at < 0 || v > best) {
            best = v;
            at = ih * s.w + iw;
          }
        }
      yp[oh * pw + ow] = best;
      if (ap) ap[oh * pw + ow] = at;
    }
}

void maxpool_backward_plane(const Pool2dShape& s, const float* dyp, const int32_t* ap, float* dxp, bool overwrite) {
  const int64_t per_plane = int64_t(s.out_h()) * s.out_w();
  if (overwrite) std::fill(dxp, dxp + int64_t(s.h) * s.w, 0.0f);
  for (int64_t o = 0; o < per_plane; ++o)
    if (ap[o] >= 0) dxp[ap[o]] += dyp[o];
}

void maxpool_forward(const Pool2dShape& s, const float* x, float* y, int32_t* argmax) {
  const int64_t in = int64_t(s.h) * s.w, out = int64_t(s.out_h()) * s.out_w();
  parallel_for(int64_t(s.n) * s.c, in, [&](int64_t p0, int64_t p1) {
    for (int64_t plane = p0; plane < p1; ++plane) maxpool_plane(s, x + plane * in, y + plane * out, argmax + plane * out);
  });
}

void maxpool_backward(const Pool2dShape& s, const float* dy, const int32_t* argmax, float* dx, bool overwrite) {
  const int64_t in = int64_t(s.h) * s.w, out = int64_t(s.out_h()) * s.out_w();
  parallel_for(int64_t(s.n) * s.c, in, [&](int64_t p0, int64_t p1) {
    for (int64_t plane = p0; plane < p1; ++plane)
      maxpool_backward_plane(s, dy + plane * out, argmax + plane * out, dx + plane * in, overwrite);
  });
}

void maxpool_backward(const Pool2dShape& s, const float* dy, const int32_t* argmax, float* dx) {
  maxpool_backward(s, dy, argmax, dx, false);
}

void avgpool_forward(const Pool2dShape& s, const float* x, float* y) {
  const int ph = s.out_h(), pw = s.out_w();
  const float inv = 1.0f / float(s.kernel * s.kernel);  // count_include_pad = true
  parallel_for(int64_t(s.n) * s.c, int64_t(s.h) * s.w, [&](int64_t p0, int64_t p1) {
    for (int64_t plane = p0; plane < p1; ++plane) {
      const float* xp = x + plane * s.h * s.w;
      for (int oh = 0; oh < ph; ++oh)
        for (int ow = 0; ow < pw; ++ow) {
          float sum = 0.0f;
          for (int kh = 0; kh < s.kernel; ++kh)
            for (int kw = 0; kw < s.kernel; ++kw) {
              int ih = oh * s.stride - s.pad + kh, iw = ow * s.stride - s.pad + kw;
              if (ih >= 0 && ih < s.h && iw >= 0 && iw < s.w) sum += xp[ih * s.w + iw];
            }
          y[plane * ph * pw + oh * pw + ow] = sum * inv;
        }
    }
  });
}

void avgpool_backward(const Pool2dShape& s, const float* dy, float* dx) {
  const int ph = s.out_h(), pw = s.out_w();
  const float inv = 1.0f / float(s.kernel * s.kernel);
  parallel_for(int64_t(s.n) * s.c, int64_t(s.h) * s.w, [&](int64_t p0, int64_t p1) {
    for (int64_t plane = p0; plane < p1; ++plane) {
      float* dxp = dx + plane * s.h * s.w;
      for (int oh = 0; oh < ph; ++oh)
        for (int ow = 0; ow < pw; ++ow) {
          float g = dy[plane * ph * pw + oh * pw + ow] * inv;
          for (int kh = 0; kh < s.kernel; ++kh)
            for (int kw = 0; kw < s.kernel; ++kw) {
              int ih = oh * s.stride - s.pad + kh, iw = ow * s.stride - s.pad + kw;
              if (ih >= 0 && ih < s.h && iw >= 0 && iw < s.w) dxp[ih * s.w + iw] += g;
            }
        }
    }
  });
}

}  // namespace macer::kernels::cpu
