// Constructors and forwards of the basic layers, and the initialisers they use.
#include "layers/basic.h"

#include <cmath>

namespace macer::layers {

Tensor init_normal(const Shape& shape, double stddev, std::mt19937_64& rng) {
  Tensor t = Tensor::empty(shape);
  std::normal_distribution<float> dist(0.0f, static_cast<float>(stddev));
  float* p = t.data();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = dist(rng);
  return t;
}

Tensor init_uniform_fan_in(const Shape& shape, int64_t fan_in, std::mt19937_64& rng) {
  Tensor t = Tensor::empty(shape);
  float bound = 1.0f / std::sqrt(static_cast<float>(fan_in));
  std::uniform_real_distribution<float> dist(-bound, bound);
  float* p = t.data();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = dist(rng);
  return t;
}

Conv2d::Conv2d(int in, int out, int kernel, int stride, int pad, bool with_bias, ConvInit init,
               std::mt19937_64& rng)
    : params_{stride, pad} {
  Shape shape = {out, in, kernel, kernel};
  int64_t fan_in = int64_t(in) * kernel * kernel;
  if (init == ConvInit::kHeFanOut)
    weight = register_parameter("weight", init_normal(shape, std::sqrt(2.0 / (kernel * kernel * out)), rng));
  else
    weight = register_parameter("weight", init_uniform_fan_in(shape, fan_in, rng));
  if (with_bias) bias = register_parameter("bias", init_uniform_fan_in({out}, fan_in, rng));
}

Var Conv2d::forward(const Var& x) { return ops::conv2d(x, weight, bias, params_); }
Var Conv2d::forward_max_pool(const Var& x, ops::Pool2dParams pool, bool relu) {
  return ops::conv2d_max_pool2d(x, weight, bias, params_, pool, relu);
}

BatchNorm2d::BatchNorm2d(int channels) {
  weight = register_parameter("weight", Tensor::full({channels}, 1.0f));
  bias = register_parameter("bias", Tensor::zeros({channels}));
  running_mean_ = &register_buffer("running_mean", Tensor::zeros({channels}));
  running_var_ = &register_buffer("running_var", Tensor::full({channels}, 1.0f));
}

Var BatchNorm2d::forward(const Var& x) {
  ops::BatchNormParams p;
  p.training = training();
  return ops::batch_norm(x, weight, bias, *running_mean_, *running_var_, p);
}

Var BatchNorm2d::forward_relu(const Var& x) {
  ops::BatchNormParams p;
  p.training = training();
  p.relu = true;
  return ops::batch_norm(x, weight, bias, *running_mean_, *running_var_, p);
}

Linear::Linear(int in, int out, std::mt19937_64& rng) {
  weight = register_parameter("weight", init_uniform_fan_in({out, in}, in, rng));
  bias = register_parameter("bias", init_uniform_fan_in({out}, in, rng));
}

Var Linear::forward(const Var& x) { return ops::linear(x, weight, bias); }

// Cohen et al.'s code (datasets.py): _CIFAR10_MEAN/_STDDEV and _IMAGENET_MEAN/_STDDEV.
Normalization normalization_preset(const std::string& name) {
  if (name == "none") return {};
  if (name == "cifar10") return {{0.4914f, 0.4822f, 0.4465f}, {0.2023f, 0.1994f, 0.2010f}};
  if (name == "imagenet") return {{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
  // The means only (SmoothAdv's NormalizeLayer subtracts them and divides by nothing).
  if (name == "cifar10-mean") return {{0.4914f, 0.4822f, 0.4465f}, {1.0f, 1.0f, 1.0f}};
  if (name == "imagenet-mean") return {{0.485f, 0.456f, 0.406f}, {1.0f, 1.0f, 1.0f}};
  throw Error("unknown normalization '" + name + "' (known: none, cifar10, imagenet, cifar10-mean, imagenet-mean)");
}

}  // namespace macer::layers
