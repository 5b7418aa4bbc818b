// The attack machinery (macer/objectives/attacks.h, kernels/attack.h, layers::InputGradientMode):
// input gradients through eval-mode models against finite differences, the pass touching no
// parameter gradient or batch-norm statistic, the per-image kernels against plain formulas.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "engine/ops.h"
#include "attack_test_util.h"
#include "gradcheck.h"
#include "kernels/attack.h"
#include "layers/registry.h"
#include "macer/noise_streams.h"
#include "macer/objectives/attacks.h"
#include "macer/objectives/objectives.h"
#include "macer/train/step.h"

using namespace macer;
using namespace macer::testing;

namespace {

std::unique_ptr<layers::Module> model_with_statistics(const std::string& name, int channels, int size) {
  layers::ModelOptions m;
  m.channels = channels, m.height = m.width = size, m.seed = 3;
  auto model = layers::make_model(name, m);
  uint32_t seed = 40;
  for (auto& [buffer_name, t] : model->named_buffers()) {  // eval batch norm must matter
    const bool var = buffer_name.find("running_var") != std::string::npos;
    Tensor v = random_tensor(t->shape(), seed++, var ? 0.5f : -0.3f, var ? 2.0f : 0.3f);
    t->copy_from(v);
  }
  return model;
}

double norm_of(const float* v, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(v[i]) * v[i];
  return std::sqrt(s);
}

}  // namespace

TEST_CASE("eval-mode batch norm (and its fused ReLU) passes the input gradient: finite differences", "[attack]") {
  for (bool relu : {false, true}) {
    INFO("relu " << relu);
    // With the ReLU: mean and beta 0, so an output sits at the kink only where x does.
    Tensor mean = relu ? Tensor::zeros({5}) : random_tensor({5}, 1, -0.3f, 0.3f);
    Tensor var = random_tensor({5}, 2, 0.5f, 2.0f);
    const std::vector<float> mean_before = mean.to_vector();
    Var gamma(random_tensor({5}, 3, 0.5f, 1.5f)), beta(relu ? Tensor::zeros({5}) : random_tensor({5}, 4, -0.5f, 0.5f));
    ops::BatchNormParams p;
    p.training = false;
    p.relu = relu;
    // spaced inputs: no output within eps of the ReLU's kink
    check_gradients([&](const std::vector<Var>& in) { return ops::batch_norm(in[0], gamma, beta, mean, var, p); },
                    {spaced_tensor({3, 5, 2, 3}, 5, 0.05f)}, {true});
    CHECK(mean.to_vector() == mean_before);  // statistics untouched
  }
  // Parameter gradients through eval mode are refused (an attack freezes the parameters).
  Tensor mean = Tensor::zeros({2}), var = Tensor::full({2}, 1.0f);
  ops::BatchNormParams p;
  p.training = false;
  Var gamma(Tensor::full({2}, 1.0f), true), beta(Tensor::zeros({2}));
  CHECK_THROWS_WITH(ops::batch_norm(Var(Tensor::zeros({2, 2, 1, 1}), true), gamma, beta, mean, var, p),
                    Catch::Contains("parameter gradients through eval mode"));
  clear_tape();
}

TEST_CASE("the input gradient through an eval-mode LeNet matches finite differences", "[attack]") {
  auto model = model_with_statistics("lenet", 1, 28);
  layers::InputGradientMode mode(*model);
  GradCheckOptions opt;
  opt.eps = 1e-3;
  opt.max_elements = 48;
  check_gradients([&](const std::vector<Var>& in) { return model->forward(in[0]); },
                  {random_tensor({2, 1, 28, 28}, 7, 0.0f, 1.0f)}, {true}, opt);
}

TEST_CASE("the attack pass changes no parameter gradient, no batch-norm statistic and no mode", "[attack]") {
  auto model = model_with_statistics("resnet20", 3, 32);
  model->train();
  Tensor& grads = model->flat_gradients();
  grads.copy_from(Tensor::full(grads.shape(), 7.0f));
  std::vector<std::vector<float>> before;
  for (auto& [name, t] : model->named_buffers()) before.push_back(t->to_vector());
  Tensor x = random_tensor({3, 3, 32, 32}, 11, 0.0f, 1.0f);
  Tensor labels = random_labels(3, 10, 12);
  AttackNoise noise;
  noise.copies = 2;
  Tensor g = attack_input_gradient(*model, x, labels, noise, &gaussian_seed);
  CHECK(norm_of(g.data(), g.numel()) > 0);
  for (float v : grads.to_vector()) REQUIRE(v == 7.0f);
  size_t i = 0;
  for (auto& [name, t] : model->named_buffers()) CHECK(t->to_vector() == before[i++]);
  CHECK(model->training());
  for (auto& [name, p] : model->named_parameters()) CHECK(p.requires_grad());
  CHECK(tape_size() == 0);
}

