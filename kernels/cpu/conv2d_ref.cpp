// The plain CPU reference of 2-d convolution (kernels/conv2d.h, cpu::ref): images in groups, each
// group unfolded by im2col into one (C*R*S, G*P*Q) matrix so that one OpenBLAS sgemm covers it.
#include "kernels/conv2d.h"

#include <cblas.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace macer::kernels::cpu::ref {

namespace {

// col[(c*R + r)*S + s][p*Q + q] = x[c][p*stride - pad + r][q*stride - pad + s] (0 outside);
// rows are `ld` floats apart, so several images can sit side by side.
void im2col(const Conv2dShape& sh, const float* x, float* col, int64_t ld) {
  const int P = sh.out_h(), Q = sh.out_w();
  for (int c = 0; c < sh.c; ++c)
    for (int r = 0; r < sh.r; ++r)
      for (int s = 0; s < sh.s; ++s) {
        float* row = col + ((int64_t(c) * sh.r + r) * sh.s + s) * ld;
        for (int p = 0; p < P; ++p) {
          int ih = p * sh.stride - sh.pad + r;
          for (int q = 0; q < Q; ++q) {
            int iw = q * sh.stride - sh.pad + s;
            row[p * Q + q] = (ih >= 0 && ih < sh.h && iw >= 0 && iw < sh.w) ? x[(int64_t(c) * sh.h + ih) * sh.w + iw] : 0.0f;
          }
        }
      }
}

// The adjoint of im2col: dx[c][ih][iw] += col[...] for every position it was copied to.
void col2im_add(const Conv2dShape& sh, const float* col, int64_t ld, float* dx) {
  const int P = sh.out_h(), Q = sh.out_w();
  for (int c = 0; c < sh.c; ++c)
    for (int r = 0; r < sh.r; ++r)
      for (int s = 0; s < sh.s; ++s) {
        const float* row = col + ((int64_t(c) * sh.r + r) * sh.s + s) * ld;
        for (int p = 0; p < P; ++p) {
          int ih = p * sh.stride - sh.pad + r;
          if (ih < 0 || ih >= sh.h) continue;
          for (int q = 0; q < Q; ++q) {
            int iw = q * sh.stride - sh.pad + s;
            if (iw >= 0 && iw < sh.w) dx[(int64_t(c) * sh.h + ih) * sh.w + iw] += row[p * Q + q];
          }
        }
      }
}

// Images per group: the column matrix stays under ~16 MB (and at least one image).
int group_size(const Conv2dShape& sh) {
  int64_t per_image = int64_t(sh.c) * sh.r * sh.s * sh.out_h() * sh.out_w();
  int64_t fit = (int64_t(4) << 20) / std::max<int64_t>(per_image, 1);
  return int(std::max<int64_t>(1, std::min<int64_t>(fit, sh.n)));  // n = 0 still gives 1 (no loop runs)
}

// dy of images n0 .. n0+g-1 gathered as one (K, g*PQ) matrix.
void gather_dy(const Conv2dShape& sh, const float* dy, int n0, int g, float* out) {
  const int64_t PQ = int64_t(sh.out_h()) * sh.out_w(), ld = g * PQ;
  for (int i = 0; i < g; ++i)
    for (int k = 0; k < sh.k; ++k) std::copy_n(dy + (int64_t(n0 + i) * sh.k + k) * PQ, PQ, out + k * ld + i * PQ);
}

// Scratch reused across calls on this thread: the column matrix and a (K, G*P*Q) output block.
struct Scratch {
  std::vector<float> col, out;
};
Scratch& scratch(const Conv2dShape& sh, int group) {
  thread_local Scratch s;
  int64_t pq = int64_t(sh.out_h()) * sh.out_w();
  size_t col = size_t(sh.c) * sh.r * sh.s * pq * group, out = size_t(sh.k) * pq * group;
  if (s.col.size() < col) s.col.resize(col);
  if (s.out.size() < out) s.out.resize(out);
  return s;
}

}  // namespace

