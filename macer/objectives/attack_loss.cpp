// The attack loss and its seed gradient (macer/objectives/attack_loss.h): checks, then the fused
// kernel (kernels/attack_loss.h) on the logits' device.
#include "macer/objectives/attack_loss.h"

#include <cmath>

#include "engine/dispatch.h"
#include "kernels/attack_loss.h"
#include "macer/objectives/checks.h"

namespace macer {

AttackLossOutputs attack_loss(const Tensor& logits, const Tensor& labels, int copies, float scale) {
  objectives_detail::check_logits_labels("attack_loss", logits, labels, copies);
  MACER_CHECK(std::isfinite(scale), "attack_loss: scale " << scale << " must be finite");
  const Shape& ls = logits.shape();
  const int64_t batch = ls[0] / copies;
  const Device dev = logits.device();
  const kernels::AttackLossParams p{int(batch), copies, int(ls[1]), scale};
  AttackLossOutputs out{Tensor::empty({batch}, dev), Tensor::empty(ls, dev)};
  MACER_DISPATCH(dev, attack_loss, p, logits.data(), labels.data<int32_t>(), out.loss.data(), out.dlogits.data());
  return out;
}

}  // namespace macer
