// The Gaussian-augmentation objective (Cohen et al.; macer/objectives/objectives.h): cross-entropy
// over all B*k noisy rows, the engine's cross-entropy op with group k.
#include "engine/ops.h"
#include "macer/objectives/checks.h"
#include "macer/objectives/objectives.h"

namespace macer {

Var gaussian_loss(const Var& logits, const Tensor& labels, int copies) {
  MACER_CHECK(logits.defined(), "gaussian_loss: undefined logits");
  objectives_detail::check_logits_labels("gaussian_loss", logits.value(), labels, copies);
  return ops::cross_entropy(logits, labels, copies);
}

}  // namespace macer