void conv2d_forward(const Conv2dShape& sh, const float* x, const float* weight, const float* bias, float* y) {
  const int64_t PQ = int64_t(sh.out_h()) * sh.out_w(), CRS = int64_t(sh.c) * sh.r * sh.s;
  const int G = group_size(sh);
  Scratch& buf = scratch(sh, G);
  for (int n0 = 0; n0 < sh.n; n0 += G) {
    const int g = std::min(G, sh.n - n0);
    const int64_t ld = g * PQ;
    for (int i = 0; i < g; ++i) im2col(sh, x + int64_t(n0 + i) * sh.c * sh.h * sh.w, buf.col.data() + i * PQ, ld);
    // out (K, g*PQ) = W (K, CRS) col (CRS, g*PQ)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, sh.k, int(ld), int(CRS), 1.0f, weight, int(CRS),
                buf.col.data(), int(ld), 0.0f, buf.out.data(), int(ld));
    // y[n0+i][k] = out[k][i*PQ ...] + bias[k]
    for (int i = 0; i < g; ++i)
      for (int k = 0; k < sh.k; ++k) {
        const float* src = buf.out.data() + k * ld + i * PQ;
        float* dst = y + (int64_t(n0 + i) * sh.k + k) * PQ;
        const float b = bias ? bias[k] : 0.0f;
        for (int64_t j = 0; j < PQ; ++j) dst[j] = src[j] + b;
      }
  }
}

void conv2d_backward_data(const Conv2dShape& sh, const float* dy, const float* weight, float* dx) {
  const int64_t PQ = int64_t(sh.out_h()) * sh.out_w(), CRS = int64_t(sh.c) * sh.r * sh.s;
  const int G = group_size(sh);
  Scratch& buf = scratch(sh, G);
  for (int n0 = 0; n0 < sh.n; n0 += G) {
    const int g = std::min(G, sh.n - n0);
    const int64_t ld = g * PQ;
    gather_dy(sh, dy, n0, g, buf.out.data());
    // dcol (CRS, g*PQ) = W^T (CRS, K) dy (K, g*PQ); then scattered back onto each image.
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(CRS), int(ld), sh.k, 1.0f, weight, int(CRS),
                buf.out.data(), int(ld), 0.0f, buf.col.data(), int(ld));
    for (int i = 0; i < g; ++i) col2im_add(sh, buf.col.data() + i * PQ, ld, dx + int64_t(n0 + i) * sh.c * sh.h * sh.w);
  }
}

void conv2d_backward_weight(const Conv2dShape& sh, const float* x, const float* dy, float* dweight) {
  const int64_t PQ = int64_t(sh.out_h()) * sh.out_w(), CRS = int64_t(sh.c) * sh.r * sh.s;
  const int G = group_size(sh);
  Scratch& buf = scratch(sh, G);
  for (int n0 = 0; n0 < sh.n; n0 += G) {
    const int g = std::min(G, sh.n - n0);
    const int64_t ld = g * PQ;
    for (int i = 0; i < g; ++i) im2col(sh, x + int64_t(n0 + i) * sh.c * sh.h * sh.w, buf.col.data() + i * PQ, ld);
    gather_dy(sh, dy, n0, g, buf.out.data());
    // dW (K, CRS) += dy (K, g*PQ) col^T (g*PQ, CRS)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, sh.k, int(CRS), int(ld), 1.0f, buf.out.data(), int(ld),
                buf.col.data(), int(ld), 1.0f, dweight, int(CRS));
  }
}

void conv2d_backward_bias(const Conv2dShape& sh, const float* dy, float* dbias) {
  const int64_t PQ = int64_t(sh.out_h()) * sh.out_w();
  for (int k = 0; k < sh.k; ++k) {
    double sum = 0;
    for (int n = 0; n < sh.n; ++n) {
      const float* d = dy + (int64_t(n) * sh.k + k) * PQ;
      for (int64_t i = 0; i < PQ; ++i) sum += d[i];
    }
    dbias[k] += float(sum);
  }
}

void conv2d_backward(const Conv2dShape& sh, const float* x, const float* dy, const float* weight, float* dx,
                     float* dweight, float* dbias) {
  if (dx) conv2d_backward_data(sh, dy, weight, dx);
  if (dweight) conv2d_backward_weight(sh, x, dy, dweight);
  if (dbias) conv2d_backward_bias(sh, dy, dbias);
}

}  // namespace macer::kernels::cpu::ref
