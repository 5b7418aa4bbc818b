// The MACER objective as an autograd op (macer/objectives/objectives.h): argument and
// hyperparameter checks, the fused forward (kernels/macer_loss.h), its backward on the tape.
#include <cmath>

#include "engine/dispatch.h"
#include "kernels/macer_loss.h"
#include "macer/objectives/checks.h"
#include "macer/objectives/objectives.h"

namespace macer {

namespace {

// The per-input context forward leaves for backward, owned by the closure that needs it.
struct MacerContext {
  Tensor p_label, q1, q2, c1, c2, active;  // (B) each; c1, c2 int32

  MacerContext(int64_t batch, Device dev)
      : p_label(Tensor::empty({batch}, dev)), q1(Tensor::empty({batch}, dev)),
        q2(Tensor::empty({batch}, dev)), c1(Tensor::empty({batch}, dev, DType::I32)),
        c2(Tensor::empty({batch}, dev, DType::I32)), active(Tensor::empty({batch}, dev)) {}

  kernels::MacerSaved saved() {
    return {p_label.data(), q1.data(), q2.data(), c1.data<int32_t>(), c2.data<int32_t>(),
            active.data()};
  }
};

}  // namespace

MacerLossOutputs macer_loss(const Var& logits, const Tensor& labels, int copies, const MacerHyper& h) {
  MACER_CHECK(logits.defined(), "macer_loss: undefined logits");
  objectives_detail::check_logits_labels("macer_loss", logits.value(), labels, copies);
  MACER_CHECK(std::isfinite(h.sigma) && h.sigma >= 0 && std::isfinite(h.lambda) &&
                  std::isfinite(h.beta) && h.beta > 0 && std::isfinite(h.gamma),
              "macer_loss: hyperparameters sigma " << h.sigma << ", lambda " << h.lambda << ", beta "
                                                   << h.beta << ", gamma " << h.gamma
                                                   << " (need finite values, sigma >= 0, beta > 0)");
  const Shape& ls = logits.shape();
  const int64_t batch = ls[0] / copies;
  const kernels::MacerLossParams p{int(batch), copies, int(ls[1]), h.sigma, h.lambda, h.beta, h.gamma};
  const Device dev = logits.device();

  MacerLossOutputs out;
  Tensor loss = Tensor::empty({1}, dev);
  out.cl = Tensor::empty({batch}, dev);
  out.rl = Tensor::empty({batch}, dev);
  MacerContext ctx(batch, dev);
  MACER_DISPATCH(dev, macer_loss_forward, p, logits.value().data(), labels.data<int32_t>(),
                 loss.data(), out.cl.data(), out.rl.data(), ctx.saved());
  out.active = ctx.active;

  const bool needs = any_requires_grad({&logits});
  out.loss = Var(loss, needs);
  if (needs) {
    Var result = out.loss;
    record([=]() mutable {
      if (!result.grad().defined()) return;
      MACER_DISPATCH(dev, macer_loss_backward, p, logits.value().data(), labels.data<int32_t>(),
                     ctx.saved(), result.grad().data(), logits.grad_buffer().data());
    });
  }
  return out;
}

}  // namespace macer
