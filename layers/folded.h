// The inference form of a trained ResNet (eval mode): every batch norm folded into the
// convolution before it (w' = w g / sqrt(v + eps), b' = beta - m g / sqrt(v + eps)), so a block
// is conv+bias, relu, conv+bias, add, relu: two passes over memory fewer per convolution.
#pragma once
#include <memory>
#include <string>

#include "layers/models.h"

namespace macer::layers {

// A folded copy of `model` (a Cifar or torchvision ResNet, told apart by its state names, in any
// mode; its running statistics are used), its weights on `device`, applying `normalize` to the
// input first as the model does; or nullptr for a model without batch norm (LeNet), which is its
// own inference form. Computes the eval-mode logits of `model` up to float rounding. For
// inference only: its weights are not parameters.
std::unique_ptr<Module> fold_batchnorm(Module& model, const Normalization& normalize, Device device);

}  // namespace macer::layers
