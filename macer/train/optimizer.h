// SGD with momentum, weight decay and optional Nesterov over a module's contiguous parameters:
// one fused kernel per step (kernels/sgd.h); the momentum buffer mirrors the parameter layout.
#pragma once
#include "kernels/sgd.h"
#include "layers/module.h"

namespace macer {

class Sgd {
 public:
  Sgd(layers::Module& model, kernels::SgdParams params);
  void step(float lr);
  // Momentum buffer of one parameter (a view into the flat buffer), for checkpoints.
  Tensor momentum_of(const Var& parameter) const;
  Tensor& momentum() { return momentum_; }

 private:
  layers::Module& model_;
  kernels::SgdParams params_;
  Tensor momentum_;  // (P) zeros: the first step then equals PyTorch's buf = d
};

}  // namespace macer
