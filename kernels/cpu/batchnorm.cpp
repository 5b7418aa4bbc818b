// CPU batch normalisation (kernels/batchnorm.h), PyTorch's definition: biased variance to
// normalise, unbiased variance in the running estimate; statistics in one pass each, summed in
// float blocks gathered in double (see channel_sums, row_sums). Work is split over the threads
// and each channel summed in one fixed order, so the number of threads changes no bit.
#include "kernels/batchnorm.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/check.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/parallel.h"
#include "kernels/precision.h"

namespace macer::kernels::cpu {

namespace {

// Sums over one channel's N rows of HW values: each row in blocks of at most 512 values, each
// block summed in eight float lanes (so the adds vectorise and pipeline), every block's lanes
// added into double partials; one fixed order, whatever the number of threads.
constexpr int kBlock = 512;
struct Sums {
  double a = 0, b = 0;
};

// sum of term_a(j) and of term_b(j) over the channel, j the flat index of x[n][c][i]
template <class TermA, class TermB>
Sums channel_sums(const BatchNormShape& s, int64_t c, TermA term_a, TermB term_b) {
  Sums out;
  for (int n = 0; n < s.n; ++n) {
    const int64_t row = (int64_t(n) * s.c + c) * s.hw;
    for (int i0 = 0; i0 < s.hw; i0 += kBlock) {
      const int i1 = i0 + kBlock < s.hw ? i0 + kBlock : s.hw;
      float la[8] = {0, 0, 0, 0, 0, 0, 0, 0}, lb[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int i = i0;
      for (; i + 8 <= i1; i += 8)
        for (int l = 0; l < 8; ++l) {
          la[l] += term_a(row + i + l);
          lb[l] += term_b(row + i + l);
        }
      for (; i < i1; ++i) {
        la[i % 8] += term_a(row + i);
        lb[i % 8] += term_b(row + i);
      }
      out.a += (double(la[0]) + la[1] + la[2] + la[3]) + (double(la[4]) + la[5] + la[6] + la[7]);
      out.b += (double(lb[0]) + lb[1] + lb[2] + lb[3]) + (double(lb[4]) + lb[5] + lb[6] + lb[7]);
    }
  }
  return out;
}

// y = a x + b over channel c (then max(., 0) when the batch norm carries its ReLU).
void apply_affine(const BatchNormShape& s, int64_t c, float a, float b, const float* x, float* y) {
  for (int n = 0; n < s.n; ++n) {
    const float* xp = x + (int64_t(n) * s.c + c) * s.hw;
    float* yp = y + (int64_t(n) * s.c + c) * s.hw;
    if (s.relu)
      for (int i = 0; i < s.hw; ++i) yp[i] = std::max(a * xp[i] + b, 0.0f);
    else
      for (int i = 0; i < s.hw; ++i) yp[i] = a * xp[i] + b;
  }
}

// Channel c's statistics from its mean and sum of squared deviations over m values: saved for
// the backward, folded into the running estimates, and returned as y = a x + b.
void train_statistics(const BatchNormShape& s, int64_t c, int64_t m, double mean, double sumsq, const float* gamma,
                      const float* beta, float* running_mean, float* running_var, float* save_mean,
                      float* save_invstd, float& a, float& b) {
  const double var = sumsq / double(m);  // biased: used to normalise
  const double invstd = 1.0 / std::sqrt(var + s.eps);
  save_mean[c] = float(mean);
  save_invstd[c] = float(invstd);
  running_mean[c] = float((1.0 - s.momentum) * running_mean[c] + s.momentum * mean);
  const double unbiased = m > 1 ? sumsq / double(m - 1) : var;
  running_var[c] = float((1.0 - s.momentum) * running_var[c] + s.momentum * unbiased);
  // y = a x + b with a = gamma invstd, b = beta - mean gamma invstd
  a = float(gamma[c] * invstd);
  b = float(beta[c] - mean * gamma[c] * invstd);
}

// ---- channels-last: x as N*HW rows of C values, float32 or bf16 bits ------------------------
// (read and written through load and store, kernels/precision.h)

// Per-channel sums over the rows, vectorised along the row: rows in chunks of kRows, each chunk
// summed per channel in float and stored as a double partial, the partials added in chunk order
// (the result does not depend on the threads).
constexpr int64_t kRows = 64;

// chunk(r0, r1, la, lb) adds the chunk of rows [r0, r1) into la and lb (C floats each, zeroed).
template <class Chunk>
void row_sums(const BatchNormShape& s, Chunk chunk, std::vector<double>& sum_a, std::vector<double>& sum_b) {
  const int64_t C = s.c, rows = int64_t(s.n) * s.hw, chunks = (rows + kRows - 1) / kRows;
  std::vector<double> part(size_t(chunks * 2 * C));
  parallel_for(chunks, 2 * kRows * C, [&](int64_t k0, int64_t k1) {
    std::vector<float> la(static_cast<size_t>(C)), lb(static_cast<size_t>(C));
    for (int64_t k = k0; k < k1; ++k) {
      std::fill(la.begin(), la.end(), 0.0f);
      std::fill(lb.begin(), lb.end(), 0.0f);
      chunk(k * kRows, std::min(rows, (k + 1) * kRows), la.data(), lb.data());
      for (int64_t c = 0; c < C; ++c) {
        part[size_t((2 * k) * C + c)] = la[size_t(c)];
        part[size_t((2 * k + 1) * C + c)] = lb[size_t(c)];
      }
    }
  });
  sum_a.assign(size_t(C), 0.0);
  sum_b.assign(size_t(C), 0.0);
  for (int64_t k = 0; k < chunks; ++k)
    for (int64_t c = 0; c < C; ++c) {
      sum_a[size_t(c)] += part[size_t((2 * k) * C + c)];
      sum_b[size_t(c)] += part[size_t((2 * k + 1) * C + c)];
    }
}

// The loops over rows [r0, r1) of C values, x and y float32 or bf16 bits (T); each one body,
// called as it is for float32 and through a copy compiled for AVX-512 too for bf16
// (kernels/cpu/isa.h; this file is compiled without FMA contraction, CMakeLists.txt, so both
// copies round alike).
// la[c] += x, or (x - mean[c])^2 with mean.
template <class T>
inline void sums_x_rows(const T* x, const float* mean, int64_t r0, int64_t r1, int64_t C, float* la) {
  for (int64_t r = r0; r < r1; ++r)
    if (mean)
      for (int64_t c = 0; c < C; ++c) {
        const float d = load(x, r * C + c) - mean[c];
        la[c] += d * d;
      }
    else
      for (int64_t c = 0; c < C; ++c) la[c] += load(x, r * C + c);
}
// la[c] += g, lb[c] += g (x - mean[c]), g = dy, masked to y > 0 with y.
template <class T>
inline void sums_g_rows(const float* dy, const T* y, const T* x, const float* mean, int64_t r0, int64_t r1, int64_t C,
                        float* la, float* lb) {
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t j = r * C + c;
      const float d = dy[j], g = !y || load(y, j) > 0.0f ? d : 0.0f;  // d loaded always: a vector select
      la[c] += g;
      lb[c] += g * (load(x, j) - mean[c]);
    }
}
// y = a[c] x + b[c], then max(., 0) with relu.
template <class T>
inline void affine_rows(const float* a, const float* b, bool relu, const T* x, T* y, int64_t r0, int64_t r1,
                        int64_t C) {
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t c = 0; c < C; ++c) {
      const float v = a[c] * load(x, r * C + c) + b[c];
      store(y, r * C + c, relu ? std::max(v, 0.0f) : v);
    }
}
// dx (=, or += without overwrite) A[c] g + B[c] (x - mean[c]) + K[c], g as in sums_g_rows.
template <class T>
inline void dx_rows(const float* A, const float* B, const float* K, const float* mean, const float* dy, const T* y,
                    const T* x, float* dx, bool overwrite, int64_t r0, int64_t r1, int64_t C) {
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t j = r * C + c;
      const float d = dy[j], g = !y || load(y, j) > 0.0f ? d : 0.0f;
      const float v = A[c] * g + B[c] * (load(x, j) - mean[c]) + K[c];
      dx[j] = overwrite ? v : dx[j] + v;
    }
}

