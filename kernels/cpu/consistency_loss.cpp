// CPU Consistency objective (kernels/consistency_loss.h): forward and hand-written backward in
// double per image; images are split over the threads, the loss summed afterwards in image order.
#include "kernels/consistency_loss.h"

#include <cmath>
#include <vector>

#include "kernels/cpu/log_softmax_row.h"
#include "kernels/cpu/parallel.h"

namespace macer::kernels::cpu {

namespace {

// One image's statistics: lp (k, C), log pbar (C), mlp (C).
struct ImageStats {
  std::vector<double> lp, log_pbar, mlp, column;
  ImageStats(int k, int C) : lp(size_t(k) * C), log_pbar(C), mlp(C), column(k) {}

  void compute(const float* z, int k, int C) {
    for (int i = 0; i < k; ++i) log_softmax_row(z + int64_t(i) * C, C, &lp[size_t(i) * C]);
    for (int c = 0; c < C; ++c) {
      double sum = 0.0;
      for (int i = 0; i < k; ++i) sum += column[i] = lp[size_t(i) * C + c];
      log_pbar[c] = logsumexp(column.data(), k) - std::log(double(k));  // term LPB
      mlp[c] = sum / k;                                                 // term MLP
    }
  }
};

}  // namespace

void consistency_loss_forward(const ConsistencyLossParams& p, const float* logits, const int32_t* labels, float* loss,
                              float* ce, float* reg) {
  const int B = p.batch, k = p.copies, C = p.classes;
  const double log_clamp = std::log(kEntropyClamp);
  std::vector<double> terms(B);  // (B) ce_b + reg_b in double
  parallel_for(B, int64_t(k) * C * 8, [&](int64_t b0, int64_t b1) {
    ImageStats st(k, C);
    for (int64_t b = b0; b < b1; ++b) {
      st.compute(logits + b * k * C, k, C);
      const int y = labels[b];
      double ce_b = 0.0;
      for (int i = 0; i < k; ++i) ce_b -= st.lp[size_t(i) * C + y];
      ce_b /= k;  // term CE
      double kl = 0.0, ent = 0.0;
      for (int c = 0; c < C; ++c) {
        const double pbar = std::exp(st.log_pbar[c]);
        kl += pbar * (st.log_pbar[c] - st.mlp[c]);  // term KL
        const double lc = st.log_pbar[c] >= log_clamp ? st.log_pbar[c] : log_clamp;
        ent -= pbar * lc;  // term ENT
      }
      const double reg_b = double(p.lambda) * kl + double(p.eta) * ent;
      ce[b] = float(ce_b);
      reg[b] = float(reg_b);
      terms[b] = ce_b + reg_b;
    }
  });
  double sum = 0.0;
  for (int b = 0; b < B; ++b) sum += terms[b];
  loss[0] = B > 0 ? float(sum / B) : 0.0f;
}

void consistency_loss_backward(const ConsistencyLossParams& p, const float* logits, const int32_t* labels,
                               const float* dloss, float* dlogits) {
  const int B = p.batch, k = p.copies, C = p.classes;
  const double G = dloss[0], lambda = p.lambda, eta = p.eta;
  const double log_clamp = std::log(kEntropyClamp);
  parallel_for(B, int64_t(k) * C * 10, [&](int64_t b0, int64_t b1) {
    ImageStats st(k, C);
    std::vector<double> g(C), pbar(C);
    for (int64_t b = b0; b < b1; ++b) {
      st.compute(logits + b * k * C, k, C);
      float* dz = dlogits + b * k * C;  // (k, C)
      const int y = labels[b];
      for (int c = 0; c < C; ++c) {
        const double lpb = st.log_pbar[c];
        pbar[c] = std::exp(lpb);
        // term G: lambda (log pbar_c + 1) - lambda mlp_c - eta (log pbar_c + 1, or log 1e-20 clamped)
        g[c] = lambda * (lpb + 1.0) - lambda * st.mlp[c] - eta * (lpb >= log_clamp ? lpb + 1.0 : log_clamp);
      }
      const double s = G / (double(B) * k);
      for (int i = 0; i < k; ++i) {
        const double* lpi = &st.lp[size_t(i) * C];
        double gp = 0.0;  // term GP: <g, p_i>
        for (int c = 0; c < C; ++c) gp += g[c] * std::exp(lpi[c]);
        for (int a = 0; a < C; ++a) {
          const double pa = std::exp(lpi[a]);
          const double d = pa * (g[a] - gp)                // term PBAR
                           - lambda * (pbar[a] - pa)       // term LOGP
                           + (pa - (a == y ? 1.0 : 0.0));  // term CE
          dz[int64_t(i) * C + a] += float(s * d);
        }
      }
    }
  });
}

}  // namespace macer::kernels::cpu
