// CPU SmoothMix loss (kernels/smoothmix_loss.h): forward and hand-written backward to the clean
// and the mixed logits, in double per image; images split over the threads, summed in order.
#include "kernels/smoothmix_loss.h"

#include <cmath>
#include <vector>

#include "kernels/cpu/log_softmax_row.h"
#include "kernels/cpu/parallel.h"

namespace macer::kernels::cpu {

namespace {

// One image's statistics: lpc, lq (k, C); log pbar, log t, t, mlq (C).
struct ImageStats {
  std::vector<double> lpc, lq, log_pbar, log_t, t, mlq, column;
  ImageStats(int k, int C) : lpc(size_t(k) * C), lq(size_t(k) * C), log_pbar(C), log_t(C), t(C), mlq(C), column(k) {}

  void compute(const float* zc, const float* zm, int k, int C, double lam) {
    for (int i = 0; i < k; ++i) {
      log_softmax_row(zc + int64_t(i) * C, C, &lpc[size_t(i) * C]);
      log_softmax_row(zm + int64_t(i) * C, C, &lq[size_t(i) * C]);
    }
    for (int c = 0; c < C; ++c) {
      double sum = 0.0;
      for (int i = 0; i < k; ++i) column[i] = lpc[size_t(i) * C + c], sum += lq[size_t(i) * C + c];
      log_pbar[c] = logsumexp(column.data(), k) - std::log(double(k));  // term LPB
      mlq[c] = sum / k;                                                 // term MLQ
      t[c] = (1.0 - lam) * std::exp(log_pbar[c]) + lam / C;             // term T
      log_t[c] = lam > 0.0 ? std::log(t[c]) : log_pbar[c];
    }
  }

  // term IND: argmax of pbar (the lowest class on ties) is the label
  bool correct(int C, int y) const {
    int top = 0;
    for (int c = 1; c < C; ++c)
      if (log_pbar[c] > log_pbar[top]) top = c;
    return top == y;
  }
};

}  // namespace

void smoothmix_loss_forward(const SmoothMixLossParams& p, const float* clean, const float* mixed, const int32_t* labels,
                            const float* lam, float* loss, float* ce, float* mix, float* correct) {
  const int B = p.batch, k = p.copies, C = p.classes;
  std::vector<double> terms(B);  // (B) ce_b + eta_w mix_b
  parallel_for(B, int64_t(k) * C * 16, [&](int64_t b0, int64_t b1) {
    ImageStats st(k, C);
    for (int64_t b = b0; b < b1; ++b) {
      st.compute(clean + b * k * C, mixed + b * k * C, k, C, double(lam[b]));
      const int y = labels[b];
      double ce_b = 0.0;
      for (int i = 0; i < k; ++i) ce_b -= st.lpc[size_t(i) * C + y];
      ce_b /= k;  // term CE
      const bool ind = st.correct(C, y);
      double mix_b = 0.0;
      if (ind)
        for (int c = 0; c < C; ++c)
          if (st.t[c] > 0.0) mix_b += st.t[c] * (st.log_t[c] - st.mlq[c]);  // term KL
      ce[b] = float(ce_b);
      mix[b] = float(mix_b);
      correct[b] = ind ? 1.0f : 0.0f;
      terms[b] = ce_b + double(p.eta_w) * mix_b;
    }
  });
  double sum = 0.0;
  for (int b = 0; b < B; ++b) sum += terms[b];
  loss[0] = B > 0 ? float(sum / B) : 0.0f;
}

void smoothmix_loss_backward(const SmoothMixLossParams& p, const float* clean, const float* mixed,
                             const int32_t* labels, const float* lam, const float* correct, const float* dloss,
                             float* dclean, float* dmixed) {
  const int B = p.batch, k = p.copies, C = p.classes;
  const double G = dloss[0];
  parallel_for(B, int64_t(k) * C * 20, [&](int64_t b0, int64_t b1) {
    ImageStats st(k, C);
    std::vector<double> g(C);
    for (int64_t b = b0; b < b1; ++b) {
      const double l = lam[b];
      st.compute(clean + b * k * C, mixed + b * k * C, k, C, l);
      float* dzc = dclean + b * k * C;  // (k, C)
      float* dzm = dmixed + b * k * C;  // (k, C)
      const int y = labels[b];
      const bool ind = correct[b] != 0.0f;
      const double s = G / (double(B) * k);
      for (int c = 0; c < C; ++c)  // term G (without G), 0 where t_c = 0
        g[c] = ind && st.t[c] > 0.0 ? double(p.eta_w) / B * (st.log_t[c] + 1.0 - st.mlq[c]) : 0.0;
      for (int i = 0; i < k; ++i) {
        const double* lpci = &st.lpc[size_t(i) * C];
        double gp = 0.0;  // term GP: <g, pc_i>
        if (ind)
          for (int c = 0; c < C; ++c) gp += g[c] * std::exp(lpci[c]);
        for (int a = 0; a < C; ++a) {
          const double pa = std::exp(lpci[a]);
          double dc = s * (pa - (a == y ? 1.0 : 0.0));          // term DCE
          if (ind) dc += G * (1.0 - l) / k * pa * (g[a] - gp);  // term DT
          dzc[int64_t(i) * C + a] += float(dc);
          if (ind) {
            const double qa = std::exp(st.lq[size_t(i) * C + a]);
            dzm[int64_t(i) * C + a] += float(s * double(p.eta_w) * (qa - st.t[a]));  // term DM
          }
        }
      }
    }
  });
}

}  // namespace macer::kernels::cpu
