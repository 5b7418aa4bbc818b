// Model tests (layers/): exact parameter counts, PyTorch state names, forward/backward shapes,
// train vs eval BatchNorm, SGD lowering the loss on a fixed batch, to(CPU), the registry.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "kernels/sgd.h"
#include "layers/registry.h"
#include "layers/state.h"

using namespace macer;
using layers::make_model;
using layers::ModelOptions;

namespace {

ModelOptions mnist_options() {
  ModelOptions o;
  o.channels = 1;
  o.height = o.width = 28;
  return o;
}

Tensor random_images(const Shape& shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  Tensor t = Tensor::empty(shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = u(rng);
  return t;
}

std::map<std::string, Shape> state_shapes(layers::Module& m) {
  std::map<std::string, Shape> out;
  for (auto& [name, t] : layers::state_dict(m)) out[name] = t.shape();
  return out;
}

bool any_nonzero(const std::vector<float>& v) {
  for (float x : v)
    if (x != 0.0f) return true;
  return false;
}

// Training-mode loss of `model` on (x, labels), without recording a backward.
float loss_on(layers::Module& m, const Tensor& x, const Tensor& labels) {
  NoGradGuard no_grad;
  return ops::cross_entropy(m.forward(Var(x)), labels).value().item();
}

}  // namespace

TEST_CASE("parameter counts are exact", "[models]") {
  // LeNet: conv1 20*1*25 + 20, conv2 50*20*25 + 50, fc1 800*500 + 500, fc2 500*10 + 10.
  CHECK(make_model("lenet", mnist_options())->parameter_count() == 431080);

  // Cifar ResNet of depth 6n+2 (no conv biases; BN has weight and bias per channel):
  //   stem: conv 3*16*9 = 432, bn 2*16 = 32                                -> 464
  //   stage 1 block (16->16): 2 convs 2*2304 + 2 BN 2*32                    -> 4672
  //   stage 2 first block (16->32, stride 2): 16*32*9 + 32*32*9 + 2*64
  //           + projection 16*32 + BN 64 = 4608 + 9216 + 128 + 512 + 64    -> 14528
  //   stage 2 other blocks: 2*9216 + 2*64                                   -> 18560
  //   stage 3 first block (32->64, stride 2): 18432 + 36864 + 256 + 2048 + 128 -> 57728
  //   stage 3 other blocks: 2*36864 + 2*128                                 -> 73984
  //   fc: 64*10 + 10                                                        -> 650
  // ResNet-20 (n=3):  464 + 3*4672 + 14528 + 2*18560 + 57728 + 2*73984 + 650 = 272474
  // ResNet-32 (n=5):  464 + 5*4672 + 14528 + 4*18560 + 57728 + 4*73984 + 650 = 466906
  // ResNet-110 (n=18): 464 + 18*4672 + 14528 + 17*18560 + 57728 + 17*73984 + 650
  //                  = 464 + 84096 + 330048 + 1315456 + 650 = 1730714  (SPEC: "about 1.73M")
  CHECK(make_model("resnet20", {})->parameter_count() == 272474);
  CHECK(make_model("resnet32", {})->parameter_count() == 466906);
  CHECK(make_model("resnet110", {})->parameter_count() == 1730714);

  // ResNet-50, torchvision layout, 1000 classes: 25,557,032 as torchvision.models.resnet50().
  ModelOptions imagenet;
  imagenet.height = imagenet.width = 224;
  imagenet.classes = 1000;
  auto r50 = make_model("resnet50", imagenet);
  CHECK(r50->parameter_count() == 25557032);
  auto shapes = state_shapes(*r50);
  CHECK(shapes.at("layer4.2.conv3.weight") == Shape{2048, 512, 1, 1});
  CHECK(shapes.at("layer1.0.downsample.0.weight") == Shape{256, 64, 1, 1});
  CHECK(shapes.at("layer3.5.bn2.running_var") == Shape{256});
  CHECK(shapes.at("conv1.weight") == Shape{64, 3, 7, 7});
  CHECK(shapes.at("fc.weight") == Shape{1000, 2048});
  CHECK(shapes.count("layer1.1.downsample.0.weight") == 0);

  // The rest of torchvision's family, 1000 classes: the counts of torchvision.models.resnet18()
  // ... resnet152() (torchvision's documented "num_params").
  struct Family {
    const char* name;
    int64_t params;
  };
  for (const Family& f : {Family{"resnet18", 11689512}, Family{"resnet34", 21797672}, Family{"resnet101", 44549160},
                          Family{"resnet152", 60192808}}) {
    INFO(f.name);
    CHECK(make_model(f.name, imagenet)->parameter_count() == f.params);
  }
  auto r18 = state_shapes(*make_model("resnet18", imagenet));
  CHECK(r18.at("layer4.1.conv2.weight") == Shape{512, 512, 3, 3});  // BasicBlocks: no conv3
  CHECK(r18.count("layer1.0.conv3.weight") == 0);
  CHECK(r18.count("layer1.0.downsample.0.weight") == 0);  // 64 -> 64 at stride 1
  CHECK(r18.at("layer2.0.downsample.0.weight") == Shape{128, 64, 1, 1});
  CHECK(r18.at("fc.weight") == Shape{1000, 512});
  // Cohen's name for the Cifar ResNets: the way to the depths (50, 152) torchvision's names take.
  CHECK(make_model("cifar_resnet152", {})->parameter_count() != make_model("resnet152", imagenet)->parameter_count());
  CHECK(state_shapes(*make_model("cifar_resnet20", {})) == state_shapes(*make_model("resnet20", {})));
  ModelOptions oblong = imagenet;
  oblong.width = 256;
  CHECK_THROWS_WITH(make_model("resnet18", oblong), Catch::Contains("square input"));
}

TEST_CASE("state names follow the PyTorch models", "[models]") {
  auto r20 = make_model("resnet20", {});
  auto shapes = state_shapes(*r20);
  CHECK(shapes.size() == 65 + 42);  // 21 convs + 21 BN * 2 + fc * 2 parameters; 21 BN * 2 buffers
  CHECK(shapes.at("conv1.weight") == Shape{16, 3, 3, 3});
  CHECK(shapes.at("bn1.weight") == Shape{16});
  CHECK(shapes.at("layer1.0.bn1.running_mean") == Shape{16});
  CHECK(shapes.at("layer1.2.conv2.weight") == Shape{16, 16, 3, 3});
  CHECK(shapes.at("layer2.0.downsample.0.weight") == Shape{32, 16, 1, 1});
  CHECK(shapes.at("layer2.0.downsample.1.running_var") == Shape{32});
  CHECK(shapes.at("layer3.0.conv1.weight") == Shape{64, 32, 3, 3});
  CHECK(shapes.at("layer3.2.bn2.bias") == Shape{64});
  CHECK(shapes.at("fc.weight") == Shape{10, 64});
  CHECK(shapes.at("fc.bias") == Shape{10});
  CHECK(shapes.count("layer1.0.downsample.0.weight") == 0);  // identity shortcut there
  CHECK(shapes.count("layer2.1.downsample.0.weight") == 0);
  for (const auto& [name, shape] : shapes) CHECK(name.find("num_batches_tracked") == std::string::npos);

  auto lenet = state_shapes(*make_model("lenet", mnist_options()));
  std::map<std::string, Shape> expected = {
      {"conv1.weight", {20, 1, 5, 5}}, {"conv1.bias", {20}},   {"conv2.weight", {50, 20, 5, 5}},
      {"conv2.bias", {50}},            {"fc1.weight", {500, 800}}, {"fc1.bias", {500}},
      {"fc2.weight", {10, 500}},       {"fc2.bias", {10}}};
  CHECK(lenet == expected);
}

TEST_CASE("ResNet-20 forward and backward shapes", "[models]") {
  auto model = make_model("resnet20", {});
  Tensor x = random_images({2, 3, 32, 32}, 1);
  Tensor labels = Tensor::from_ints({3, 7}, {2});
  model->zero_grad();
  Var logits = model->forward(Var(x));
  REQUIRE(logits.shape() == Shape{2, 10});
  for (float v : logits.value().to_vector()) CHECK(std::isfinite(v));
  Var loss = ops::cross_entropy(logits, labels);
  backward(loss);
  CHECK(tape_size() == 0);
  for (const auto& [name, var] : model->named_parameters()) {
    INFO(name);
    REQUIRE(var.grad().defined());
    CHECK(var.grad().shape() == var.value().shape());
    CHECK(any_nonzero(var.grad().to_vector()));
  }
  CHECK(any_nonzero(model->flat_gradients().to_vector()));
  CHECK(model->flat_gradients().numel() == model->parameter_count());

  // ResNet-110 at batch 1 (no backward recorded): the right shape, finite values.
  auto r110 = make_model("resnet110", {});
  NoGradGuard no_grad;
  Var out = r110->forward(Var(random_images({1, 3, 32, 32}, 2)));
  CHECK(out.shape() == Shape{1, 10});
  for (float v : out.value().to_vector()) CHECK(std::isfinite(v));
}

TEST_CASE("eval mode uses the running statistics", "[models]") {
  auto model = make_model("resnet20", {});
  Tensor x = random_images({2, 3, 32, 32}, 3);
  NoGradGuard no_grad;
  std::vector<float> train_out = model->forward(Var(x)).value().to_vector();
  // That training-mode forward moved the running statistics off their initial 0 and 1.
  Tensor* mean = nullptr;
  for (auto& [name, buf] : model->named_buffers())
    if (name == "bn1.running_mean") mean = buf;
  REQUIRE(mean);
  CHECK(any_nonzero(mean->to_vector()));
  auto buffers_before = layers::state_dict(*model);
  std::vector<std::vector<float>> before;
  for (auto& [name, t] : buffers_before) before.push_back(t.to_vector());

  model->eval();
  std::vector<float> eval_out = model->forward(Var(x)).value().to_vector();
  CHECK(eval_out != train_out);
  // Eval leaves the statistics alone, and treats each image on its own.
  auto after = layers::state_dict(*model);
  for (size_t i = 0; i < after.size(); ++i) CHECK(after[i].second.to_vector() == before[i]);
  for (int64_t b = 0; b < 2; ++b) {
    std::vector<float> alone = model->forward(Var(x.narrow_rows(b, 1).clone())).value().to_vector();
    for (int c = 0; c < 10; ++c) CHECK(alone[c] == Approx(eval_out[b * 10 + c]).margin(1e-5));
  }
  // Changing a running statistic changes the eval output, and not the training-mode output.
  mean->data()[0] += 1.0f;
  std::vector<float> shifted = model->forward(Var(x)).value().to_vector();
  CHECK(shifted != eval_out);
  model->train();
  std::vector<float> train_again = model->forward(Var(x)).value().to_vector();
  for (size_t i = 0; i < train_out.size(); ++i) CHECK(train_again[i] == Approx(train_out[i]).margin(1e-5));
}

TEST_CASE("a few SGD steps on one batch lower the loss", "[models]") {
  struct Case { std::string name; ModelOptions opt; float lr; };
  for (const Case& c : {Case{"lenet", mnist_options(), 0.05f}, Case{"resnet20", ModelOptions{}, 0.05f}}) {
    INFO(c.name);
    auto model = make_model(c.name, c.opt);
    Tensor x = random_images({8, c.opt.channels, c.opt.height, c.opt.width}, 4);
    for (int64_t i = 0; i < x.numel(); ++i) x.data()[i] = 4.0f * (x.data()[i] - 0.5f);  // U(0,1) images look alike to a fresh LeNet
    Tensor labels = Tensor::from_ints({0, 1, 2, 3, 4, 5, 6, 7}, {8});
    const int64_t n = model->flat_parameters().numel();
    Tensor momentum = Tensor::zeros({n});
    kernels::SgdParams sgd;
    sgd.lr = c.lr;
    const float first = loss_on(*model, x, labels);
    for (int step = 0; step < 10; ++step) {
      model->zero_grad();
      backward(ops::cross_entropy(model->forward(Var(x)), labels));
      kernels::cpu::sgd_step(sgd, n, model->flat_parameters().data(), model->flat_gradients().data(),
                             momentum.data());
    }
    const float last = loss_on(*model, x, labels);
    INFO("loss " << first << " -> " << last);
    CHECK(std::isfinite(last));
    CHECK(last < 0.7f * first);
  }
}

TEST_CASE("Module::to(CPU) keeps values and the flat layout", "[models]") {
  auto model = make_model("lenet", mnist_options());
  std::vector<std::vector<float>> before;
  for (auto& [name, t] : layers::state_dict(*model)) before.push_back(t.to_vector());
  model->to(Device::CPU);
  CHECK(model->device() == Device::CPU);
  auto after = layers::state_dict(*model);
  REQUIRE(after.size() == before.size());
  for (size_t i = 0; i < after.size(); ++i) {
    INFO(after[i].first);
    CHECK(after[i].second.to_vector() == before[i]);
  }
  // Parameters are still views of the flat buffer, and gradients of the flat gradient buffer.
  REQUIRE(model->flat_parameters().numel() == model->parameter_count());
  model->flat_parameters().data()[0] = 0.25f;
  CHECK(model->named_parameters()[0].second.value().data()[0] == 0.25f);
  model->zero_grad();
  backward(ops::cross_entropy(model->forward(Var(random_images({2, 1, 28, 28}, 5))),
                              Tensor::from_ints({1, 2}, {2})));
  CHECK(any_nonzero(model->flat_gradients().to_vector()));
  CHECK(model->named_parameters().back().second.grad().data() ==
        model->flat_gradients().data() + model->parameter_count() - 10);  // fc2.bias is last
}

TEST_CASE("input normalization is the model's first op, adds no state, and is checked", "[models][normalize]") {
  // A model with normalization on x equals the same weights without it on (x - mean) / std.
  for (std::string name : {"resnet20", "lenet"}) {
    INFO(name);
    ModelOptions plain = name == "lenet" ? mnist_options() : ModelOptions{};
    ModelOptions norm = plain;
    norm.normalize = name == "lenet" ? layers::Normalization{{0.1307f}, {0.3081f}} : layers::normalization_preset("cifar10");
    auto a = make_model(name, plain), b = make_model(name, norm);
    CHECK(state_shapes(*a) == state_shapes(*b));
    a->eval(), b->eval();
    Tensor x = random_images({3, plain.channels, plain.height, plain.width}, 77);
    NoGradGuard no_grad;
    Tensor want = a->forward(ops::normalize(Var(x), norm.normalize.mean, norm.normalize.std)).value();
    Tensor got = b->forward(Var(x)).value();
    CHECK(got.to_vector() == want.to_vector());
    CHECK(got.to_vector() != a->forward(Var(x)).value().to_vector());
  }
  CHECK(layers::normalization_preset("none").mean.empty());
  CHECK(layers::normalization_preset("imagenet").std == std::vector<float>{0.229f, 0.224f, 0.225f});
  CHECK_THROWS_WITH(layers::normalization_preset("svhn"), Catch::Contains("known: none, cifar10, imagenet"));
  ModelOptions bad = mnist_options();
  bad.normalize = layers::normalization_preset("cifar10");
  CHECK_THROWS_WITH(make_model("lenet", bad), Catch::Contains("3 means and 3 standard deviations for 1 input"));
}

TEST_CASE("the registry knows its models and refuses others", "[models]") {
  auto names = layers::model_names();
  for (const char* n : {"lenet", "resnet20", "resnet110", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152"})
    CHECK(std::find(names.begin(), names.end(), n) != names.end());
  CHECK_THROWS_WITH(make_model("resnet-110", {}), Catch::Contains("unknown model 'resnet-110'") &&
                                                       Catch::Contains("resnet110"));
  CHECK_THROWS_WITH(make_model("", {}), Catch::Contains("unknown model"));
  CHECK_THROWS_WITH(make_model("vgg16", {}), Catch::Contains("unknown model 'vgg16'"));
  CHECK_THROWS_AS(make_model("resnet21", {}), Error);  // not 6n+2
  CHECK_THROWS_AS(make_model("resnet2", {}), Error);
  CHECK_THROWS_AS(make_model("resnet", {}), Error);
  ModelOptions tiny = mnist_options();
  tiny.height = tiny.width = 8;
  CHECK_THROWS_WITH(make_model("lenet", tiny), Catch::Contains("at least 16x16"));
  ModelOptions odd;
  odd.height = 30;
  CHECK_THROWS_WITH(make_model("resnet20", odd), Catch::Contains("divisible by 4"));
}