TEST_CASE("attack_input_gradient adds the k copies' gradients of the same noise", "[attack]") {
  auto model = model_with_statistics("lenet", 1, 28);
  Tensor x = random_tensor({2, 1, 28, 28}, 21, 0.0f, 1.0f);
  Tensor labels = random_labels(2, 10, 22);
  AttackNoise noise;
  noise.copies = 3, noise.sigma = 0.5f, noise.seed = 5, noise.noise_counter = 9, noise.first_input = 4;
  Tensor g = attack_input_gradient(*model, x, labels, noise, &gaussian_seed);
  // By hand: the copies as a leaf, eval mode, then sum over j.
  model->eval();
  Var in(ops::noisy_copies(x, 3, 0.5f, 5, 9, 4), true);
  backward(gaussian_loss(model->forward(in), labels, 3));
  const int64_t d = 28 * 28;
  std::vector<float> want(size_t(2 * d), 0.0f);
  for (int b = 0; b < 2; ++b)
    for (int j = 0; j < 3; ++j)
      for (int64_t e = 0; e < d; ++e) want[size_t(b * d + e)] += in.grad().data()[(b * 3 + j) * d + e];
  require_close(g, Tensor::from_vector(want, {2, 1, 28, 28}), 1e-6, 1e-9, "summed copies");
}

TEST_CASE("pgd_step: normalised step, random unit direction at a zero gradient, clip, projection", "[attack]") {
  const int64_t d = 50;
  kernels::AttackShape s{4, 1, d, 6};
  Tensor x = random_tensor({4, d}, 31, 0.0f, 1.0f);
  for (int64_t e = 0; e < d; e += 5) x.data()[2 * d + e] = 0.0f, x.data()[2 * d + e + 1] = 1.0f;  // image 2: at the clip
  Tensor g = random_normal({4, d}, 32);
  for (int64_t e = 0; e < d; ++e) g.data()[1 * d + e] = 0.0f;  // image 1: zero gradient
  Tensor delta = Tensor::zeros({4, d}), x_adv = Tensor::empty({4, d});
  const float step = 0.05f, eps = 1.0f;
  kernels::cpu::pgd_step(s, x.data(), g.data(), step, eps, 77, 123, delta.data(), x_adv.data());
  for (int b = 0; b < 4; ++b) {
    INFO("image " << b);
    const float* xb = x.data() + b * d;
    std::vector<double> u(static_cast<size_t>(d));
    for (int64_t e = 0; e < d; ++e)
      u[size_t(e)] = b == 1 ? kernels::attack_normal(77, 123, uint64_t((6 + b) * d + e)) : g.data()[b * d + e];
    double un = 0;
    for (double v : u) un += v * v;
    un = std::sqrt(un);
    for (int64_t e = 0; e < d; ++e) {
      const double want = std::min(1.0, std::max(0.0, xb[e] + step * u[size_t(e)] / un)) - xb[e];
      CHECK(delta.data()[b * d + e] == Approx(want).margin(1e-6));
      CHECK(x_adv.data()[b * d + e] == Approx(xb[e] + want).margin(1e-6));
      CHECK(x_adv.data()[b * d + e] >= 0.0f);
      CHECK(x_adv.data()[b * d + e] <= 1.0f);
    }
    if (b != 2) CHECK(norm_of(delta.data() + b * d, d) == Approx(step).epsilon(1e-5));
  }
  // Many large steps: the projection keeps ||delta|| <= eps, and at eps where it binds.
  for (int t = 0; t < 40; ++t)
    kernels::cpu::pgd_step(s, x.data(), g.data(), 0.3f, 0.2f, 77, 124 + t, delta.data(), x_adv.data());
  for (int b = 0; b < 4; ++b) {
    const double n = norm_of(delta.data() + b * d, d);
    CHECK(n <= 0.2 * (1 + 1e-6));
    if (b != 2) CHECK(n == Approx(0.2).epsilon(1e-5));
  }
}

