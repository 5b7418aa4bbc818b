// CPU reference of 2-d convolution (kernels/conv2d.h): per image, im2col into a (C*R*S, P*Q)
// matrix, then OpenBLAS sgemm; backward data is sgemm then col2im (accumulating).
#include "kernels/conv2d.h"

#include <cblas.h>

#include <cstdint>
#include <vector>

namespace macer::kernels::cpu {

namespace {

// col[(c*R + r)*S + s][p*Q + q] = x[c][p*stride - pad + r][q*stride - pad + s] (0 outside).
void im2col(const Conv2dShape& sh, const float* x, float* col) {
  const int P = sh.out_h(), Q = sh.out_w();
  for (int c = 0; c < sh.c; ++c)
    for (int r = 0; r < sh.r; ++r)
      for (int s = 0; s < sh.s; ++s) {
        float* row = col + ((int64_t(c) * sh.r + r) * sh.s + s) * P * Q;
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
void col2im_add(const Conv2dShape& sh, const float* col, float* dx) {
  const int P = sh.out_h(), Q = sh.out_w();
  for (int c = 0; c < sh.c; ++c)
    for (int r = 0; r < sh.r; ++r)
      for (int s = 0; s < sh.s; ++s) {
        const float* row = col + ((int64_t(c) * sh.r + r) * sh.s + s) * P * Q;
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

// Scratch for one image's column matrix, reused across calls on this thread.
float* scratch(const Conv2dShape& sh) {
  thread_local std::vector<float> buf;
  size_t need = size_t(sh.c) * sh.r * sh.s * sh.out_h() * sh.out_w();
  if (buf.size() < need) buf.resize(need);
  return buf.data();
}

}  // namespace

void conv2d_forward(const Conv2dShape& sh, const float* x, const float* weight, const float* bias, float* y) {
  const int PQ = sh.out_h() * sh.out_w(), CRS = sh.c * sh.r * sh.s;
  float* col = scratch(sh);
  for (int n = 0; n < sh.n; ++n) {
    float* yn = y + int64_t(n) * sh.k * PQ;
    im2col(sh, x + int64_t(n) * sh.c * sh.h * sh.w, col);
    // y[n] (K, PQ) = W (K, CRS) col (CRS, PQ) [+ bias broadcast over PQ]
    for (int k = 0; k < sh.k; ++k)
      for (int i = 0; i < PQ; ++i) yn[int64_t(k) * PQ + i] = bias ? bias[k] : 0.0f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, sh.k, PQ, CRS, 1.0f, weight, CRS, col, PQ, 1.0f, yn, PQ);
  }
}

void conv2d_backward_data(const Conv2dShape& sh, const float* dy, const float* weight, float* dx) {
  const int PQ = sh.out_h() * sh.out_w(), CRS = sh.c * sh.r * sh.s;
  float* col = scratch(sh);
  for (int n = 0; n < sh.n; ++n) {
    // dcol (CRS, PQ) = W^T (CRS, K) dy[n] (K, PQ); then scattered back onto the image.
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, CRS, PQ, sh.k, 1.0f, weight, CRS,
                dy + int64_t(n) * sh.k * PQ, PQ, 0.0f, col, PQ);
    col2im_add(sh, col, dx + int64_t(n) * sh.c * sh.h * sh.w);
  }
}

void conv2d_backward_weight(const Conv2dShape& sh, const float* x, const float* dy, float* dweight) {
  const int PQ = sh.out_h() * sh.out_w(), CRS = sh.c * sh.r * sh.s;
  float* col = scratch(sh);
  for (int n = 0; n < sh.n; ++n) {
    im2col(sh, x + int64_t(n) * sh.c * sh.h * sh.w, col);
    // dW (K, CRS) += dy[n] (K, PQ) col^T (PQ, CRS)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, sh.k, CRS, PQ, 1.0f, dy + int64_t(n) * sh.k * PQ, PQ,
                col, PQ, 1.0f, dweight, CRS);
  }
}

void conv2d_backward_bias(const Conv2dShape& sh, const float* dy, float* dbias) {
  const int PQ = sh.out_h() * sh.out_w();
  for (int n = 0; n < sh.n; ++n)
    for (int k = 0; k < sh.k; ++k) {
      const float* d = dy + (int64_t(n) * sh.k + k) * PQ;
      double sum = 0;
      for (int i = 0; i < PQ; ++i) sum += d[i];
      dbias[k] += float(sum);
    }
}

}  // namespace macer::kernels::cpu