// The four for either type: float32 as it is, bf16 through the AVX-512 copies.
#define MACER_BN_ROWS(T, ATTR)                                                                                  \
  ATTR void sums_x(const T* x, const float* mean, int64_t r0, int64_t r1, int64_t C, float* la) {              \
    sums_x_rows(x, mean, r0, r1, C, la);                                                                       \
  }                                                                                                            \
  ATTR void sums_g(const float* dy, const T* y, const T* x, const float* mean, int64_t r0, int64_t r1, int64_t C, \
                   float* la, float* lb) {                                                                     \
    sums_g_rows(dy, y, x, mean, r0, r1, C, la, lb);                                                            \
  }                                                                                                            \
  ATTR void affine(const float* a, const float* b, bool relu, const T* x, T* y, int64_t r0, int64_t r1,        \
                   int64_t C) {                                                                                \
    affine_rows(a, b, relu, x, y, r0, r1, C);                                                                  \
  }                                                                                                            \
  ATTR void dx_of(const float* A, const float* B, const float* K, const float* mean, const float* dy, const T* y, \
                  const T* x, float* dx, bool overwrite, int64_t r0, int64_t r1, int64_t C) {                  \
    dx_rows(A, B, K, mean, dy, y, x, dx, overwrite, r0, r1, C);                                                \
  }
