// The training objectives of macer/ on (B*k, C) logits as autograd ops: MACER (macer.cpp), the
// Gaussian baseline (gaussian.cpp), Consistency (consistency.cpp), and the registry (registry.cpp).
// SmoothMix's two-branch loss and the attack loss have their own headers beside this one.
#pragma once
#include <string>
#include <vector>

#include "engine/autograd.h"

namespace macer {

// Hyperparameters of an objective (SPEC.md, "The MACER objective", "Training methods beyond
// MACER"); the Gaussian one ignores them, Consistency reads lambda and eta.
struct ObjectiveHyper {
  float sigma = 0.25f;   // noise scale of the copies
  float lambda = 12.0f;  // MACER: weight of the robustness term; Consistency: of the mean KL
  float beta = 16.0f;    // inverse temperature of the robustness term's softmax
  float gamma = 8.0f;    // hinge on xi
  float eta = 0.5f;      // Consistency: weight of the entropy H(pbar)
};
using MacerHyper = ObjectiveHyper;

// What an objective returns: the scalar loss (a Var on the tape) and per-input values on the
// logits' device. MACER: cl (B), rl (B) and active (B, 0 or 1). Consistency: cl = its
// cross-entropy term ce (B), rl = its regulariser reg (B), active undefined. The Gaussian
// objective leaves the three tensors undefined.
struct ObjectiveResult {
  Var loss;
  Tensor cl, rl, active;
};
using MacerLossOutputs = ObjectiveResult;

// L = (CL + lambda RL) / B over logits (B*k, C) viewed as (B, k, C) and labels (B) int32 on the
// same device. The backward (kernels/macer_loss.h) is recorded when logits require a gradient.
MacerLossOutputs macer_loss(const Var& logits, const Tensor& labels, int copies, const MacerHyper& hyper);

// Cohen's baseline: cross-entropy averaged over all B*k noisy rows (ops::cross_entropy, group k).
Var gaussian_loss(const Var& logits, const Tensor& labels, int copies);

// Consistency (Jeong & Shin, NeurIPS 2020; kernels/consistency_loss.h derives it):
//   L = (1/B) sum_b [ (1/k) sum_i CE(z_{b,i}, y_b) + lambda (1/k) sum_i KL(pbar_b || p_{b,i})
//                     + eta H(pbar_b) ],   pbar_b = (1/k) sum_i softmax(z_{b,i}), not detached,
// H with the official code's log(max(pbar, 1e-20)). logits (B*k, C) image-major, labels (B) int32
// on the logits' device; k >= 1 (k = 1 makes the KL term 0; the method itself wants k >= 2).
// ce (B) and reg (B) = lambda KL + eta H are the per-image terms. Throws macer::Error on bad
// shapes, labels or non-finite lambda / eta.
struct ConsistencyOutputs {
  Var loss;
  Tensor ce, reg;
};
ConsistencyOutputs consistency_loss(const Var& logits, const Tensor& labels, int copies, float lambda, float eta);

// An objective by its config name ("macer", "gaussian", "consistency"): those that take one
// set of logits. SmoothMix (macer/objectives/smoothmix.h) takes two, the clean and the mixed
// copies, so the training step calls it directly.
struct Objective {
  using Fn = ObjectiveResult (*)(const Var& logits, const Tensor& labels, int copies,
                                 const ObjectiveHyper& hyper);
  const char* name;
  const char* description;
  Fn fn;
  ObjectiveResult operator()(const Var& logits, const Tensor& labels, int copies,
                             const ObjectiveHyper& hyper) const {
    return fn(logits, labels, copies, hyper);
  }
};

// Throws macer::Error naming the valid names when `name` is not one of them.
const Objective& objective_by_name(const std::string& name);
std::vector<std::string> objective_names();

}  // namespace macer
