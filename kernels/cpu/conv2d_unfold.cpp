// Unfolding CPU convolution (kernels/cpu/conv2d_unfold.h) for channel counts that oneDNN's
// blocked kernels would pad (LeNet's 20 and 50): the batch is cut into chunks of images whose
// column matrix fits in cache (~1 MB); each thread takes whole chunks, unfolds them (im2col),
// runs one single-threaded matrix product per chunk (sgemm, or in bf16 gemm_bf16, on the chunk
// unfolded straight into bf16 in the forward of stride-1 unpadded shapes, else cast while it is in
// cache) and writes its own images. One parallel region per call.
#include "kernels/cpu/conv2d_unfold.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/cpu/gemm_bf16.h"
#include "kernels/elementwise.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/sgemm.h"
#include "kernels/precision.h"

namespace macer::kernels::cpu::unfold_conv {

namespace {

struct Geometry {
  int64_t PQ, CRS, image;  // output positions, unfolded rows, input floats per image
  int chunk;               // images per chunk
  int64_t chunks;
  explicit Geometry(const Conv2dShape& sh)
      : PQ(int64_t(sh.out_h()) * sh.out_w()), CRS(int64_t(sh.c) * sh.r * sh.s), image(int64_t(sh.c) * sh.h * sh.w) {
    const int64_t fit = (int64_t(256) << 10) / std::max<int64_t>(CRS * PQ, 1);  // ~1 MB of columns
    chunk = int(std::max<int64_t>(1, std::min<int64_t>(fit, sh.n)));
    chunks = (sh.n + chunk - 1) / chunk;
  }
};

// The chunk's matrix product in the shape's precision (sgemm's arguments).
void gemm(const Conv2dShape& sh, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (sh.precision == Precision::BF16) return gemm_bf16(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
  sgemm(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}

// Per-thread scratch: a chunk's column matrix (CRS, g*PQ) and output block (K, g*PQ); col16 the
// column matrix in bf16 (the bf16 forward's, unfold_bf16).
struct Scratch {
  std::vector<float> col, out;
  std::vector<uint16_t> col16;
  void fit(size_t c, size_t o) {
    if (col.size() < c) col.resize(c);
    if (out.size() < o) out.resize(o);
  }
};
Scratch& thread_scratch(const Conv2dShape& sh, const Geometry& geo) {
  thread_local Scratch s;
  s.fit(size_t(geo.CRS * geo.PQ) * geo.chunk, size_t(sh.k) * geo.PQ * geo.chunk);
  return s;
}

// The output columns q whose input column q*stride - pad + s lies inside [0, W): [lo, hi).
inline void valid_columns(const Conv2dShape& sh, int s, int Q, int& lo, int& hi) {
  const int first = sh.pad - s;  // q*stride >= pad - s
  lo = first <= 0 ? 0 : (first + sh.stride - 1) / sh.stride;
  const int last = sh.w - 1 + sh.pad - s;  // q*stride <= W - 1 + pad - s
  hi = last < 0 ? 0 : std::min(Q, last / sh.stride + 1);
  if (hi < lo) hi = lo;
}

// im2col (kernels/cpu/conv2d_ref.cpp) with the bounds worked out per row instead of per element: each
// output row p of each (c, r, s) is zeros, a run copied from one input row, zeros.
void im2col_rows(const Conv2dShape& sh, const float* x, float* col, int64_t ld) {
  const int P = sh.out_h(), Q = sh.out_w();
  if (sh.stride == 1 && sh.pad == 0) {  // LeNet's: no bounds, each output row a run of Q inputs
    for (int c = 0; c < sh.c; ++c)
      for (int r = 0; r < sh.r; ++r)
        for (int s = 0; s < sh.s; ++s) {
          float* out = col + ((int64_t(c) * sh.r + r) * sh.s + s) * ld;
          const float* in = x + (int64_t(c) * sh.h + r) * sh.w + s;
          for (int p = 0; p < P; ++p, out += Q, in += sh.w)
            if (Q == 8)  // LeNet's second convolution: a fixed-size copy the compiler unrolls
              std::memcpy(out, in, 8 * sizeof(float));
            else
              std::memcpy(out, in, size_t(Q) * sizeof(float));
        }
    return;
  }
  for (int c = 0; c < sh.c; ++c)
    for (int r = 0; r < sh.r; ++r)
      for (int s = 0; s < sh.s; ++s) {
        float* row = col + ((int64_t(c) * sh.r + r) * sh.s + s) * ld;
        int lo, hi;
        valid_columns(sh, s, Q, lo, hi);
        for (int p = 0; p < P; ++p) {
          float* out = row + p * Q;
          const int ih = p * sh.stride - sh.pad + r;
          if (ih < 0 || ih >= sh.h) {
            std::fill(out, out + Q, 0.0f);
            continue;
          }
          const float* in = x + (int64_t(c) * sh.h + ih) * sh.w;  // iw = q*stride - pad + s
          std::fill(out, out + lo, 0.0f);
          if (sh.stride == 1) {
            const float* from = in + (s - sh.pad);  // short runs: a loop beats a memcpy call
            for (int q = lo; q < hi; ++q) out[q] = from[q];
          } else
            for (int q = lo; q < hi; ++q) out[q] = in[q * sh.stride - sh.pad + s];
          std::fill(out + hi, out + Q, 0.0f);
        }
      }
}

// col2im_add (kernels/cpu/conv2d_ref.cpp) with the same per-row bounds: dx[.][ih][iw] += col[...].
void col2im_rows_add(const Conv2dShape& sh, const float* col, int64_t ld, float* dx) {
  const int P = sh.out_h(), Q = sh.out_w();
  if (sh.stride == 1 && sh.pad == 0) {  // as im2col_rows: each output row adds onto a run of Q inputs
    for (int c = 0; c < sh.c; ++c)
      for (int r = 0; r < sh.r; ++r)
        for (int s = 0; s < sh.s; ++s) {
          const float* in = col + ((int64_t(c) * sh.r + r) * sh.s + s) * ld;
          float* out = dx + (int64_t(c) * sh.h + r) * sh.w + s;
          for (int p = 0; p < P; ++p, in += Q, out += sh.w)
            for (int q = 0; q < Q; ++q) out[q] += in[q];
        }
    return;
  }
  for (int c = 0; c < sh.c; ++c)
    for (int r = 0; r < sh.r; ++r)
      for (int s = 0; s < sh.s; ++s) {
        const float* row = col + ((int64_t(c) * sh.r + r) * sh.s + s) * ld;
        int lo, hi;
        valid_columns(sh, s, Q, lo, hi);
        for (int p = 0; p < P; ++p) {
          const int ih = p * sh.stride - sh.pad + r;
          if (ih < 0 || ih >= sh.h) continue;
          const float* in = row + p * Q;
          float* out = dx + (int64_t(c) * sh.h + ih) * sh.w;
          for (int q = lo; q < hi; ++q) out[q * sh.stride - sh.pad + s] += in[q];
        }
      }
}

// Images [n0, n0 + g) of x unfolded side by side into col (image i at column offset i*PQ).
void unfold(const Conv2dShape& sh, const Geometry& geo, const float* x, int64_t n0, int64_t g, float* col) {
  for (int64_t i = 0; i < g; ++i) im2col_rows(sh, x + (n0 + i) * geo.image, col + i * geo.PQ, g * geo.PQ);
}

// Whether the forward unfolds straight into bf16 (bf16, stride 1, no padding: LeNet's): the same
// bf16 values the matrix product's cast would give, written at half the bytes, no cast pass.
bool unfolds_bf16(const Conv2dShape& sh) { return sh.precision == Precision::BF16 && sh.stride == 1 && sh.pad == 0; }

// im2col_rows' stride-1, no-padding case into bf16 (rounded to nearest even), for one image;
// compiled for AVX-512 too (kernels/cpu/isa.h), where the conversion vectorizes.
MACER_CPU_CLONES void im2col_bf16(const float* x, uint16_t* col, int64_t ld, int C, int H, int W, int R, int S, int P,
                                  int Q) {
  for (int c = 0; c < C; ++c)
    for (int r = 0; r < R; ++r)
      for (int s = 0; s < S; ++s) {
        uint16_t* out = col + ((int64_t(c) * R + r) * S + s) * ld;
        const float* in = x + (int64_t(c) * H + r) * W + s;
        for (int p = 0; p < P; ++p, out += Q, in += W) {
          int q = 0;
          for (; q + 8 <= Q; q += 8) float_to_bf16_8(in + q, out + q);  // LeNet's Q: 24 and 8
          for (; q < Q; ++q) out[q] = float_to_bf16(in[q]);
        }
      }
}

// unfold into bf16 (unfolds_bf16 shapes).
void unfold_bf16(const Conv2dShape& sh, const Geometry& geo, const float* x, int64_t n0, int64_t g, uint16_t* col) {
  for (int64_t i = 0; i < g; ++i)
    im2col_bf16(x + (n0 + i) * geo.image, col + i * geo.PQ, g * geo.PQ, sh.c, sh.h, sh.w, sh.r, sh.s, sh.out_h(),
                sh.out_w());
}

// dy of images [n0, n0 + g) gathered as (K, g*PQ).
void gather(const Conv2dShape& sh, const Geometry& geo, const float* dy, int64_t n0, int64_t g, float* out) {
  for (int64_t i = 0; i < g; ++i)
    for (int64_t k = 0; k < sh.k; ++k)
      std::memcpy(out + k * g * geo.PQ + i * geo.PQ, dy + ((n0 + i) * sh.k + k) * geo.PQ,
                  size_t(geo.PQ) * sizeof(float));
}

// The same from the pooled gradient (N,K,P',Q') of a fused max pool: each chunk plane is zeroed
// and the pooled gradient scattered to its argmax, as maxpool_backward does into a full dy.
void gather_pooled(const Conv2dShape& sh, const Geometry& geo, const Pool2dShape& ps, const float* dy,
                   const int32_t* argmax, int64_t n0, int64_t g, float* out) {
  const int64_t pooled = int64_t(ps.out_h()) * ps.out_w();
  for (int64_t i = 0; i < g; ++i)
    for (int64_t k = 0; k < sh.k; ++k) {
      const int64_t at = ((n0 + i) * sh.k + k) * pooled;
      maxpool_backward_plane(ps, dy + at, argmax + at, out + k * g * geo.PQ + i * geo.PQ, true);
    }
}

// dy of a chunk as (K, g*PQ): gathered from dy, or scattered from a fused pool's gradient.
void chunk_dy(const Conv2dShape& sh, const Geometry& geo, const Pooled& pool, const float* dy, int64_t n0, int64_t g,
              float* out) {
  if (pool.shape)
    gather_pooled(sh, geo, *pool.shape, dy, pool.argmax, n0, g, out);
  else
    gather(sh, geo, dy, n0, g, out);
}

// The data pass of one chunk whose dy sits in buf.out (K, g*PQ): dcol (CRS, g*PQ) = W^T dy,
// folded back onto each image's dx (zeroed first, while in cache, with dx_overwrite).
void data_pass(const Conv2dShape& sh, const Geometry& geo, Scratch& buf, const float* weight, int64_t n0, int64_t g,
               float* dx) {
  const int64_t ld = g * geo.PQ;
  gemm(sh, true, false, geo.CRS, ld, sh.k, weight, geo.CRS, buf.out.data(), ld, 0.0f, buf.col.data(), ld);
  for (int64_t i = 0; i < g; ++i) {
    float* dxi = dx + (n0 + i) * geo.image;
    if (sh.dx_overwrite) std::fill(dxi, dxi + geo.image, 0.0f);
    col2im_rows_add(sh, buf.col.data() + i * geo.PQ, ld, dxi);
  }
}

}  // namespace

void forward(const Conv2dShape& sh, const float* x, const float* weight, const float* bias, float* y,
             const Pooled& pool) {
  const Geometry geo(sh);
  const bool bf16 = unfolds_bf16(sh);
  std::vector<uint16_t> w16(bf16 ? size_t(sh.k * geo.CRS) : 0);  // the weights cast once per call
  float32_to_bf16(int64_t(w16.size()), weight, w16.data());
  parallel_for(geo.chunks, geo.CRS * geo.PQ * geo.chunk, [&](int64_t c0, int64_t c1) {
    Scratch& buf = thread_scratch(sh, geo);
    const size_t col_size = size_t(geo.CRS * geo.PQ) * geo.chunk;
    if (bf16 && buf.col16.size() < col_size) buf.col16.resize(col_size);
    for (int64_t ch = c0; ch < c1; ++ch) {
      const int64_t n0 = ch * geo.chunk, g = std::min<int64_t>(geo.chunk, sh.n - n0), ld = g * geo.PQ;
      // out (K, g*PQ) = W (K, CRS) col (CRS, g*PQ); then y[n0+i][k] = out[k][i*PQ ...] + bias[k]
      if (bf16) {
        unfold_bf16(sh, geo, x, n0, g, buf.col16.data());
        gemm_bf16(false, false, sh.k, ld, geo.CRS, w16.data(), geo.CRS, buf.col16.data(), ld, 0.0f, buf.out.data(), ld);
      } else {
        unfold(sh, geo, x, n0, g, buf.col.data());
        gemm(sh, false, false, sh.k, ld, geo.CRS, weight, geo.CRS, buf.col.data(), ld, 0.0f, buf.out.data(), ld);
      }
      for (int64_t i = 0; i < g; ++i)
        for (int64_t k = 0; k < sh.k; ++k) {
          float* src = buf.out.data() + k * ld + i * geo.PQ;
          const float add = bias ? bias[k] : 0.0f;
          if (pool.shape) {  // the plane pooled while in cache: y (N,K,P',Q') and its argmax
            const int64_t at = ((n0 + i) * sh.k + k) * pool.shape->out_h() * pool.shape->out_w();
            int32_t* a = pool.argmax_out ? pool.argmax_out + at : nullptr;
            if (!a) {  // inference: the bias added after the pool, to a quarter of the values (the
              // maximum of v + b is the maximum of v, plus b: rounding is monotonic), then the ReLU
              const int64_t pooled = int64_t(pool.shape->out_h()) * pool.shape->out_w();
              float* yp = y + at;
              maxpool_plane(*pool.shape, src, yp, nullptr);
              if (pool.relu)
                for (int64_t o = 0; o < pooled; ++o) yp[o] = std::max(yp[o] + add, 0.0f);
              else
                for (int64_t o = 0; o < pooled; ++o) yp[o] += add;
              continue;
            }
            for (int64_t j = 0; j < geo.PQ; ++j) src[j] += add;
            maxpool_plane(*pool.shape, src, y + at, a);
            if (pool.relu) {  // the ReLU after the pool, on the plane in cache; no gradient where y <= 0
              const int64_t pooled = int64_t(pool.shape->out_h()) * pool.shape->out_w();
              float* yp = y + at;
              for (int64_t o = 0; o < pooled; ++o) {
                const bool on = yp[o] > 0.0f;
                yp[o] = on ? yp[o] : 0.0f;
                if (a && !on) a[o] = -1;
              }
            }
            continue;
          }
          float* dst = y + ((n0 + i) * sh.k + k) * geo.PQ;
          for (int64_t j = 0; j < geo.PQ; ++j) dst[j] = src[j] + add;
        }
    }
  });
}

void backward_data(const Conv2dShape& sh, const float* dy, const float* weight, float* dx, const Pooled& pool) {
  const Geometry geo(sh);
  parallel_for(geo.chunks, geo.CRS * geo.PQ * geo.chunk, [&](int64_t c0, int64_t c1) {
    Scratch& buf = thread_scratch(sh, geo);
    for (int64_t ch = c0; ch < c1; ++ch) {
      const int64_t n0 = ch * geo.chunk, g = std::min<int64_t>(geo.chunk, sh.n - n0);
      chunk_dy(sh, geo, pool, dy, n0, g, buf.out.data());
      data_pass(sh, geo, buf, weight, n0, g, dx);
    }
  });
}

void backward_weight(const Conv2dShape& sh, const float* x, const float* dy, float* dweight, const Pooled& pool) {
  backward(sh, x, dy, nullptr, nullptr, dweight, pool);
}

// Both passes chunk by chunk: each chunk's dy gathered (or scattered from the pooled gradient)
// once for the data pass and the weights pass. dx, when given, as backward_data computes it.
// dW += sum over images of dy col^T. The chunks are dealt into kParts fixed parts (part p takes
// chunks p, p + kParts, ...), each summed in chunk order into its own partial dW; the partials
// are then added in part order. The order of every sum is fixed by the shape alone: the result
// is the same for any number of threads.
void backward(const Conv2dShape& sh, const float* x, const float* dy, const float* weight, float* dx, float* dweight,
              const Pooled& pool) {
  if (!dweight) {
    if (dx) backward_data(sh, dy, weight, dx, pool);
    return;
  }
  constexpr int64_t kParts = 8;
  const Geometry geo(sh);
  const int64_t parts = std::min<int64_t>(kParts, geo.chunks), KCRS = sh.k * geo.CRS;
  // (parts, K, CRS), kept between calls: a fresh vector of this size would be mapped and
  // page-faulted anew every step.
  // The calling thread's buffer, taken by reference: the worker threads must all see this one.
  static thread_local std::vector<float> partial_buffer;
  std::vector<float>& partial = partial_buffer;
  if (partial.size() < size_t(parts * KCRS)) partial.resize(size_t(parts * KCRS));
  std::fill_n(partial.begin(), parts * KCRS, 0.0f);
  parallel_for(parts, geo.CRS * geo.PQ * geo.chunk * (geo.chunks / parts + 1), [&](int64_t p0, int64_t p1) {
    Scratch& buf = thread_scratch(sh, geo);
    for (int64_t p = p0; p < p1; ++p)
      for (int64_t ch = p; ch < geo.chunks; ch += parts) {
        const int64_t n0 = ch * geo.chunk, g = std::min<int64_t>(geo.chunk, sh.n - n0), ld = g * geo.PQ;
        chunk_dy(sh, geo, pool, dy, n0, g, buf.out.data());
        if (dx) data_pass(sh, geo, buf, weight, n0, g, dx);  // this chunk's images, as backward_data
        unfold(sh, geo, x, n0, g, buf.col.data());
        // partial_p (K, CRS) += dy (K, g*PQ) col^T (g*PQ, CRS)
        gemm(sh, false, true, sh.k, geo.CRS, ld, buf.out.data(), ld, buf.col.data(), ld, 1.0f,
             partial.data() + p * KCRS, geo.CRS);
      }
  });
  parallel_for(KCRS, parts, [&](int64_t b, int64_t e) {
    for (int64_t j = b; j < e; ++j) {
      float sum = partial[size_t(j)];
      for (int64_t p = 1; p < parts; ++p) sum += partial[size_t(p * KCRS + j)];
      dweight[j] += sum;
    }
  });
}

}  // namespace macer::kernels::cpu::unfold_conv
