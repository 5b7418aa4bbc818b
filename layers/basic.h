// The basic layers: Conv2d, BatchNorm2d, Linear, ReLU, MaxPool2d, AvgPool2d, each a Module
// around one op of engine/ops.h, with parameter names as in torch.nn.
#pragma once
#include <cstdint>
#include <random>
#include <string>
#include <vector>

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
  // max_pool2d(forward(x), pool) (then relu() with `relu`) as one op where the CPU fuses them
  // (ops::conv2d_max_pool2d)
  Var forward_max_pool(const Var& x, ops::Pool2dParams pool, bool relu = false);
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

// Per-channel input normalization, (x - mean[c]) / std[c], as Cohen's NormalizeLayer: the
// first op of a model's forward, so it acts on the noisy input. No parameters and no state
// names (it lives in checkpoint metadata); empty mean and std: the identity.
struct Normalization {
  std::vector<float> mean, std;
  bool enabled() const { return !mean.empty(); }
  Var apply(const Var& x) const { return enabled() ? ops::normalize(x, mean, std) : x; }
};
// "none" (the identity), "cifar10" or "imagenet": the channel statistics of Cohen's code;
// "cifar10-mean", "imagenet-mean": their means with std 1 (SmoothAdv's mean-only layer).
// Other names throw macer::Error listing these.
Normalization normalization_preset(const std::string& name);

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
