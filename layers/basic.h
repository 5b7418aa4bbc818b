// The basic layers: Conv2d, BatchNorm2d, Linear, ReLU, MaxPool2d, AvgPool2d, each a Module
// around one op of engine/ops.h, with parameter names as in torch.nn.
#pragma once
#include <cstdint>
#include <random>

#include "engine/ops.h"
#include "layers/module.h"

namespace macer::layers {

// Parameter initialisers (drawn on the CPU from a seeded generator).
Tensor init_normal(const Shape& shape, double stddev, std::mt19937_64& rng);
// PyTorch's default for Conv2d/Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias.
Tensor init_uniform_fan_in(const Shape& shape, int64_t fan_in, std::mt19937_64& rng);

enum class ConvInit {
  kTorchDefault,    // U(+-1/sqrt(fan_in))
  kHeFanOut,        // N(0, sqrt(2 / (R*S*K))): the Cifar ResNets and torchvision ResNet-50
};

class Conv2d : public Module {
 public:
  Conv2d(int in, int out, int kernel, int stride, int pad, bool bias, ConvInit init,
         std::mt19937_64& rng);
  Var forward(const Var& x) override;
  Var weight, bias;

 private:
  ops::Conv2dParams params_;
};

class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int channels);
  Var forward(const Var& x) override;
  Var forward_relu(const Var& x);  // relu(forward(x)) as one op (fused on the CPU)
  Var weight, bias;

 private:
  Tensor* running_mean_;
  Tensor* running_var_;
};

class Linear : public Module {
 public:
  Linear(int in, int out, std::mt19937_64& rng);
  Var forward(const Var& x) override;
  Var weight, bias;
};

class ReLU : public Module {
 public:
  Var forward(const Var& x) override { return ops::relu(x); }
};

class MaxPool2d : public Module {
 public:
  MaxPool2d(int kernel, int stride, int pad = 0) : params_{kernel, stride, pad} {}
  Var forward(const Var& x) override { return ops::max_pool2d(x, params_); }

 private:
  ops::Pool2dParams params_;
};

class AvgPool2d : public Module {
 public:
  AvgPool2d(int kernel, int stride, int pad = 0) : params_{kernel, stride, pad} {}
  Var forward(const Var& x) override { return ops::avg_pool2d(x, params_); }

 private:
  ops::Pool2dParams params_;
};

}  // namespace macer::layers
