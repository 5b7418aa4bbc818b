// layers/folded.h: the folded convolutions are read from the model's state (PyTorch names), so
// the folding needs nothing from the layer classes; the forward is the same graph without BN.
#include "layers/folded.h"

#include <cmath>
#include <map>

#include "layers/state.h"

namespace macer::layers {

namespace {

// One convolution with its batch norm folded in: y = conv(x, w) + b.
struct FoldedConv {
  Var w, b;
  ops::Conv2dParams p;
  Var operator()(const Var& x) const { return ops::conv2d(x, w, b, p); }
};

using State = std::map<std::string, Tensor>;

const Tensor& get(const State& s, const std::string& name) {
  auto it = s.find(name);
  MACER_CHECK(it != s.end(), "fold_batchnorm: the model has no tensor '" << name << "'");
  return it->second;
}

// conv `conv` followed by batch norm `bn` (BatchNorm2d's eps): per output channel k,
// scale = gamma[k] / sqrt(var[k] + eps); w'[k] = w[k] * scale; b'[k] = beta[k] - mean[k] * scale.
FoldedConv fold(const State& s, const std::string& conv, const std::string& bn, int stride, int pad, Device d) {
  Tensor w = get(s, conv + ".weight").clone();  // (K, C, R, S)
  const Tensor &g = get(s, bn + ".weight"), &beta = get(s, bn + ".bias");
  const Tensor &mean = get(s, bn + ".running_mean"), &var = get(s, bn + ".running_var");
  const int64_t k = w.dim(0), per = w.numel() / k;
  Tensor b = Tensor::empty({k});
  for (int64_t o = 0; o < k; ++o) {
    double scale = double(g.data()[o]) / std::sqrt(double(var.data()[o]) + double(ops::BatchNormParams{}.eps));
    for (int64_t i = 0; i < per; ++i) w.data()[o * per + i] = float(double(w.data()[o * per + i]) * scale);
    b.data()[o] = float(double(beta.data()[o]) - double(mean.data()[o]) * scale);
  }
  return {Var(w.to(d)), Var(b.to(d)), {stride, pad}};
}

// The residual block of all the ResNets: convs (with their relu between) then the shortcut add.
struct FoldedBlock {
  std::vector<FoldedConv> convs;  // relu after each but the last
  std::unique_ptr<FoldedConv> down;
  Var operator()(const Var& x) const {
    Var h = x;
    for (size_t i = 0; i < convs.size(); ++i) {
      h = convs[i](h);
      if (i + 1 < convs.size()) h = ops::relu(h);
    }
    return ops::add_relu(h, down ? (*down)(x) : x);
  }
};

class FoldedResNet : public Module {
 public:
  // bottleneck: torchvision's Bottleneck blocks (else BasicBlocks); imagenet_stem: torchvision's
  // conv7x7/2 and max pool (else the Cifar ResNet's conv3x3).
  FoldedResNet(const State& s, bool bottleneck, bool imagenet_stem, const Normalization& normalize, Device d)
      : norm_(normalize) {
    imagenet_stem_ = imagenet_stem;
    stem_ = imagenet_stem ? fold(s, "conv1", "bn1", 2, 3, d) : fold(s, "conv1", "bn1", 1, 1, d);
    for (int stage = 1; s.count("layer" + std::to_string(stage) + ".0.conv1.weight"); ++stage)
      for (int b = 0; s.count(block_name(stage, b) + ".conv1.weight"); ++b) {
        const std::string n = block_name(stage, b);
        const int stride = b == 0 && stage > 1 ? 2 : 1;
        FoldedBlock blk;
        if (bottleneck) {  // 1x1, 3x3 (the stride: torchvision's v1.5), 1x1
          blk.convs = {fold(s, n + ".conv1", n + ".bn1", 1, 0, d), fold(s, n + ".conv2", n + ".bn2", stride, 1, d),
                       fold(s, n + ".conv3", n + ".bn3", 1, 0, d)};
        } else {
          blk.convs = {fold(s, n + ".conv1", n + ".bn1", stride, 1, d), fold(s, n + ".conv2", n + ".bn2", 1, 1, d)};
        }
        if (s.count(n + ".downsample.0.weight"))
          blk.down = std::make_unique<FoldedConv>(fold(s, n + ".downsample.0", n + ".downsample.1", stride, 0, d));
        blocks_.push_back(std::move(blk));
      }
    fc_w_ = Var(get(s, "fc.weight").to(d));
    fc_b_ = Var(get(s, "fc.bias").to(d));
  }

  Var forward(const Var& x) override {
    Var h = ops::relu(stem_(norm_.apply(x)));
    if (imagenet_stem_) h = ops::max_pool2d(h, {3, 2, 1});
    for (const FoldedBlock& b : blocks_) h = b(h);
    const int pool = int(h.shape()[2]);  // the global average pool
    h = ops::avg_pool2d(h, {pool, pool, 0});
    return ops::linear(ops::flatten(h), fc_w_, fc_b_);
  }

 private:
  static std::string block_name(int stage, int b) { return "layer" + std::to_string(stage) + "." + std::to_string(b); }
  bool imagenet_stem_ = false;
  FoldedConv stem_;
  std::vector<FoldedBlock> blocks_;
  Var fc_w_, fc_b_;
  Normalization norm_;
};

}  // namespace

std::unique_ptr<Module> fold_batchnorm(Module& model, const Normalization& normalize, Device d) {
  State s;
  for (auto& [n, t] : state_dict(model)) s[n] = t.device() == Device::CPU ? t : t.to(Device::CPU);
  if (!s.count("bn1.running_mean")) return nullptr;  // no batch norm (LeNet)
  const bool bottleneck = s.count("layer1.0.conv3.weight") > 0;  // ResNet-50/101/152's blocks
  const bool imagenet_stem = get(s, "conv1.weight").dim(2) == 7;  // torchvision's, all depths
  return std::make_unique<FoldedResNet>(s, bottleneck, imagenet_stem, normalize, d);
}

}  // namespace macer::layers