MACER_BN_ROWS(float, )
MACER_BN_ROWS(uint16_t, MACER_CPU_CLONES)
#undef MACER_BN_ROWS

// For every element j = r C + c: f(j, c), rows split over the threads.
template <class F>
void for_rows(const BatchNormShape& s, int64_t cost, F f) {
  const int64_t C = s.c;
  parallel_for(int64_t(s.n) * s.hw, cost * C, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t c = 0; c < C; ++c) f(r * C + c, c);
  });
}

// y = a[c] x + b[c] (then the ReLU when fused).
template <class T>
void apply_affine_rows(const BatchNormShape& s, const float* a, const float* b, const T* x, T* y) {
  const int64_t C = s.c;
  parallel_for(int64_t(s.n) * s.hw, 2 * C, [&](int64_t r0, int64_t r1) { affine(a, b, s.relu, x, y, r0, r1, C); });
}

template <class T>
void forward_train_rows(const BatchNormShape& s, const T* x, const float* gamma, const float* beta,
                        float* running_mean, float* running_var, T* y, float* save_mean, float* save_invstd) {
  const int64_t m = int64_t(s.n) * s.hw;
  std::vector<double> sum, sumsq, unused;
  std::vector<float> mean(static_cast<size_t>(s.c));
  row_sums(s, [&](int64_t r0, int64_t r1, float* la, float*) { sums_x(x, nullptr, r0, r1, s.c, la); }, sum, unused);
  for (int c = 0; c < s.c; ++c) mean[size_t(c)] = float(sum[size_t(c)] / double(m));
  row_sums(
      s, [&](int64_t r0, int64_t r1, float* la, float*) { sums_x(x, mean.data(), r0, r1, s.c, la); }, sumsq, unused);
  std::vector<float> a(static_cast<size_t>(s.c)), b(static_cast<size_t>(s.c));
  for (int c = 0; c < s.c; ++c)
    train_statistics(s, c, m, sum[size_t(c)] / double(m), sumsq[size_t(c)], gamma, beta, running_mean, running_var,
                     save_mean, save_invstd, a[size_t(c)], b[size_t(c)]);
  apply_affine_rows(s, a.data(), b.data(), x, y);
}

}  // namespace

void batchnorm_forward_train(const BatchNormShape& s, const float* x, const float* gamma, const float* beta,
                             float* running_mean, float* running_var, float* y, float* save_mean, float* save_invstd) {
  if (s.channels_last) return forward_train_rows(s, x, gamma, beta, running_mean, running_var, y, save_mean, save_invstd);
  const int64_t m = int64_t(s.n) * s.hw;
  parallel_for(s.c, 3 * m, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      // Two passes: the mean, then the sum of squared deviations from it (no cancellation).
      const auto none = [](int64_t) { return 0.0f; };
      const double mean = channel_sums(s, c, [&](int64_t j) { return x[j]; }, none).a / double(m);
      const float meanf = float(mean);
      const double sumsq = channel_sums(
                               s, c,
                               [&](int64_t j) {
                                 const float d = x[j] - meanf;
                                 return d * d;
                               },
                               none)
                               .a;
      float a, b;
      train_statistics(s, c, m, mean, sumsq, gamma, beta, running_mean, running_var, save_mean, save_invstd, a, b);
      apply_affine(s, c, a, b, x, y);
    }
  });
}

namespace {
template <class T>
void forward_eval_rows(const BatchNormShape& s, const T* x, const float* gamma, const float* beta,
                       const float* running_mean, const float* running_var, T* y) {
  std::vector<float> a(static_cast<size_t>(s.c)), b(static_cast<size_t>(s.c));
  for (int c = 0; c < s.c; ++c) {
    a[size_t(c)] = gamma[c] / std::sqrt(running_var[c] + s.eps);
    b[size_t(c)] = beta[c] - running_mean[c] * a[size_t(c)];
  }
  apply_affine_rows(s, a.data(), b.data(), x, y);
}
}  // namespace

