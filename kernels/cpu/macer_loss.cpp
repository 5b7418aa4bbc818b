// CPU fused MACER objective (kernels/macer_loss.h): forward and hand-written backward as
// SPEC.md ("The MACER objective") derives them, computed in double per input. Inputs are split
// over the threads; the loss sums the per-input terms afterwards in input order (no bit moves).
#include "kernels/macer_loss.h"

#include <algorithm>
#include <boost/math/distributions/normal.hpp>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/parallel.h"

namespace macer::kernels::cpu {

namespace {

constexpr double kSqrt2Pi = 2.5066282746310002;  // sqrt(2 pi): 1/phi(u) = sqrt(2 pi) exp(u^2/2)
constexpr double kInf = std::numeric_limits<double>::infinity();

// Phi^-1(q) in double for a probability held in float: -inf at q <= 0, +inf at q >= 1. The
// upper half goes through 1 - q (exact for a float q) so both tails keep full precision.
double inv_phi(float q) {
  if (!(q > 0.0f)) return -kInf;
  if (q >= 1.0f) return kInf;
  static const boost::math::normal_distribution<double> normal(0.0, 1.0);
  double qd = q;
  if (qd > 0.5) return -boost::math::quantile(normal, 1.0 - qd);
  return boost::math::quantile(normal, qd);
}

// out[c] = softmax(scale * z)[c] over one row of C logits, max-subtracted, in double.
void softmax_row(const float* z, int C, double scale, double* out) {
  double m = -kInf;
  for (int c = 0; c < C; ++c) m = std::max(m, scale * double(z[c]));
  double sum = 0.0;
  for (int c = 0; c < C; ++c) sum += out[c] = std::exp(scale * double(z[c]) - m);
  for (int c = 0; c < C; ++c) out[c] /= sum;
}

}  // namespace

void macer_loss_forward(const MacerLossParams& p, const float* logits, const int32_t* labels, float* loss, float* cl,
                        float* rl, const MacerSaved& saved) {
  const int B = p.batch, k = p.copies, C = p.classes;
  std::vector<double> cl_all(B), rl_all(B);  // (B) the terms of each input, in double
  parallel_for(B, int64_t(k) * C * 8, [&](int64_t b0, int64_t b1) {
    std::vector<double> s(C), t(C), q(C);  // (C) softmax row, beta-softmax row, q[b,:]
    for (int64_t b = b0; b < b1; ++b) {
      const float* z = logits + int64_t(b) * k * C;  // (k, C)
      const int y = labels[b];
      // p[b,y] = mean_j softmax(z_j)[y];  q[b,:] = mean_j softmax(beta z_j)
      double p_y = 0.0;
      std::fill(q.begin(), q.end(), 0.0);
      for (int j = 0; j < k; ++j) {
        softmax_row(z + int64_t(j) * C, C, 1.0, s.data());
        softmax_row(z + int64_t(j) * C, C, double(p.beta), t.data());
        p_y += s[y];
        for (int c = 0; c < C; ++c) q[c] += t[c];
      }
      p_y /= k;
      // term CL: cl_b = -log(p[b,y] + 1e-10)  (finite: at most -log(1e-10) = 23.03)
      const float p_label = float(p_y);
      const double cl_b = -std::log(double(p_label) + 1e-10);

      // The top two of q as float (what backward and the CUDA twin see); strict comparisons
      // keep the lower class first on ties.
      float q1 = -1.0f, q2 = -1.0f;
      int c1 = -1, c2 = -1;
      for (int c = 0; c < C; ++c) {
        const float v = float(q[c] / k);
        if (c1 < 0 || v > q1) {
          q2 = q1, c2 = c1;
          q1 = v, c1 = c;
        } else if (c2 < 0 || v > q2) {
          q2 = v, c2 = c;
        }
      }
      // term RL: xi_b = Phi^-1(q1) - Phi^-1(q2); active when c1 == y, xi finite, xi <= gamma
      // (q1 rounding to 1 or q2 to 0 makes xi infinite: the input is inactive, nothing blows up).
      const double xi = c2 >= 0 ? inv_phi(q1) - inv_phi(q2) : kInf;
      const bool active = c1 == y && std::isfinite(xi) && xi <= double(p.gamma);
      const double rl_b = active ? 0.5 * double(p.sigma) * (double(p.gamma) - xi) : 0.0;

      cl[b] = float(cl_b);
      rl[b] = float(rl_b);
      saved.p_label[b] = p_label;
      saved.q1[b] = q1;
      saved.q2[b] = c2 >= 0 ? q2 : 0.0f;
      saved.c1[b] = c1;
      saved.c2[b] = c2;
      saved.active[b] = active ? 1.0f : 0.0f;
      cl_all[b] = cl_b;
      rl_all[b] = rl_b;
    }
  });
  double sum_cl = 0.0, sum_rl = 0.0;
  for (int b = 0; b < B; ++b) sum_cl += cl_all[b], sum_rl += rl_all[b];
  // L = (CL + lambda RL) / B
  loss[0] = B > 0 ? float((sum_cl + double(p.lambda) * sum_rl) / B) : 0.0f;
}

void macer_loss_backward(const MacerLossParams& p, const float* logits, const int32_t* labels, const MacerSaved& saved,
                         const float* dloss, float* dlogits) {
  const int B = p.batch, k = p.copies, C = p.classes;
  const double G = dloss[0];
  const double beta = p.beta;
  parallel_for(B, int64_t(k) * C * 8, [&](int64_t b0, int64_t b1) {
    std::vector<double> s(C), t(C);
    for (int64_t b = b0; b < b1; ++b) {
      const float* z = logits + int64_t(b) * k * C;  // (k, C)
      float* dz = dlogits + int64_t(b) * k * C;      // (k, C)
      const int y = labels[b], c1 = saved.c1[b], c2 = saved.c2[b];
      const bool active = saved.active[b] != 0.0f;
      // term CL: g_y = -1 / (B k (p[b,y] + 1e-10))
      const double g_y = -1.0 / (double(B) * k * (double(saved.p_label[b]) + 1e-10));
      // term RL: a1 = -(lambda sigma / 2B) / phi(Phi^-1(q1)), a2 = +(lambda sigma / 2B) / phi(Phi^-1(q2)).
      // Active means xi finite, so both quantiles are finite; in double exp(u^2/2) stays finite
      // for any float q in (0, 1), and t[c2] a2 is bounded (about k / |u2| as q2 -> 0).
      double a1 = 0.0, a2 = 0.0;
      if (active) {
        const double coef = double(p.lambda) * double(p.sigma) / (2.0 * B) * kSqrt2Pi;
        const double u1 = inv_phi(saved.q1[b]), u2 = inv_phi(saved.q2[b]);
        a1 = -coef * std::exp(0.5 * u1 * u1);
        a2 = coef * std::exp(0.5 * u2 * u2);
      }
      for (int j = 0; j < k; ++j) {
        const float* zj = z + int64_t(j) * C;
        float* dzj = dz + int64_t(j) * C;
        softmax_row(zj, C, 1.0, s.data());
        if (active) softmax_row(zj, C, beta, t.data());
        const double ht = active ? a1 * t[c1] + a2 * t[c2] : 0.0;  // sum_c h[c] t[j,c]
        for (int c = 0; c < C; ++c) {
          // term CL: g_y s[j,c] ([c == y] - s[j,y])
          double g = g_y * s[c] * ((c == y ? 1.0 : 0.0) - s[y]);
          if (active) {
            // term RL: (beta / k) t[j,c] (h[c] - (a1 t[j,c1] + a2 t[j,c2]))
            const double h = (c == c1 ? a1 : 0.0) + (c == c2 ? a2 : 0.0);
            g += beta / k * t[c] * (h - ht);
          }
          dzj[c] += float(G * g);
        }
      }
    }
  });
}

}  // namespace macer::kernels::cpu
