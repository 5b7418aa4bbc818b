// SmoothMix's loss (Jeong et al., NeurIPS 2021; SPEC.md "Training methods beyond MACER") as one
// fused op on the clean and the mixed logits, with its hand-written backward to both.
#pragma once
#include <cstdint>

namespace macer::kernels {

// Clean logits zc (B*k, C): copy i of image b's clean point at row b*k + i; mixed logits zm
// (B*k, C) the same for the mixed point; labels y (B) int32; lam (B) the mixing weights in [0, 1].
struct SmoothMixLossParams {
  int batch, copies, classes;  // B, k >= 1, C >= 1
  float eta_w;                 // eta * w_e: the weight of the mixup term this epoch
};

// Per image b, with pc_i = softmax(zc_i), lpc_i its log, pbar = (1/k) sum_i pc_i, q_i = softmax(zm_i),
// lq_i its log:
//   term CE:   ce_b = (1/k) sum_i -lpc_{i,y}
//   term LPB:  log pbar_c = logsumexp_i lpc_{i,c} - log k
//   term IND:  ind_b = [argmax_c pbar_c == y]  (ties: the lowest class; not differentiated)
//   term T:    t_c = (1 - lam_b) pbar_c + lam_b / C      (not detached; sum_c t_c = 1)
//   term MLQ:  mlq_c = (1/k) sum_i lq_{i,c}
//   term KL:   mix_b = ind_b (1/k) sum_i KL(t || q_i) = ind_b sum_c t_c (log t_c - mlq_c)
//              (t_c log t_c = 0 where t_c = 0, as F.kl_div's xlogy)
//   L = (1/B) sum_b (ce_b + eta_w mix_b)
//     = (1/(B k)) sum CE(zc, y) + eta_w (1/(B k)) sum_{b,i} ind_b KL(t_b || q_{b,i}), SPEC.md's form.
// Backward, G = dloss[0]:
//   term DM:   dzm_{i,a} += G eta_w ind_b / (B k) (q_{i,a} - t_a)
//   term G:    g_c = dL/dt_c = eta_w ind_b / B (log t_c + 1 - mlq_c)
//   term DT:   through t_c = (1 - lam) pbar_c + ...: dzc_{i,a} += G (1 - lam) / k pc_{i,a} (g_a - <g, pc_i>)
//              (term GP: <g, pc_i>; the +1 cancels there)
//   term DCE:  dzc_{i,a} += G / (B k) (pc_{i,a} - [a == y])
// log t_c is taken as log pbar_c when lam = 0 (finite where pbar_c underflows; a class with
// t_c = 0 then has pc_{i,c} = 0 and adds nothing).
//
// forward:  loss[0] = L; ce (B) = ce_b; mix (B) = mix_b; correct (B) = ind_b as 0 or 1, the one
//           piece of context backward reads (so forward and backward agree on the indicator).
// backward: dclean += G dL/dzc and dmixed += G dL/dzm (both accumulate); the rest is
//           recomputed from the logits.
#define MACER_SMOOTHMIX_LOSS_API                                                                  \
  void smoothmix_loss_forward(const SmoothMixLossParams& p, const float* clean, const float* mixed, \
                              const int32_t* labels, const float* lam, float* loss, float* ce,     \
                              float* mix, float* correct);                                         \
  void smoothmix_loss_backward(const SmoothMixLossParams& p, const float* clean, const float* mixed, \
                               const int32_t* labels, const float* lam, const float* correct,       \
                               const float* dloss, float* dclean, float* dmixed);

namespace cpu { MACER_SMOOTHMIX_LOSS_API }
namespace cuda { MACER_SMOOTHMIX_LOSS_API }
#undef MACER_SMOOTHMIX_LOSS_API

}  // namespace macer::kernels
