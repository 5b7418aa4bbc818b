// The name -> objective registry (macer/objectives/objectives.h): each entry adapts one
// objective op to the common signature; bin/ and the trainer never branch on the name.
#include "macer/objectives/objectives.h"

namespace macer {

namespace {

ObjectiveResult run_macer(const Var& logits, const Tensor& labels, int copies, const ObjectiveHyper& h) {
  return macer_loss(logits, labels, copies, h);
}

ObjectiveResult run_gaussian(const Var& logits, const Tensor& labels, int copies, const ObjectiveHyper&) {
  ObjectiveResult r;
  r.loss = gaussian_loss(logits, labels, copies);
  return r;
}

ObjectiveResult run_consistency(const Var& logits, const Tensor& labels, int copies, const ObjectiveHyper& h) {
  ConsistencyOutputs c = consistency_loss(logits, labels, copies, h.lambda, h.eta);
  ObjectiveResult r;
  r.loss = c.loss;
  r.cl = c.ce;
  r.rl = c.reg;
  return r;
}

const Objective kObjectives[] = {
    {"macer", "MACER: softmax-mean cross-entropy + lambda * hinge on the certified radius", run_macer},
    {"gaussian", "Gaussian augmentation: cross-entropy averaged over the noisy copies", run_gaussian},
    {"consistency", "Consistency: cross-entropy + lambda * mean KL(pbar || p_i) + eta * H(pbar)", run_consistency},
};

}  // namespace

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
