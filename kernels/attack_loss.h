// The attack loss of SmoothAdv's PGD and SmoothMix's adversary (SPEC.md, "Training methods beyond
// MACER"): the soft smoothed classifier's cross-entropy per image and its seed gradient at the logits.
#pragma once
#include <cstdint>

namespace macer::kernels {

// Logits z (B*k, C), rows image-major as noisy_copies lays them out: row b*k + i is copy i of
// image b. Labels y (B) int32 in [0, C).
struct AttackLossParams {
  int batch, copies, classes;  // B, k >= 1, C >= 1
  float scale = 1.0f;          // dlogits = scale * d loss[b] / dz (1/B: the official codes' mean)
};

// The clamp of the official codes (Salman et al.'s PGD_L2, SmoothMix): log(max(q, 1e-20)).
constexpr double kAttackClamp = 1e-20;

// Derivation, per image b (y = y_b); the code names each term where it computes it:
//   term LP:   lp_i   = log p_{i,y} = z_{i,y} - logsumexp_c z_{i,c}
//   term LQ:   log q  = logsumexp_i lp_i - log k          (q = (1/k) sum_i p_{i,y})
//   term LOSS: loss_b = -max(log q, log 1e-20)
//   term W:    w_i    = p_{i,y} / (k q) = exp(lp_i - logsumexp_j lp_j)   (sum_i w_i = 1)
//   term SEED: d loss_b / d z_{i,c} = -w_i ([c == y] - p_{i,c})      when q >= 1e-20,
//              0 when q < 1e-20 (the clamp holds: torch's clamp(min) passes no gradient there)
// Working in logs keeps w_i exact when every p_{i,y} underflows a float (q down to 1e-20 and
// beyond), so the seed never turns 0/0.
//
// One fused call, no separate backward (the attack needs only this seed, to run the network's
// input backward from it):
//   loss    (B)      loss[b] as above, finite (at most -log 1e-20 = 46.05)
//   dlogits (B*k, C) overwritten with scale * d loss[b] / dz
// Host pointers for cpu::, device pointers for cuda::; arguments are valid (the op checks them).
#define MACER_ATTACK_LOSS_API                                                                  \
  void attack_loss(const AttackLossParams& p, const float* logits, const int32_t* labels,      \
                   float* loss, float* dlogits);

namespace cpu { MACER_ATTACK_LOSS_API }
namespace cuda { MACER_ATTACK_LOSS_API }
#undef MACER_ATTACK_LOSS_API

}  // namespace macer::kernels
