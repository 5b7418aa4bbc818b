// SmoothMix's loss as an autograd op (macer/objectives/smoothmix.h): checks, the fused forward
// (kernels/smoothmix_loss.h), and one backward on the tape that fills both logit gradients.
#include "macer/objectives/smoothmix.h"

#include <cmath>

#include "engine/dispatch.h"
#include "kernels/smoothmix_loss.h"
#include "macer/objectives/checks.h"

namespace macer {

SmoothMixOutputs smoothmix_loss(const Var& clean, const Var& mixed, const Tensor& labels, const Tensor& lam, int copies,
                                float eta_w) {
  MACER_CHECK(clean.defined() && mixed.defined(), "smoothmix_loss: undefined logits");
  objectives_detail::check_logits_labels("smoothmix_loss", clean.value(), labels, copies);
  MACER_CHECK(mixed.shape() == clean.shape() && mixed.device() == clean.device() && mixed.value().dtype() == DType::F32,
              "smoothmix_loss: mixed logits " << shape_string(mixed.shape()) << " on " << device_name(mixed.device())
                                              << " differ from the clean " << shape_string(clean.shape()) << " on "
                                              << device_name(clean.device()));
  const Shape& ls = clean.shape();
  const int64_t batch = ls[0] / copies;
  const Device dev = clean.device();
  objectives_detail::check_per_image("smoothmix_loss", "lam", lam, batch, dev);
  if (dev == Device::CPU) {
    const float* l = lam.data();
    for (int64_t b = 0; b < batch; ++b)
      MACER_CHECK(l[b] >= 0.0f && l[b] <= 1.0f, "smoothmix_loss: lam " << l[b] << " at " << b << " outside [0, 1]");
  }
  MACER_CHECK(std::isfinite(eta_w) && eta_w >= 0, "smoothmix_loss: eta_w " << eta_w << " must be finite and >= 0");
  const kernels::SmoothMixLossParams p{int(batch), copies, int(ls[1]), eta_w};

  SmoothMixOutputs out;
  Tensor loss = Tensor::empty({1}, dev);
  out.ce = Tensor::empty({batch}, dev);
  out.mix = Tensor::empty({batch}, dev);
  out.correct = Tensor::empty({batch}, dev);
  MACER_DISPATCH(dev, smoothmix_loss_forward, p, clean.value().data(), mixed.value().data(), labels.data<int32_t>(),
                 lam.data(), loss.data(), out.ce.data(), out.mix.data(), out.correct.data());

  const bool needs = any_requires_grad({&clean, &mixed});
  out.loss = Var(loss, needs);
  if (needs) {
    Var result = out.loss;
    const Tensor correct = out.correct;
    record([=]() {
      if (!result.grad().defined()) return;
      // The kernel writes both gradients; a side that needs none gets a scratch buffer.
      Tensor dclean = clean.requires_grad() ? clean.grad_buffer() : Tensor::zeros(clean.shape(), dev);
      Tensor dmixed = mixed.requires_grad() ? mixed.grad_buffer() : Tensor::zeros(mixed.shape(), dev);
      MACER_DISPATCH(dev, smoothmix_loss_backward, p, clean.value().data(), mixed.value().data(),
                     labels.data<int32_t>(), lam.data(), correct.data(), result.grad().data(), dclean.data(),
                     dmixed.data());
    });
  }
  return out;
}

}  // namespace macer