TEST_CASE("smoothmix_step, project_ball and mix_inputs follow SmoothMix's formulas", "[attack]") {
  const int64_t d = 30;
  kernels::AttackShape s{3, 2, d, 10};
  Tensor x = random_tensor({3, d}, 41, 0.0f, 1.0f);
  Tensor g = random_normal({3, d}, 42);
  for (int64_t e = 0; e < d; ++e) g.data()[2 * d + e] = 0.0f;  // zero gradient: no move (+ 1e-8)
  Tensor next = Tensor::empty({3, d});
  kernels::cpu::smoothmix_step(s, x.data(), g.data(), 0.7f, next.data());
  for (int b = 0; b < 3; ++b) {
    const double n = norm_of(g.data() + b * d, d);
    for (int64_t e = 0; e < d; ++e) {
      const double want = std::min(1.0, std::max(0.0, x.data()[b * d + e] + 0.7 * g.data()[b * d + e] / (n + 1e-8)));
      CHECK(next.data()[b * d + e] == Approx(want).margin(1e-6));
    }
  }
  Tensor far = random_tensor({3, d}, 43, -2.0f, 3.0f), y = Tensor::empty({3, d});
  kernels::cpu::project_ball(s, x.data(), far.data(), 0.25f, y.data());
  for (int b = 0; b < 3; ++b) {
    std::vector<float> diff(static_cast<size_t>(d));
    for (int64_t e = 0; e < d; ++e) diff[size_t(e)] = far.data()[b * d + e] - x.data()[b * d + e];
    const double n = norm_of(diff.data(), d), shrink = std::min(1.0, 0.25 / n);
    for (int64_t e = 0; e < d; ++e)
      CHECK(y.data()[b * d + e] ==
            Approx(std::min(1.0, std::max(0.0, x.data()[b * d + e] + diff[size_t(e)] * shrink))).margin(1e-6));
  }
  Tensor lam = Tensor::empty({3}), mixed = Tensor::empty({3, d});
  kernels::cpu::mix_inputs(s, x.data(), far.data(), 5, 6, lam.data(), mixed.data());
  std::vector<float> lams = lam.to_vector();
  for (int b = 0; b < 3; ++b) {
    CHECK(lams[size_t(b)] > 0.0f);
    CHECK(lams[size_t(b)] <= 0.5f);
    CHECK(lams[size_t(b)] == kernels::mix_lambda(5, 6, uint64_t(10 + b)));
    for (int64_t e = 0; e < d; ++e)
      CHECK(mixed.data()[b * d + e] ==
            Approx((1 - lams[size_t(b)]) * x.data()[b * d + e] + lams[size_t(b)] * far.data()[b * d + e]).margin(1e-6));
  }
  CHECK(lams[0] != lams[1]);
}

TEST_CASE("pgd_attack: eps 0 returns the input, bad settings throw, the result stays in the ball", "[attack]") {
  auto model = model_with_statistics("lenet", 1, 28);
  Tensor x = random_tensor({2, 1, 28, 28}, 51, 0.0f, 1.0f);
  Tensor labels = random_labels(2, 10, 52);
  AttackNoise noise;
  noise.copies = 2;
  noise.random_counter = noise::kAttack;
  CHECK(pgd_attack(*model, x, labels, noise, &gaussian_seed, 0.0f, 3).to_vector() == x.to_vector());
  CHECK_THROWS_WITH(pgd_attack(*model, x, labels, noise, &gaussian_seed, -0.1f, 3), Catch::Contains("eps >= 0"));
  CHECK_THROWS_WITH(pgd_attack(*model, x, labels, noise, &gaussian_seed, 0.5f, 0), Catch::Contains("steps >= 1"));
  Tensor adv = pgd_attack(*model, x, labels, noise, &gaussian_seed, 0.5f, 3);
  for (int b = 0; b < 2; ++b) {
    std::vector<float> diff(28 * 28);
    for (int e = 0; e < 28 * 28; ++e) diff[size_t(e)] = adv.data()[b * 784 + e] - x.data()[b * 784 + e];
    CHECK(norm_of(diff.data(), 784) <= 0.5 * (1 + 1e-5));
    CHECK(norm_of(diff.data(), 784) > 0.1);
  }
  // The loss it ascends went up (3 steps of 1/3 at a radius 0.5 on an untrained LeNet).
  layers::InputGradientMode mode(*model);
  NoGradGuard no_grad;
  auto loss_at = [&](const Tensor& p) {
    return gaussian_loss(model->forward(Var(ops::noisy_copies(p, 2, 0.25f, 0, 0))), labels, 2).value().item();
  };
  CHECK(loss_at(adv) > loss_at(x));
}

TEST_CASE("SmoothAdv's eps warm-up: eps_e = min(eps, (e + 1) eps / W)", "[attack]") {
  TrainConfig::Attack a;
  a.eps = 0.5, a.warmup_epochs = 2;
  CHECK(attack_eps_at(a, 0) == 0.25);
  CHECK(attack_eps_at(a, 1) == 0.5);
  CHECK(attack_eps_at(a, 7) == 0.5);
  a.warmup_epochs = 10, a.eps = 1.0;
  CHECK(attack_eps_at(a, 3) == Approx(0.4));
  a.warmup_epochs = 0;
  CHECK(attack_eps_at(a, 0) == 1.0);
}
