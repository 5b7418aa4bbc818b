// CPU attack loss (kernels/attack_loss.h): the soft smoothed cross-entropy per image and its seed
// gradient at the logits, in double per image; images are split over the threads.
#include "kernels/attack_loss.h"

#include <cmath>
#include <vector>

#include "kernels/cpu/log_softmax_row.h"
#include "kernels/cpu/parallel.h"

namespace macer::kernels::cpu {

void attack_loss(const AttackLossParams& p, const float* logits, const int32_t* labels, float* loss, float* dlogits) {
  const int k = p.copies, C = p.classes;
  const double log_clamp = std::log(kAttackClamp);
  parallel_for(p.batch, int64_t(k) * C * 8, [&](int64_t b0, int64_t b1) {
    std::vector<double> lp(size_t(k) * C);  // (k, C) log-softmax of the image's rows
    std::vector<double> lpy(k);             // (k) term LP
    for (int64_t b = b0; b < b1; ++b) {
      const float* z = logits + b * k * C;  // (k, C)
      float* dz = dlogits + b * k * C;      // (k, C)
      const int y = labels[b];
      for (int i = 0; i < k; ++i) {
        log_softmax_row(z + int64_t(i) * C, C, &lp[size_t(i) * C]);
        lpy[i] = lp[size_t(i) * C + y];  // term LP: lp_i = log p_{i,y}
      }
      const double lse = logsumexp(lpy.data(), k);
      const double log_q = lse - std::log(double(k));   // term LQ
      const bool clamped = !(log_q >= log_clamp);       // q < 1e-20 (or -inf)
      loss[b] = float(-(clamped ? log_clamp : log_q));  // term LOSS
      for (int i = 0; i < k; ++i) {
        const double w = clamped ? 0.0 : std::exp(lpy[i] - lse);  // term W
        for (int c = 0; c < C; ++c) {
          // term SEED: -w_i ([c == y] - p_{i,c})
          const double pc = std::exp(lp[size_t(i) * C + c]);
          dz[int64_t(i) * C + c] = float(double(p.scale) * -w * ((c == y ? 1.0 : 0.0) - pc));
        }
      }
    }
  });
}

}  // namespace macer::kernels::cpu
