// The attack loss of SmoothAdv's PGD and SmoothMix's adversary (SPEC.md, "Training methods beyond
// MACER"): the soft smoothed cross-entropy per image and its seed gradient at the logits.
#pragma once
#include "engine/tensor.h"

namespace macer {

// L_att(b) = -log(max(1e-20, (1/k) sum_i softmax(z_{b,i})[y_b])), the official codes' loss
// (Salman et al.'s PGD_L2 with multi-noise, SmoothMix's adversary); kernels/attack_loss.h derives
// the seed. No tape: an attack runs the network's input backward from `dlogits` itself.
//   logits (B*k, C) float32, image-major (row b*k + i is copy i of image b, noisy_copies' order)
//   labels (B) int32 in [0, C) on the logits' device; copies = k >= 1
//   scale  multiplies dlogits: 1 gives d L_att(b) / dz per image; 1/B the gradient of the
//          official codes' batch mean (the same direction after per-image normalisation)
// Returns loss (B) and dlogits (B*k, C) = scale * d L_att(b) / dz_{b,i} (0 for an image whose
// smoothed probability is clamped at 1e-20), on the logits' device. Throws macer::Error on bad
// shapes, devices or labels, or a non-finite scale.
struct AttackLossOutputs {
  Tensor loss;     // (B)
  Tensor dlogits;  // (B*k, C)
};
AttackLossOutputs attack_loss(const Tensor& logits, const Tensor& labels, int copies, float scale = 1.0f);

}  // namespace macer
