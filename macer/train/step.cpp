// The one training step (macer/train/step.h): attack, copies, forward, objective, backward, SGD.
#include "macer/train/step.h"

#include <algorithm>

#include "engine/dispatch.h"
#include "engine/ops.h"
#include "kernels/finite_check.h"
#include "macer/distributed.h"
#include "macer/noise_streams.h"
#include "macer/objectives/smoothmix.h"

namespace macer {

double attack_eps_at(const TrainConfig::Attack& a, int64_t epoch) {
  if (a.warmup_epochs <= 0) return a.eps;
  return std::min(a.eps, double(epoch + 1) * a.eps / double(a.warmup_epochs));
}

double smoothmix_weight_at(const TrainConfig::Attack& a, int64_t epoch) {
  if (a.warmup_epochs <= 0) return 1.0;
  return std::min(1.0, double(epoch + 1) / double(a.warmup_epochs));
}

StepOutput train_step(layers::Module& model, Sgd& sgd, const StepSettings& s,
                      const Tensor& images, const Tensor& labels, uint64_t step, int64_t first_input, Tensor marks) {
  MACER_CHECK(step < (uint64_t(1) << 52), "train_step: step counter " << step << " past 2^52");
  AttackNoise noise;
  noise.copies = s.copies;
  noise.sigma = s.sigma;
  noise.seed = s.seed;
  noise.noise_counter = noise::kTraining | step;
  noise.random_counter = noise::kAttack | (step << 10);
  noise.first_input = first_input;

  StepOutput out;
  if (s.objective == "smoothmix") {
    MACER_CHECK(s.attack == "smoothmix" && s.attack_seed, "train_step: the smoothmix objective needs its attack");
    SmoothMixPoints points = smoothmix_attack(model, images, labels, noise, s.attack_seed, s.alpha, s.steps,
                                              s.mix_step, s.alpha * s.weight);
    model.train();
    Tensor lam;
    Tensor mixed = smoothmix_mix(points.clean, points.adversarial, noise, lam);
    // The same k draws for both branches and for the attack: Philox(seed, kTraining | step).
    out.logits = model.forward(Var(ops::noisy_copies(points.clean, s.copies, s.sigma, s.seed, noise.noise_counter,
                                                     first_input)));
    Var mixed_logits = model.forward(
        Var(ops::noisy_copies(mixed, s.copies, s.sigma, s.seed, noise.noise_counter, first_input)));
    SmoothMixOutputs r = smoothmix_loss(out.logits, mixed_logits, labels, lam, s.copies, s.hyper.eta * s.weight);
    out.result.loss = r.loss;
    out.result.cl = r.ce;
    out.result.rl = r.mix;
  } else {
    const Objective& objective = objective_by_name(s.objective);
    Tensor x = images;
    if (s.attack == "pgd") {
      MACER_CHECK(s.attack_seed, "train_step: attack pgd without an attack loss");
      x = pgd_attack(model, images, labels, noise, s.attack_seed, s.eps, s.steps);
    } else {
      MACER_CHECK(s.attack == "none", "train_step: attack '" << s.attack << "' with objective " << s.objective);
    }
    model.train();
    // The same k draws as the attack's: Philox(seed, kTraining | step) at the same global rows.
    Tensor noisy = ops::noisy_copies(x, s.copies, s.sigma, s.seed, noise.noise_counter, first_input);
    out.logits = model.forward(Var(noisy));
    out.result = objective(out.logits, labels, s.copies, s.hyper);
  }
  model.zero_grad();
  backward(out.result.loss);
  Tensor& grads = model.flat_gradients();
  dist::average(grads);  // data parallel: the gradient of the global batch's mean loss
  if (marks.defined()) {  // divergence marks, on the device: no synchronisation in the step
    MACER_DISPATCH(model.device(), first_bad_tag, 1, out.result.loss.value().data(), int64_t(step),
                   marks.data<int64_t>());
    MACER_DISPATCH(model.device(), first_bad_tag, grads.numel(), grads.data(), int64_t(step),
                   marks.data<int64_t>() + 1);
  }
  sgd.step(s.lr);
  return out;
}

}  // namespace macer
