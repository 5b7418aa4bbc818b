// SmoothMix's loss (Jeong et al., NeurIPS 2021) as an autograd op on two logit sets, the clean
// and the mixed copies, with its hand-written backward to both (kernels/smoothmix_loss.h).
#pragma once
#include "engine/autograd.h"

namespace macer {

// L = (1/(B k)) sum_{b,i} CE(zc_{b,i}, y_b)
//     + eta_w (1/(B k)) sum_{b,i} 1[argmax pbar_b == y_b] KL(t_b || softmax(zm_{b,i})),
// pbar_b = (1/k) sum_i softmax(zc_{b,i}), t_b = (1 - lam_b) pbar_b + lam_b / C (not detached: the
// gradient reaches the clean logits through it); the indicator is not differentiated.
//   clean, mixed (B*k, C) float32, image-major (row b*k + i is copy i of image b), same device
//   labels (B) int32, lam (B) float32 in [0, 1] (SmoothMix draws U[0, 1/2]), on that device
//   eta_w = eta * w_e, finite and >= 0
// Returns loss (on the tape when either logit set requires a gradient) and per-image ce (B), mix
// (B) = the indicator times the mean KL, correct (B) = the indicator as 0 or 1. Throws
// macer::Error on bad shapes, devices, labels or eta_w (lam's range is checked on the host only).
struct SmoothMixOutputs {
  Var loss;
  Tensor ce, mix, correct;
};
SmoothMixOutputs smoothmix_loss(const Var& clean, const Var& mixed, const Tensor& labels, const Tensor& lam,
                                int copies, float eta_w);

}  // namespace macer
