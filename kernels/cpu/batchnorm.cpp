// CPU batch normalisation (kernels/batchnorm.h), PyTorch's definition: biased variance to
// normalise, unbiased variance in the running estimate; statistics summed in double. Channels
// are split over the threads and each channel is summed in one fixed order (eight interleaved
// partial sums, combined pairwise), so the number of threads changes no bit.
#include "kernels/batchnorm.h"

#include <cmath>
#include <cstdint>

#include "kernels/cpu/parallel.h"

namespace macer::kernels::cpu {

namespace {

// Eight partial sums in double: lane l takes the elements i = l (mod 8) of each row.
struct Lanes {
  double v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  double total() const { return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7])); }
};

// sum over the channel's N rows of f(i, row offset), f returning the term as double
template <class Term>
double channel_sum(const BatchNormShape& s, int64_t c, Term term) {
  Lanes acc;
  for (int n = 0; n < s.n; ++n) {
    const int64_t off = (int64_t(n) * s.c + c) * s.hw;
    int i = 0;
    for (; i + 8 <= s.hw; i += 8)
      for (int l = 0; l < 8; ++l) acc.v[l] += term(off + i + l);
    for (; i < s.hw; ++i) acc.v[i % 8] += term(off + i);
  }
  return acc.total();
}

}  // namespace

void batchnorm_forward_train(const BatchNormShape& s, const float* x, const float* gamma, const float* beta,
                             float* running_mean, float* running_var, float* y, float* save_mean, float* save_invstd) {
  const int64_t m = int64_t(s.n) * s.hw;
  parallel_for(s.c, 3 * m, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const double mean = channel_sum(s, c, [&](int64_t j) { return double(x[j]); }) / double(m);
      const double sumsq = channel_sum(s, c, [&](int64_t j) {
        const double d = double(x[j]) - mean;
        return d * d;
      });
      const double var = sumsq / double(m);  // biased: used to normalise
      const double invstd = 1.0 / std::sqrt(var + s.eps);
      save_mean[c] = float(mean);
      save_invstd[c] = float(invstd);
      running_mean[c] = float((1.0 - s.momentum) * running_mean[c] + s.momentum * mean);
      const double unbiased = m > 1 ? sumsq / double(m - 1) : var;
      running_var[c] = float((1.0 - s.momentum) * running_var[c] + s.momentum * unbiased);
      // y = a x + b with a = gamma invstd, b = beta - mean gamma invstd
      const float a = float(gamma[c] * invstd), b = float(beta[c] - mean * gamma[c] * invstd);
      for (int n = 0; n < s.n; ++n) {
        const float* xp = x + (int64_t(n) * s.c + c) * s.hw;
        float* yp = y + (int64_t(n) * s.c + c) * s.hw;
        for (int i = 0; i < s.hw; ++i) yp[i] = a * xp[i] + b;
      }
    }
  });
}

void batchnorm_forward_eval(const BatchNormShape& s, const float* x, const float* gamma, const float* beta,
                            const float* running_mean, const float* running_var, float* y) {
  parallel_for(s.c, int64_t(s.n) * s.hw, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const float invstd = 1.0f / std::sqrt(running_var[c] + s.eps);
      const float a = gamma[c] * invstd, b = beta[c] - running_mean[c] * a;
      for (int n = 0; n < s.n; ++n) {
        const float* xp = x + (int64_t(n) * s.c + c) * s.hw;
        float* yp = y + (int64_t(n) * s.c + c) * s.hw;
        for (int i = 0; i < s.hw; ++i) yp[i] = a * xp[i] + b;
      }
    }
  });
}

void batchnorm_backward(const BatchNormShape& s, const float* dy, const float* x, const float* gamma,
                        const float* save_mean, const float* save_invstd, float* dx, float* dgamma, float* dbeta) {
  const double m = double(int64_t(s.n) * s.hw);
  parallel_for(s.c, 3 * int64_t(s.n) * s.hw, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const double mean = save_mean[c], invstd = save_invstd[c];
      // sum dy and sum dy * xhat = invstd * sum dy (x - mean) over the channel
      const double sum_dy = channel_sum(s, c, [&](int64_t j) { return double(dy[j]); });
      const double sum_dy_xhat =
          invstd * channel_sum(s, c, [&](int64_t j) { return double(dy[j]) * (double(x[j]) - mean); });
      dbeta[c] += float(sum_dy);
      dgamma[c] += float(sum_dy_xhat);
      // dx = gamma invstd / M (M dy - sum dy - xhat sum dy*xhat), expanded per channel into
      // dx += A dy + B (x - mean) + C: A = gamma invstd, B = -gamma invstd^2 sum_dy_xhat / M,
      // C = -gamma invstd sum_dy / M (coefficients in double, the elementwise step in float)
      const double k = gamma[c] * invstd / m;
      const float A = float(k * m), B = float(-k * invstd * sum_dy_xhat), C = float(-k * sum_dy);
      const float meanf = float(mean);
      for (int n = 0; n < s.n; ++n) {
        const int64_t off = (int64_t(n) * s.c + c) * s.hw;
        const float *xp = x + off, *dyp = dy + off;
        float* dxp = dx + off;
        for (int i = 0; i < s.hw; ++i) dxp[i] += A * dyp[i] + B * (xp[i] - meanf) + C;
      }
    }
  });
}

}  // namespace macer::kernels::cpu
