// Construction and forward of the networks in layers/models.h. Initialisation follows
// SPEC.md: convs N(0, sqrt(2/(k*k*out))), BN weight 1 and bias 0, linears PyTorch's default.
#include "layers/models.h"

namespace macer::layers {

namespace {
// The model's input normalization, checked against its input channels.
Normalization checked_normalization(const ModelOptions& opt) {
  const Normalization& n = opt.normalize;
  MACER_CHECK(!n.enabled() || (int(n.mean.size()) == opt.channels && n.std.size() == n.mean.size()),
              "input normalization has " << n.mean.size() << " means and " << n.std.size()
                                         << " standard deviations for " << opt.channels << " input channels");
  return n;
}
}  // namespace

BasicBlock::BasicBlock(int in, int out, int stride, std::mt19937_64& rng) {
  conv1_ = register_module("conv1", std::make_shared<Conv2d>(in, out, 3, stride, 1, false, ConvInit::kHeFanOut, rng));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(out));
  conv2_ = register_module("conv2", std::make_shared<Conv2d>(out, out, 3, 1, 1, false, ConvInit::kHeFanOut, rng));
  bn2_ = register_module("bn2", std::make_shared<BatchNorm2d>(out));
  if (stride != 1 || in != out) {
    auto down = register_module("downsample", std::make_shared<Stage>());
    down_conv_ = std::make_shared<Conv2d>(in, out, 1, stride, 0, false, ConvInit::kHeFanOut, rng);
    down_bn_ = std::make_shared<BatchNorm2d>(out);
    down->add(down_conv_);
    down->add(down_bn_);
  }
}

Var BasicBlock::forward(const Var& x) {
  Var h = bn1_->forward_relu(conv1_->forward(x));
  h = bn2_->forward(conv2_->forward(h));
  Var shortcut = down_conv_ ? down_bn_->forward(down_conv_->forward(x)) : x;
  return ops::add_relu(h, shortcut);
}

Bottleneck::Bottleneck(int in, int width, int stride, std::mt19937_64& rng) {
  int out = width * kExpansion;
  conv1_ = register_module("conv1", std::make_shared<Conv2d>(in, width, 1, 1, 0, false, ConvInit::kHeFanOut, rng));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(width));
  conv2_ = register_module("conv2", std::make_shared<Conv2d>(width, width, 3, stride, 1, false, ConvInit::kHeFanOut, rng));
  bn2_ = register_module("bn2", std::make_shared<BatchNorm2d>(width));
  conv3_ = register_module("conv3", std::make_shared<Conv2d>(width, out, 1, 1, 0, false, ConvInit::kHeFanOut, rng));
  bn3_ = register_module("bn3", std::make_shared<BatchNorm2d>(out));
  if (stride != 1 || in != out) {
    auto down = register_module("downsample", std::make_shared<Stage>());
    down_conv_ = std::make_shared<Conv2d>(in, out, 1, stride, 0, false, ConvInit::kHeFanOut, rng);
    down_bn_ = std::make_shared<BatchNorm2d>(out);
    down->add(down_conv_);
    down->add(down_bn_);
  }
}

Var Bottleneck::forward(const Var& x) {
  Var h = bn1_->forward_relu(conv1_->forward(x));
  h = bn2_->forward_relu(conv2_->forward(h));
  h = bn3_->forward(conv3_->forward(h));
  Var shortcut = down_conv_ ? down_bn_->forward(down_conv_->forward(x)) : x;
  return ops::add_relu(h, shortcut);
}

void Stage::add(std::shared_ptr<Module> block) {
  blocks_.push_back(register_module(std::to_string(blocks_.size()), block));
}

Var Stage::forward(const Var& x) {
  Var h = x;
  for (auto& b : blocks_) h = b->forward(h);
  return h;
}

CifarResNet::CifarResNet(int depth, const ModelOptions& opt) {
  MACER_CHECK(depth >= 8 && (depth - 2) % 6 == 0, "Cifar ResNet depth must be 6n+2, got " << depth);
  MACER_CHECK(opt.height % 4 == 0 && opt.width % 4 == 0,
              "Cifar ResNet needs an input size divisible by 4, got " << opt.height << "x" << opt.width);
  int n = (depth - 2) / 6;
  norm_ = checked_normalization(opt);
  std::mt19937_64 rng(opt.seed);
  conv1_ = register_module("conv1", std::make_shared<Conv2d>(opt.channels, 16, 3, 1, 1, false, ConvInit::kHeFanOut, rng));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(16));
  int in = 16;
  std::shared_ptr<Stage>* stages[3] = {&layer1_, &layer2_, &layer3_};
  for (int s = 0; s < 3; ++s) {
    int width = 16 << s;
    *stages[s] = register_module("layer" + std::to_string(s + 1), std::make_shared<Stage>());
    for (int b = 0; b < n; ++b) {
      (*stages[s])->add(std::make_shared<BasicBlock>(in, width, (b == 0 && s > 0) ? 2 : 1, rng));
      in = width;
    }
  }
  fc_ = register_module("fc", std::make_shared<Linear>(64, opt.classes, rng));
  to(Device::CPU);
}

