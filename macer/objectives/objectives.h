// The training objectives of macer/: the fused MACER objective and the Gaussian-augmentation
// baseline as autograd ops on (B*k, C) logits, and a registry from config name to objective.
#pragma once
#include <string>
#include <vector>

#include "engine/autograd.h"

namespace macer {

// Hyperparameters of an objective (SPEC.md, "The MACER objective"); the Gaussian one ignores them.
struct ObjectiveHyper {
  float sigma = 0.25f;   // noise scale of the copies
  float lambda = 12.0f;  // weight of the robustness term
  float beta = 16.0f;    // inverse temperature of the robustness term's softmax
  float gamma = 8.0f;    // hinge on xi
};
using MacerHyper = ObjectiveHyper;

// What an objective returns: the scalar loss (a Var on the tape) and, for MACER, per-input
// values on the logits' device: cl (B), rl (B) and active (B, 0 or 1). The Gaussian objective
// leaves the three tensors undefined.
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

// An objective by its config name ("macer", "gaussian").
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
