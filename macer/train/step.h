// One training step for every method (SPEC.md, "Training methods beyond MACER"): the attack
// (none, SmoothAdv's PGD, SmoothMix's adversary), noisy copies, the training forward, the objective, backward, gradient
// averaging over ranks, divergence marks, SGD. The trainer and the bench both run this one.
#pragma once
#include <cstdint>

#include "layers/module.h"
#include "macer/config.h"
#include "macer/objectives/attacks.h"
#include "macer/objectives/objectives.h"
#include "macer/train/optimizer.h"

namespace macer {

// The settings of one epoch (schedules applied) and the run.
struct StepSettings {
  int copies = 16;          // k
  float sigma = 0.25f;
  uint64_t seed = 0;        // run.seed
  ObjectiveHyper hyper;     // sigma, lambda (this epoch's), beta, gamma
  std::string objective = "macer";  // a registry name (macer/objectives/objectives.h) or smoothmix
  std::string attack = "none";  // none | pgd | smoothmix (with the smoothmix objective only)
  AttackSeedFn attack_seed = nullptr;  // the seed of the loss the attack ascends (required with an attack)
  float eps = 0;            // pgd: this epoch's eps_e
  int steps = 1;            // attack steps T
  float alpha = 0.5f;       // smoothmix: step size
  int mix_step = 0;         // smoothmix: 0 or 1
  float weight = 1.0f;      // smoothmix: this epoch's w_e
  float lr = 0.01f;         // this epoch's learning rate
};

// The attack's epoch schedules for 0-based epoch e and W = warmup_epochs (W = 0: no warm-up):
// SmoothAdv's eps_e = min(eps, (e + 1) eps / W); SmoothMix's w_e = min(1, (e + 1) / W).
double attack_eps_at(const TrainConfig::Attack& a, int64_t epoch);
double smoothmix_weight_at(const TrainConfig::Attack& a, int64_t epoch);

struct StepOutput {
  ObjectiveResult result;  // loss (and MACER's per-input terms) on the device
  Var logits;              // (B*k, C): the training forward's (SmoothMix: the clean copies'), for the vote
};

// Trains on `images` (B, ...) in [0, 1] and `labels` (B) int32, both on the model's device.
// `step`: the global optimizer step (the Philox counter of the copies' noise and, | kAttack, of
// the attack's draws); `first_input`: this rank's first image in the global batch. `marks` (2)
// I64 or undefined: first_bad_tag of the loss [0] and the gradients [1] (see trainer.cpp).
// The model is left in train mode.
// SmoothMix (objective and attack "smoothmix"): its adversary, then two train-mode forwards (the
// clean point's copies and the mixed point's, the same k draws) into macer/objectives/smoothmix.h.
StepOutput train_step(layers::Module& model, Sgd& sgd, const StepSettings& s,
                      const Tensor& images, const Tensor& labels, uint64_t step, int64_t first_input, Tensor marks);

}  // namespace macer
