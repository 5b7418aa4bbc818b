// The attacks of adversarial smoothing training (SPEC.md, "Training methods beyond MACER"): the
// input gradient of the soft smoothed loss through any model in eval mode, SmoothAdv's L2 PGD and
// SmoothMix's adversary and mixing. They sit beside the objectives that train on what they return.
#pragma once
#include <cstdint>

#include "engine/autograd.h"
#include "layers/module.h"

namespace macer {

// The seed of an attack's backward: d loss / d logits (B*k, C) on the logits' device, for the
// logits (B*k, C) of the noisy copies x' + n_i (row b*k + i) and labels (B) int32. SmoothAdv and
// SmoothMix ascend the soft smoothed cross-entropy L_att (SPEC.md; macer/objectives/attack_loss.h).
// The loss is computed outside the tape; the model's input backward starts from this seed.
using AttackSeedFn = Tensor (*)(const Tensor& logits, const Tensor& labels, int copies);

// SPEC.md's L_att seed (macer/objectives/attack_loss.h with scale 1: d L_att(b) / dz per image).
Tensor soft_smoothed_seed(const Tensor& logits, const Tensor& labels, int copies);

// Where an attack draws: the k noise copies n_i of the training step, Philox(seed, noise_counter)
// exactly as ops::noisy_copies draws them for the training forward (so every attack step and the
// training forward see the same n_i), and its own randomness (PGD's random directions, SmoothMix's
// lam) from Philox(seed, random_counter | t) for attack step t (t < 1024; 1023: the mixing).
struct AttackNoise {
  int copies = 1;
  float sigma = 0.25f;
  uint64_t seed = 0;
  uint64_t noise_counter = 0;   // macer/noise_streams.h kTraining | step
  uint64_t random_counter = 0;  // kAttack | step << 10
  int64_t first_input = 0;      // global number of the first image (data-parallel ranks)
};

// d/dx' of the loss at f(x' + n_i) (seeded by `seed`), summed over the k copies: (B, ...) like x, on x's device. The model
// runs under layers::InputGradientMode (eval mode, batch-norm statistics untouched, no parameter
// gradient computed or changed). Zeros where no gradient reaches the input.
Tensor attack_input_gradient(layers::Module& model, const Tensor& x, const Tensor& labels, const AttackNoise& noise,
                             AttackSeedFn seed);

// SmoothAdv's PGD (Salman et al. 2019; SPEC.md): delta = 0, then `steps` times
// delta += (2 eps / steps) g / ||g|| (random unit direction where g = 0), clip x + delta to [0, 1],
// project delta onto ||delta||_2 <= eps. Returns x + delta. eps = 0 returns x unchanged (no forward).
// Throws macer::Error when steps < 1, eps < 0 or not finite.
Tensor pgd_attack(layers::Module& model, const Tensor& x, const Tensor& labels, const AttackNoise& noise,
                  AttackSeedFn seed, float eps, int steps);

// SmoothMix's adversary (Jeong et al. 2021, SmoothMix_PGD.attack): x^0 = x, `steps` times
// x^t = clip(x^{t-1} + alpha g / (||g|| + 1e-8), 0, 1). The clean point: x (mix_step 0) or x^1
// projected onto the ball of radius clean_max_norm around x and clipped (mix_step 1; clean_max_norm
// = alpha w_e). Throws macer::Error when steps < 1, alpha <= 0, mix_step not 0 or 1.
struct SmoothMixPoints {
  Tensor clean, adversarial;  // (B, ...) each
};
SmoothMixPoints smoothmix_attack(layers::Module& model, const Tensor& x, const Tensor& labels, const AttackNoise& noise,
                                 AttackSeedFn seed, float alpha, int steps, int mix_step, float clean_max_norm);

// SmoothMix's mixed input (1 - lam) x0 + lam x1, lam (B) ~ U(0, 1/2] per image from
// Philox(seed, random_counter | 1023). Writes lam (B) on x0's device.
Tensor smoothmix_mix(const Tensor& x0, const Tensor& x1, const AttackNoise& noise, Tensor& lam);

}  // namespace macer