Var CifarResNet::forward(const Var& x) {
  Var h = bn1_->forward_relu(conv1_->forward(norm_.apply(x)));
  h = layer3_->forward(layer2_->forward(layer1_->forward(h)));
  int pool = static_cast<int>(h.shape()[2]);  // 8 for 32x32 inputs: the global average pool
  h = ops::avg_pool2d(h, {pool, pool, 0});
  return fc_->forward(ops::flatten(h));
}

bool TorchvisionResNet::has_depth(int depth) {
  return depth == 18 || depth == 34 || depth == 50 || depth == 101 || depth == 152;
}

TorchvisionResNet::TorchvisionResNet(int depth, const ModelOptions& opt) {
  MACER_CHECK(has_depth(depth), "torchvision's ResNet has depth 18, 34, 50, 101 or 152, got " << depth);
  MACER_CHECK(opt.height % 32 == 0 && opt.width % 32 == 0,
              "ResNet-" << depth << " needs an input size divisible by 32, got " << opt.height << "x" << opt.width);
  MACER_CHECK(opt.height == opt.width, "ResNet-" << depth << " here pools square feature maps: give a square input, "
                                                 << "got " << opt.height << "x" << opt.width);
  norm_ = checked_normalization(opt);
  std::mt19937_64 rng(opt.seed);
  conv1_ = register_module("conv1", std::make_shared<Conv2d>(opt.channels, 64, 7, 2, 3, false, ConvInit::kHeFanOut, rng));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(64));
  // torchvision's resnet18 ... resnet152: block counts per stage, and the block.
  const bool bottleneck = depth >= 50;
  const int blocks[5][4] = {{2, 2, 2, 2}, {3, 4, 6, 3}, {3, 4, 6, 3}, {3, 4, 23, 3}, {3, 8, 36, 3}};
  const int* counts = blocks[depth == 18 ? 0 : depth == 34 ? 1 : depth == 50 ? 2 : depth == 101 ? 3 : 4];
  int in = 64;
  for (int s = 0; s < 4; ++s) {
    int width = 64 << s;
    layers_[s] = register_module("layer" + std::to_string(s + 1), std::make_shared<Stage>());
    for (int b = 0; b < counts[s]; ++b) {
      const int stride = (b == 0 && s > 0) ? 2 : 1;
      if (bottleneck) {
        layers_[s]->add(std::make_shared<Bottleneck>(in, width, stride, rng));
        in = width * Bottleneck::kExpansion;
      } else {
        layers_[s]->add(std::make_shared<BasicBlock>(in, width, stride, rng));
        in = width;
      }
    }
  }
  fc_ = register_module("fc", std::make_shared<Linear>(in, opt.classes, rng));
  to(Device::CPU);
}

Var TorchvisionResNet::forward(const Var& x) {
  Var h = bn1_->forward_relu(conv1_->forward(norm_.apply(x)));
  h = ops::max_pool2d(h, {3, 2, 1});
  for (auto& stage : layers_) h = stage->forward(h);
  int pool = static_cast<int>(h.shape()[2]);  // 7 for 224x224 inputs: the global average pool
  h = ops::avg_pool2d(h, {pool, pool, 0});
  return fc_->forward(ops::flatten(h));
}

LeNet::LeNet(const ModelOptions& opt) {
  norm_ = checked_normalization(opt);
  std::mt19937_64 rng(opt.seed);
  int h = ((opt.height - 4) / 2 - 4) / 2, w = ((opt.width - 4) / 2 - 4) / 2;
  MACER_CHECK(h > 0 && w > 0, "LeNet needs inputs of at least 16x16, got " << opt.height << "x" << opt.width);
  conv1_ = register_module("conv1", std::make_shared<Conv2d>(opt.channels, 20, 5, 1, 0, true, ConvInit::kTorchDefault, rng));
  conv2_ = register_module("conv2", std::make_shared<Conv2d>(20, 50, 5, 1, 0, true, ConvInit::kTorchDefault, rng));
  fc1_ = register_module("fc1", std::make_shared<Linear>(50 * h * w, 500, rng));
  fc2_ = register_module("fc2", std::make_shared<Linear>(500, opt.classes, rng));
  to(Device::CPU);
}

// MACER's LeNet pools after each ReLU; relu(max_pool2d(z)) = max_pool2d(relu(z)) exactly (relu
// is monotone; where a window's maximum is <= 0 both give 0 with gradient 0), and pooling first
// runs the ReLU and its backward on a quarter of the values, and lets the CPU pool each
// convolution's output and apply the ReLU while it is in cache (ops::conv2d_max_pool2d).
Var LeNet::forward(const Var& x) {
  Var h = conv1_->forward_max_pool(norm_.apply(x), {2, 2, 0}, /*relu=*/true);
  h = conv2_->forward_max_pool(h, {2, 2, 0}, /*relu=*/true);
  h = ops::relu(fc1_->forward(ops::flatten(h)));
  return fc2_->forward(h);
}

}  // namespace macer::layers
