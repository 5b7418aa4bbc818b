// layers/folded.h: the batch-norm-folded inference form of the ResNets gives the eval-mode
// logits of the model it was folded from, with non-trivial running statistics and affine terms.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "engine/autograd.h"
#include "layers/folded.h"
#include "layers/registry.h"

using namespace macer;

namespace {

Tensor random_tensor(const Shape& shape, std::mt19937& rng, float lo, float hi) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(size_t(shape_numel(shape)));
  for (float& x : v) x = u(rng);
  return Tensor::from_vector(v, shape);
}

// Batch norms with statistics and affine terms far from the identity, so a wrong fold shows.
void randomize_batchnorms(layers::Module& m, std::mt19937& rng) {
  for (auto& [name, t] : m.named_buffers()) {
    if (name.find("running_mean") != std::string::npos) t->copy_from(random_tensor(t->shape(), rng, -0.5f, 0.5f));
    if (name.find("running_var") != std::string::npos) t->copy_from(random_tensor(t->shape(), rng, 0.3f, 2.0f));
  }
  for (auto& [name, p] : m.named_parameters())
    if (name.find("bn") != std::string::npos || name.find("downsample.1") != std::string::npos)
      p.value().copy_from(random_tensor(p.value().shape(), rng, name.find("weight") != std::string::npos ? 0.5f : -0.3f,
                                        name.find("weight") != std::string::npos ? 1.5f : 0.3f));
}

}  // namespace

TEST_CASE("folded ResNets give the eval-mode logits of their model", "[folded]") {
  std::mt19937 rng(11);
  struct Case {
    std::string name;
    layers::ModelOptions opt;
  };
  layers::ModelOptions cifar, imagenet, normalized;
  cifar.classes = 7;
  imagenet.height = imagenet.width = 64, imagenet.classes = 5;
  normalized = cifar;
  normalized.normalize = layers::normalization_preset("cifar10");
  for (const Case& c : {Case{"resnet20", cifar}, Case{"resnet20", normalized}, Case{"resnet50", imagenet},
                        Case{"resnet18", imagenet}}) {
    INFO(c.name << (c.opt.normalize.enabled() ? " (normalized input)" : ""));
    auto model = layers::make_model(c.name, c.opt);
    randomize_batchnorms(*model, rng);
    model->eval();
    NoGradGuard no_grad;
    Tensor x = random_tensor({3, c.opt.channels, c.opt.height, c.opt.width}, rng, 0.0f, 1.0f);
    std::vector<float> want = model->forward(Var(x)).value().to_vector();
    auto folded = layers::fold_batchnorm(*model, c.opt.normalize, Device::CPU);
    REQUIRE(folded);
    std::vector<float> got = folded->forward(Var(x)).value().to_vector();
    REQUIRE(got.size() == want.size());
    double scale = 0, worst = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      scale = std::max(scale, double(std::fabs(want[i])));
      worst = std::max(worst, double(std::fabs(got[i] - want[i])));
    }
    INFO("largest |difference| " << worst << " of logits up to " << scale);
    CHECK(scale > 1e-3);  // the logits are not trivially zero
    CHECK(worst <= 1e-4 * std::max(1.0, scale));
    // Training-mode batch statistics are not what is folded: the fold uses running statistics.
    model->train();
    std::vector<float> train_mode = model->forward(Var(x)).value().to_vector();
    double off = 0;
    for (size_t i = 0; i < want.size(); ++i) off = std::max(off, double(std::fabs(train_mode[i] - got[i])));
    CHECK(off > 1e-3);
  }
  layers::ModelOptions mnist;
  mnist.channels = 1, mnist.height = mnist.width = 28;
  auto lenet = layers::make_model("lenet", mnist);
  CHECK(layers::fold_batchnorm(*lenet, mnist.normalize, Device::CPU) == nullptr);  // no batch norm
}