void batchnorm_forward_eval(const BatchNormShape& s, const float* x, const float* gamma, const float* beta,
                            const float* running_mean, const float* running_var, float* y) {
  if (s.channels_last) return forward_eval_rows(s, x, gamma, beta, running_mean, running_var, y);
  parallel_for(s.c, int64_t(s.n) * s.hw, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const float invstd = 1.0f / std::sqrt(running_var[c] + s.eps);
      const float a = gamma[c] * invstd, b = beta[c] - running_mean[c] * a;
      apply_affine(s, c, a, b, x, y);
    }
  });
}

namespace {

// The channels-last BN backward on g = dy, or with kRelu on g = dy where y > 0, else 0; x and y
// float32 or bf16 bits (T), dy and dx float32.
template <bool kRelu, class T>
void backward_rows(const BatchNormShape& s, const float* dy, const T* y, const T* x, const float* gamma,
                   const float* save_mean, const float* save_invstd, float* dx, float* dgamma, float* dbeta) {
  const double m = double(int64_t(s.n) * s.hw);
  const T* mask = kRelu ? y : nullptr;
  std::vector<double> sum_g, sum_gx;
  row_sums(
      s, [&](int64_t r0, int64_t r1, float* la, float* lb) { sums_g(dy, mask, x, save_mean, r0, r1, s.c, la, lb); },
      sum_g, sum_gx);
  std::vector<float> A(static_cast<size_t>(s.c)), B(static_cast<size_t>(s.c)), C(static_cast<size_t>(s.c));
  for (int c = 0; c < s.c; ++c) {
    const double invstd = save_invstd[c], sum_dy = sum_g[size_t(c)], sum_dy_xhat = invstd * sum_gx[size_t(c)];
    dbeta[c] += float(sum_dy);
    dgamma[c] += float(sum_dy_xhat);
    const double k = gamma[c] * invstd / m;  // the coefficients below, as in the (N,C,H,W) case
    A[size_t(c)] = float(k * m), B[size_t(c)] = float(-k * invstd * sum_dy_xhat), C[size_t(c)] = float(-k * sum_dy);
  }
  parallel_for(int64_t(s.n) * s.hw, 4 * s.c, [&](int64_t r0, int64_t r1) {
    dx_of(A.data(), B.data(), C.data(), save_mean, dy, mask, x, dx, s.dx_overwrite, r0, r1, s.c);
  });
}

// The BN backward on g = dy, or with kRelu on g = dy where y > 0, else 0.
template <bool kRelu>
void backward_impl(const BatchNormShape& s, const float* dy, const float* y, const float* x, const float* gamma,
                   const float* save_mean, const float* save_invstd, float* dx, float* dgamma, float* dbeta) {
  if (s.channels_last) return backward_rows<kRelu>(s, dy, y, x, gamma, save_mean, save_invstd, dx, dgamma, dbeta);
  const double m = double(int64_t(s.n) * s.hw);
  const auto g = [=](int64_t j) {
    const float d = dy[j];  // loaded unconditionally, so the mask is a vector select
    if constexpr (kRelu) return y[j] > 0.0f ? d : 0.0f;
    return d;
  };
  parallel_for(s.c, 3 * int64_t(s.n) * s.hw, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const double mean = save_mean[c], invstd = save_invstd[c];
      // sum g and sum g * xhat = invstd * sum g (x - mean) over the channel
      const float meanf = float(mean);
      const Sums sums = channel_sums(
          s, c, [&](int64_t j) { return g(j); }, [&](int64_t j) { return g(j) * (x[j] - meanf); });
      const double sum_dy = sums.a, sum_dy_xhat = invstd * sums.b;
      dbeta[c] += float(sum_dy);
      dgamma[c] += float(sum_dy_xhat);
      // dx = gamma invstd / M (M g - sum g - xhat sum g*xhat), expanded per channel into
      // dx += A g + B (x - mean) + C: A = gamma invstd, B = -gamma invstd^2 sum_g_xhat / M,
      // C = -gamma invstd sum_g / M (coefficients in double, the elementwise step in float)
      const double k = gamma[c] * invstd / m;
      const float A = float(k * m), B = float(-k * invstd * sum_dy_xhat), C = float(-k * sum_dy);
      for (int n = 0; n < s.n; ++n) {
        const int64_t off = (int64_t(n) * s.c + c) * s.hw;
        if (s.dx_overwrite)
          for (int i = 0; i < s.hw; ++i) dx[off + i] = A * g(off + i) + B * (x[off + i] - meanf) + C;
        else
          for (int i = 0; i < s.hw; ++i) dx[off + i] += A * g(off + i) + B * (x[off + i] - meanf) + C;
      }
    }
  });
}

}  // namespace

