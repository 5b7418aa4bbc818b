// CPU batch normalisation (kernels/batchnorm.h), PyTorch's definition: biased variance to
// normalise, unbiased variance in the running estimate; sums in double. Channels are split
// over the threads and each channel is summed in one fixed order, so threads change no bit.
#include "kernels/batchnorm.h"

#include <cmath>
#include <cstdint>

#include "kernels/cpu/parallel.h"

namespace macer::kernels::cpu {

void batchnorm_forward_train(const BatchNormShape& s, const float* x, const float* gamma, const float* beta,
                             float* running_mean, float* running_var, float* y, float* save_mean, float* save_invstd) {
  const int64_t m = int64_t(s.n) * s.hw;
  parallel_for(s.c, 3 * m, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      double sum = 0, sumsq = 0;
      for (int n = 0; n < s.n; ++n) {
        const float* xp = x + (int64_t(n) * s.c + c) * s.hw;
        for (int i = 0; i < s.hw; ++i) sum += xp[i];
      }
      double mean = sum / double(m);
      for (int n = 0; n < s.n; ++n) {
        const float* xp = x + (int64_t(n) * s.c + c) * s.hw;
        for (int i = 0; i < s.hw; ++i) sumsq += (xp[i] - mean) * (xp[i] - mean);
      }
      double var = sumsq / double(m);  // biased: used to normalise
      double invstd = 1.0 / std::sqrt(var + s.eps);
      save_mean[c] = float(mean);
      save_invstd[c] = float(invstd);
      running_mean[c] = float((1.0 - s.momentum) * running_mean[c] + s.momentum * mean);
      double unbiased = m > 1 ? sumsq / double(m - 1) : var;
      running_var[c] = float((1.0 - s.momentum) * running_var[c] + s.momentum * unbiased);
      float a = float(gamma[c] * invstd), b = float(beta[c] - mean * gamma[c] * invstd);
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
      float invstd = 1.0f / std::sqrt(running_var[c] + s.eps);
      float a = gamma[c] * invstd, b = beta[c] - running_mean[c] * a;
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
      // sum dy and sum dy * xhat over the channel
      double sum_dy = 0, sum_dy_xhat = 0;
      for (int n = 0; n < s.n; ++n) {
        const float* xp = x + (int64_t(n) * s.c + c) * s.hw;
        const float* dyp = dy + (int64_t(n) * s.c + c) * s.hw;
        for (int i = 0; i < s.hw; ++i) {
          sum_dy += dyp[i];
          sum_dy_xhat += dyp[i] * (xp[i] - mean) * invstd;
        }
      }
      dbeta[c] += float(sum_dy);
      dgamma[c] += float(sum_dy_xhat);
      // dx = gamma * invstd / M * (M dy - sum dy - xhat * sum dy*xhat)
      const double k = gamma[c] * invstd / m;
      for (int n = 0; n < s.n; ++n) {
        const float* xp = x + (int64_t(n) * s.c + c) * s.hw;
        const float* dyp = dy + (int64_t(n) * s.c + c) * s.hw;
        float* dxp = dx + (int64_t(n) * s.c + c) * s.hw;
        for (int i = 0; i < s.hw; ++i) {
          double xhat = (xp[i] - mean) * invstd;
          dxp[i] += float(k * (m * dyp[i] - sum_dy - xhat * sum_dy_xhat));
        }
      }
    }
  });
}

}  // namespace macer::kernels::cpu
