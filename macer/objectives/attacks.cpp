// The attacks (macer/objectives/attacks.h): eval-mode input gradients through the model and the
// per-image steps of kernels/attack.h.
#include "macer/objectives/attacks.h"

#include <cmath>

#include "engine/dispatch.h"
#include "engine/ops.h"
#include "kernels/attack.h"
#include "macer/objectives/attack_loss.h"

namespace macer {

namespace {

kernels::AttackShape attack_shape(const Tensor& x, const AttackNoise& noise) {
  MACER_CHECK(x.ndim() >= 2 && x.dim(0) > 0, "attack: input " << shape_string(x.shape()));
  return {int(x.dim(0)), noise.copies, x.numel() / x.dim(0), noise.first_input};
}

}  // namespace

Tensor soft_smoothed_seed(const Tensor& logits, const Tensor& labels, int copies) {
  return attack_loss(logits, labels, copies, 1.0f).dlogits;
}

Tensor attack_input_gradient(layers::Module& model, const Tensor& x, const Tensor& labels, const AttackNoise& noise,
                             AttackSeedFn seed) {
  const kernels::AttackShape s = attack_shape(x, noise);
  MACER_CHECK(noise.copies >= 1, "attack: " << noise.copies << " copies");
  layers::InputGradientMode mode(model);
  Var input(ops::noisy_copies(x, noise.copies, noise.sigma, noise.seed, noise.noise_counter, noise.first_input),
            /*requires_grad=*/true);
  Var logits = model.forward(input);
  backward(logits, seed(logits.value(), labels, noise.copies));
  Tensor g = Tensor::empty(x.shape(), x.device());
  if (!input.grad().defined()) {
    g.copy_from(Tensor::zeros(x.shape(), x.device()));
    return g;
  }
  MACER_DISPATCH(x.device(), attack_sum_copies, s, input.grad().data(), g.data());
  return g;
}

Tensor pgd_attack(layers::Module& model, const Tensor& x, const Tensor& labels, const AttackNoise& noise,
                  AttackSeedFn seed, float eps, int steps) {
  MACER_CHECK(steps >= 1 && std::isfinite(eps) && eps >= 0, "pgd_attack: eps " << eps << ", steps " << steps
                                                                                << " (need eps >= 0, steps >= 1)");
  MACER_CHECK(steps < 1023, "pgd_attack: at most 1022 steps, got " << steps);
  if (eps == 0) return x;
  const kernels::AttackShape s = attack_shape(x, noise);
  Tensor delta = Tensor::zeros(x.shape(), x.device());
  Tensor x_adv = x.clone();
  const float step = 2.0f * eps / float(steps);
  for (int t = 0; t < steps; ++t) {
    Tensor g = attack_input_gradient(model, x_adv, labels, noise, seed);
    MACER_DISPATCH(x.device(), pgd_step, s, x.data(), g.data(), step, eps, noise.seed,
                   noise.random_counter | uint64_t(t), delta.data(), x_adv.data());
  }
  return x_adv;
}

SmoothMixPoints smoothmix_attack(layers::Module& model, const Tensor& x, const Tensor& labels, const AttackNoise& noise,
                                 AttackSeedFn seed, float alpha, int steps, int mix_step, float clean_max_norm) {
  MACER_CHECK(steps >= 1 && steps < 1023 && std::isfinite(alpha) && alpha > 0 && (mix_step == 0 || mix_step == 1),
              "smoothmix_attack: alpha " << alpha << ", steps " << steps << ", mix_step " << mix_step
                                         << " (need alpha > 0, 1 <= steps < 1023, mix_step 0 or 1)");
  const kernels::AttackShape s = attack_shape(x, noise);
  SmoothMixPoints out;
  out.clean = x;
  Tensor adv = x.clone();
  for (int t = 0; t < steps; ++t) {
    if (t == mix_step && mix_step > 0) {  // the one-step point, kept within clean_max_norm of x
      out.clean = Tensor::empty(x.shape(), x.device());
      MACER_DISPATCH(x.device(), project_ball, s, x.data(), adv.data(), clean_max_norm, out.clean.data());
    }
    Tensor g = attack_input_gradient(model, adv, labels, noise, seed);
    MACER_DISPATCH(x.device(), smoothmix_step, s, adv.data(), g.data(), alpha, adv.data());
  }
  out.adversarial = adv;
  return out;
}

Tensor smoothmix_mix(const Tensor& x0, const Tensor& x1, const AttackNoise& noise, Tensor& lam) {
  MACER_CHECK(x0.shape() == x1.shape() && x0.device() == x1.device(),
              "smoothmix_mix: points " << shape_string(x0.shape()) << " and " << shape_string(x1.shape()));
  const kernels::AttackShape s = attack_shape(x0, noise);
  lam = Tensor::empty({x0.dim(0)}, x0.device());
  Tensor y = Tensor::empty(x0.shape(), x0.device());
  MACER_DISPATCH(x0.device(), mix_inputs, s, x0.data(), x1.data(), noise.seed, noise.random_counter | 1023u,
                 lam.data(), y.data());
  return y;
}

}  // namespace macer