void batchnorm_backward(const BatchNormShape& s, const float* dy, const float* x, const float* gamma,
                        const float* save_mean, const float* save_invstd, float* dx, float* dgamma, float* dbeta) {
  backward_impl<false>(s, dy, nullptr, x, gamma, save_mean, save_invstd, dx, dgamma, dbeta);
}

void batchnorm_relu_backward(const BatchNormShape& s, const float* dy, const float* y, const float* x,
                             const float* gamma, const float* save_mean, const float* save_invstd, float* dx,
                             float* dgamma, float* dbeta) {
  backward_impl<true>(s, dy, y, x, gamma, save_mean, save_invstd, dx, dgamma, dbeta);
}

namespace {
template <class T>
void backward_eval_data_rows(const BatchNormShape& s, const float* dy, const T* y, const float* gamma,
                             const float* running_var, float* dx) {
  std::vector<float> a(static_cast<size_t>(s.c));
  for (int c = 0; c < s.c; ++c) a[size_t(c)] = gamma[c] / std::sqrt(running_var[c] + s.eps);
  if (s.relu)
    for_rows(s, 3, [&](int64_t j, int64_t c) { dx[j] += load(y, j) > 0.0f ? a[c] * dy[j] : 0.0f; });
  else
    for_rows(s, 2, [&](int64_t j, int64_t c) { dx[j] += a[c] * dy[j]; });
}
}  // namespace

void batchnorm_backward_eval_data(const BatchNormShape& s, const float* dy, const float* y, const float* gamma,
                                  const float* running_var, float* dx) {
  if (s.channels_last) return backward_eval_data_rows(s, dy, y, gamma, running_var, dx);
  parallel_for(s.c, int64_t(s.n) * s.hw, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const float a = gamma[c] / std::sqrt(running_var[c] + s.eps);  // d y / d x of the channel
      for (int n = 0; n < s.n; ++n) {
        const int64_t off = (int64_t(n) * s.c + c) * s.hw;
        if (s.relu)
          for (int i = 0; i < s.hw; ++i) dx[off + i] += y[off + i] > 0.0f ? a * dy[off + i] : 0.0f;
        else
          for (int i = 0; i < s.hw; ++i) dx[off + i] += a * dy[off + i];
      }
    }
  });
}

// ---- bf16 activations (channels-last only) ---------------------------------------------------

void batchnorm_forward_train(const BatchNormShape& s, const uint16_t* x, const float* gamma, const float* beta,
                             float* running_mean, float* running_var, uint16_t* y, float* save_mean,
                             float* save_invstd) {
  MACER_CHECK(s.channels_last, "batch norm: bf16 activations must be channels-last");
  forward_train_rows(s, x, gamma, beta, running_mean, running_var, y, save_mean, save_invstd);
}

void batchnorm_forward_eval(const BatchNormShape& s, const uint16_t* x, const float* gamma, const float* beta,
                            const float* running_mean, const float* running_var, uint16_t* y) {
  MACER_CHECK(s.channels_last, "batch norm: bf16 activations must be channels-last");
  forward_eval_rows(s, x, gamma, beta, running_mean, running_var, y);
}

void batchnorm_backward(const BatchNormShape& s, const float* dy, const uint16_t* y, const uint16_t* x,
                        const float* gamma, const float* save_mean, const float* save_invstd, float* dx,
                        float* dgamma, float* dbeta) {
  MACER_CHECK(s.channels_last, "batch norm: bf16 activations must be channels-last");
  if (s.relu) return backward_rows<true>(s, dy, y, x, gamma, save_mean, save_invstd, dx, dgamma, dbeta);
  backward_rows<false>(s, dy, y, x, gamma, save_mean, save_invstd, dx, dgamma, dbeta);
}

void batchnorm_backward_eval_data(const BatchNormShape& s, const float* dy, const uint16_t* y, const float* gamma,
                                  const float* running_var, float* dx) {
  MACER_CHECK(s.channels_last, "batch norm: bf16 activations must be channels-last");
  backward_eval_data_rows(s, dy, y, gamma, running_var, dx);
}

}  // namespace macer::kernels::cpu
