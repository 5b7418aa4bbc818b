// The Consistency objective (Jeong & Shin, NeurIPS 2020; SPEC.md "Training methods beyond MACER")
// as one fused op on logits (B*k, C) with its hand-written backward.
#pragma once
#include <cstdint>

namespace macer::kernels {

// Logits z (B*k, C), row b*k + i = copy i of image b (noisy_copies' order); labels y (B) int32.
struct ConsistencyLossParams {
  int batch, copies, classes;  // B, k >= 1, C >= 1
  float lambda, eta;           // weight of the mean KL(pbar || p_i), of the entropy H(pbar)
};

// The clamp of the official code's entropy (jh-jeong/smoothing-consistency, consistency.py):
// H(pbar) = -sum_c pbar_c log(max(pbar_c, 1e-20)).
constexpr double kEntropyClamp = 1e-20;

// Per image b, with lp_{i,c} = log softmax(z_i)_c, p_i = softmax(z_i), pbar = (1/k) sum_i p_i:
//   term CE:   ce_b  = (1/k) sum_i -lp_{i,y}
//   term LPB:  log pbar_c = logsumexp_i lp_{i,c} - log k   (finite where pbar_c underflows)
//   term MLP:  mlp_c = (1/k) sum_i lp_{i,c}
//   term KL:   (1/k) sum_i KL(pbar || p_i) = sum_c pbar_c (log pbar_c - mlp_c)
//   term ENT:  H(pbar) = -sum_c pbar_c lc_c,  lc_c = log pbar_c if pbar_c >= 1e-20 else log 1e-20
//   reg_b = lambda KL + eta H;   L = (1/B) sum_b (ce_b + reg_b)     (pbar not detached)
// Backward, G = dL/dL (dloss[0]). As a function of pbar and of the lp_i:
//   R = lambda sum_c pbar_c log pbar_c - lambda sum_c pbar_c mlp_c - eta sum_c pbar_c lc_c
//   term G:    g_c = dR/dpbar_c = lambda (log pbar_c + 1) - lambda mlp_c
//                                 - eta (log pbar_c + 1 if pbar_c >= 1e-20 else log 1e-20)
//   term PBAR: through pbar_c = (1/k) sum_i p_{i,c}: (1/k) p_{i,a} (g_a - <g, p_i>)   (term GP: <g, p_i>)
//   term LOGP: through lp_{i,c} in KL:  -(lambda/k) (pbar_a - p_{i,a})      (sum_c pbar_c = 1)
//   term CE:   (1/k) (p_{i,a} - [a == y])
//   dz_{i,a} += G / B * (PBAR + LOGP + CE)
// SPEC.md writes g without the constants (lambda - eta) (+1): they cancel in g_a - <g, p_i>
// except on classes under the clamp, where keeping them is exact.
//
// forward:  loss[0] = L;  ce (B) = ce_b;  reg (B) = reg_b.
// backward: dlogits += dloss[0] * dL/dz (accumulates); recomputes the row statistics from the
//           logits, so forward leaves no context.
#define MACER_CONSISTENCY_LOSS_API                                                             \
  void consistency_loss_forward(const ConsistencyLossParams& p, const float* logits,           \
                                const int32_t* labels, float* loss, float* ce, float* reg);    \
  void consistency_loss_backward(const ConsistencyLossParams& p, const float* logits,          \
                                 const int32_t* labels, const float* dloss, float* dlogits);

namespace cpu { MACER_CONSISTENCY_LOSS_API }
namespace cuda { MACER_CONSISTENCY_LOSS_API }
#undef MACER_CONSISTENCY_LOSS_API

}  // namespace macer::kernels
