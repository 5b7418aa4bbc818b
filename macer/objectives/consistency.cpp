// The Consistency objective as an autograd op (macer/objectives/objectives.h): checks, the fused
// forward (kernels/consistency_loss.h) and its hand-written backward on the tape.
#include <cmath>

#include "engine/dispatch.h"
#include "kernels/consistency_loss.h"
#include "macer/objectives/checks.h"
#include "macer/objectives/objectives.h"

namespace macer {

ConsistencyOutputs consistency_loss(const Var& logits, const Tensor& labels, int copies, float lambda, float eta) {
  MACER_CHECK(logits.defined(), "consistency_loss: undefined logits");
  objectives_detail::check_logits_labels("consistency_loss", logits.value(), labels, copies);
  MACER_CHECK(std::isfinite(lambda) && std::isfinite(eta),
              "consistency_loss: lambda " << lambda << " and eta " << eta << " must be finite");
  const Shape& ls = logits.shape();
  const int64_t batch = ls[0] / copies;
  const kernels::ConsistencyLossParams p{int(batch), copies, int(ls[1]), lambda, eta};
  const Device dev = logits.device();

  ConsistencyOutputs out;
  Tensor loss = Tensor::empty({1}, dev);
  out.ce = Tensor::empty({batch}, dev);
  out.reg = Tensor::empty({batch}, dev);
  MACER_DISPATCH(dev, consistency_loss_forward, p, logits.value().data(), labels.data<int32_t>(), loss.data(),
                 out.ce.data(), out.reg.data());

  const bool needs = any_requires_grad({&logits});
  out.loss = Var(loss, needs);
  if (needs) {
    Var result = out.loss;
    record([=]() {
      if (!result.grad().defined()) return;
      MACER_DISPATCH(dev, consistency_loss_backward, p, logits.value().data(), labels.data<int32_t>(),
                     result.grad().data(), logits.grad_buffer().data());
    });
  }
  return out;
}

}  // namespace macer
