// The MACER and Gaussian objectives as autograd ops (shape, device and hyperparameter checks,
// forward dispatch, backward on the tape) and the name -> objective registry.
#include "macer/objectives/objectives.h"

#include <cmath>
#include <limits>

#include "engine/dispatch.h"
#include "engine/ops.h"
#include "kernels/macer_loss.h"

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

void check_logits_labels(const char* op, const Var& logits, const Tensor& labels, int copies) {
  MACER_CHECK(logits.defined(), op << ": undefined logits");
  const Shape& ls = logits.shape();
  MACER_CHECK(ls.size() == 2 && ls[1] >= 1 && copies >= 1 && ls[0] % copies == 0 &&
                  labels.defined() && labels.numel() == ls[0] / copies,
              op << ": logits " << shape_string(ls) << " do not split into " << copies
                 << " copies of " << (labels.defined() ? labels.numel() : 0) << " labels");
  MACER_CHECK(ls[0] * ls[1] <= std::numeric_limits<int32_t>::max(),
              op << ": logits " << shape_string(ls) << " too large");
  MACER_CHECK(labels.dtype() == DType::I32 && labels.device() == logits.device(),
              op << ": labels must be int32 on the logits' device (" << device_name(logits.device())
                 << "), got " << dtype_name(labels.dtype()) << " on " << device_name(labels.device()));
  // Label range is checked where it costs nothing (host memory); on a GPU it would be a sync.
  if (labels.device() == Device::CPU) {
    const int32_t* y = labels.data<int32_t>();
    for (int64_t b = 0; b < labels.numel(); ++b)
      MACER_CHECK(y[b] >= 0 && y[b] < ls[1],
                  op << ": label " << y[b] << " at " << b << " outside [0, " << ls[1] << ")");
  }
}

ObjectiveResult run_macer(const Var& logits, const Tensor& labels, int copies, const ObjectiveHyper& h) {
  return macer_loss(logits, labels, copies, h);
}

ObjectiveResult run_gaussian(const Var& logits, const Tensor& labels, int copies, const ObjectiveHyper&) {
  ObjectiveResult r;
  r.loss = gaussian_loss(logits, labels, copies);
  return r;
}

const Objective kObjectives[] = {
    {"macer", "MACER: softmax-mean cross-entropy + lambda * hinge on the certified radius", run_macer},
    {"gaussian", "Gaussian augmentation: cross-entropy averaged over the noisy copies", run_gaussian},
};

}  // namespace

MacerLossOutputs macer_loss(const Var& logits, const Tensor& labels, int copies, const MacerHyper& h) {
  check_logits_labels("macer_loss", logits, labels, copies);
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

Var gaussian_loss(const Var& logits, const Tensor& labels, int copies) {
  check_logits_labels("gaussian_loss", logits, labels, copies);
  return ops::cross_entropy(logits, labels, copies);
}

const Objective& objective_by_name(const std::string& name) {
  for (const Objective& o : kObjectives)
    if (name == o.name) return o;
  std::string valid;
  for (const Objective& o : kObjectives) valid += std::string(valid.empty() ? "" : ", ") + o.name;
  throw Error("unknown objective '" + name + "' (valid: " + valid + ")");
}

std::vector<std::string> objective_names() {
  std::vector<std::string> names;
  for (const Objective& o : kObjectives) names.push_back(o.name);
  return names;
}

}  // namespace macer
