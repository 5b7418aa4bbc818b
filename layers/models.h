// The networks: BasicBlock and Bottleneck, the Cifar ResNet of depth 6n+2 (Cohen's and MACER's
// layout), torchvision's ResNet-18/34/50/101/152, and LeNet; state names as in those PyTorch models.
#pragma once
#include <random>

#include "layers/basic.h"

namespace macer::layers {

// What a model is built for: input (channels, height, width) and the number of classes.
struct ModelOptions {
  int channels = 3, height = 32, width = 32;
  int classes = 10;
  uint64_t seed = 0;  // initialisation
  Normalization normalize;  // applied to the (noisy) input first; none by default
};

// conv3x3-BN-ReLU-conv3x3-BN (+ shortcut) -ReLU; shortcut = 1x1 conv + BN ("downsample.0/1")
// when the stride or the width changes.
class BasicBlock : public Module {
 public:
  BasicBlock(int in, int out, int stride, std::mt19937_64& rng);
  Var forward(const Var& x) override;

 private:
  std::shared_ptr<Conv2d> conv1_, conv2_, down_conv_;
  std::shared_ptr<BatchNorm2d> bn1_, bn2_, down_bn_;
};

// 1x1 (width) - 3x3 (width, stride) - 1x1 (4 width), torchvision's ResNet v1.5 bottleneck.
class Bottleneck : public Module {
 public:
  Bottleneck(int in, int width, int stride, std::mt19937_64& rng);
  Var forward(const Var& x) override;
  static constexpr int kExpansion = 4;

 private:
  std::shared_ptr<Conv2d> conv1_, conv2_, conv3_, down_conv_;
  std::shared_ptr<BatchNorm2d> bn1_, bn2_, bn3_, down_bn_;
};

// A stage: blocks named "0", "1", ... as an nn.Sequential's children.
class Stage : public Module {
 public:
  void add(std::shared_ptr<Module> block);
  Var forward(const Var& x) override;

 private:
  std::vector<std::shared_ptr<Module>> blocks_;
};

// conv3x3(16)-BN-ReLU, stages of n BasicBlocks at 16, 32, 64 channels, global average pool, fc.
class CifarResNet : public Module {
 public:
  CifarResNet(int depth, const ModelOptions& opt);
  Var forward(const Var& x) override;

 private:
  std::shared_ptr<Conv2d> conv1_;
  std::shared_ptr<BatchNorm2d> bn1_;
  std::shared_ptr<Stage> layer1_, layer2_, layer3_;
  std::shared_ptr<Linear> fc_;
  Normalization norm_;
};

// torchvision.models.resnet{18,34,50,101,152} (torchvision/models/resnet.py): conv7x7/2, BN, ReLU,
// maxpool3/2, four stages at 64, 128, 256, 512 widths (the first block of stages 2-4 strides 2),
// global average pool, fc. BasicBlocks 2-2-2-2 (18) and 3-4-6-3 (34); Bottlenecks 3-4-6-3 (50),
// 3-4-23-3 (101), 3-8-36-3 (152). Input (N, C, H, W) with H and W divisible by 32; logits (N,
// classes). Throws macer::Error for any other depth.
class TorchvisionResNet : public Module {
 public:
  TorchvisionResNet(int depth, const ModelOptions& opt);
  Var forward(const Var& x) override;
  static bool has_depth(int depth);  // 18, 34, 50, 101 or 152

 private:
  std::shared_ptr<Conv2d> conv1_;
  std::shared_ptr<BatchNorm2d> bn1_;
  std::shared_ptr<Stage> layers_[4];
  std::shared_ptr<Linear> fc_;
  Normalization norm_;
};

// conv5x5(20)-ReLU-maxpool2, conv5x5(50)-ReLU-maxpool2, fc1(500)-ReLU, fc2(classes).
class LeNet : public Module {
 public:
  explicit LeNet(const ModelOptions& opt);
  Var forward(const Var& x) override;

 private:
  std::shared_ptr<Conv2d> conv1_, conv2_;
  std::shared_ptr<Linear> fc1_, fc2_;
  Normalization norm_;
};

}  // namespace macer::layers
