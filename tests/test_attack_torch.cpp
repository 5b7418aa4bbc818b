// SmoothAdv's PGD and SmoothMix's adversary against PyTorch autograd in float64
// (tests/golden/attack_reference.py, run at test time with Debian's python3-torch): the input
// gradient at x and the point after T steps, through LeNet and a ResNet-20 in eval mode.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "data_test_util.h"
#include "engine/ops.h"
#include "engine/safetensors.h"
#include "attack_test_util.h"
#include "gradcheck.h"
#include "layers/registry.h"
#include "layers/state.h"
#include "macer/noise_streams.h"
#include "macer/objectives/attacks.h"
#include "macer/objectives/objectives.h"

using namespace macer;
using namespace macer::testing;

namespace {

const std::string& python() {
  static const std::string found = [] {
    for (const char* py : {"/usr/bin/python3", "python3"}) {
      std::string cmd = std::string(py) + " -c 'import torch, numpy' >/dev/null 2>&1";
      if (std::system(cmd.c_str()) == 0) return std::string(py);
    }
    return std::string();
  }();
  return found;
}

struct Setup {
  std::string loss, model, attack;
  int channels, size, batch, copies, steps;
  float eps, alpha, sigma;
};

// Writes the model, x, the step's noise and labels; runs the reference; returns its output.
SafetensorsFile reference(const data_test::TempDir& dir, layers::Module& model, const Setup& c, const Tensor& x,
                          const Tensor& labels, const AttackNoise& noise) {
  Tensor noisy = ops::noisy_copies(x, c.copies, c.sigma, noise.seed, noise.noise_counter, noise.first_input);
  Tensor n = noisy.clone();
  const int64_t d = x.numel() / c.batch;
  for (int64_t r = 0; r < c.batch * c.copies; ++r)
    for (int64_t e = 0; e < d; ++e) n.data()[r * d + e] -= x.data()[(r / c.copies) * d + e];
  auto tensors = layers::state_dict(model);
  tensors.emplace_back("x", x);
  tensors.emplace_back("noise", n);
  tensors.emplace_back("labels", labels);
  const std::string in = dir.file("in.safetensors"), out = dir.file("out.safetensors");
  save_safetensors(in, tensors,
                   {{"model", c.model}, {"loss", c.loss}, {"attack", c.attack}, {"eps", std::to_string(c.eps)},
                    {"steps", std::to_string(c.steps)}, {"alpha", std::to_string(c.alpha)}});
  const std::string cmd = python() + " " + MACER_SOURCE_DIR + "/tests/golden/attack_reference.py " + in + " " + out +
                          " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p);
  std::string output;
  char buf[4096];
  size_t got;
  while ((got = fread(buf, 1, sizeof buf, p)) > 0) output.append(buf, got);
  const int status = pclose(p);
  INFO(output);
  REQUIRE((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  return load_safetensors(out);
}

Tensor as_float(const Tensor& t) {
  Tensor f = Tensor::empty(t.shape());
  for (int64_t i = 0; i < t.numel(); ++i) f.data()[i] = float(t.data<double>()[i]);
  return f;
}

}  // namespace

std::string macer_tests_skip_reason() {
  if (python().empty()) return "needs python3 with torch and numpy (Debian: scripts/setup.sh python3-torch)";
  return "";
}

TEST_CASE("PGD and SmoothMix's adversary match PyTorch float64 autograd", "[attack][torch]") {
  // eps 1.0 with 30% of the pixels at 0 or 1: the clip binds; eps 0.1 after 2 steps of 0.1: the
  // projection binds.
  // The attack's own loss (SPEC.md's L_att) and, as a second seed, the Gaussian loss.
  for (const Setup& c : {Setup{"soft_smoothed", "lenet", "pgd", 1, 28, 3, 2, 1, 1.0f, 0, 0.25f},
                         Setup{"soft_smoothed", "lenet", "pgd", 1, 28, 2, 3, 2, 0.1f, 0, 0.5f},
                         Setup{"soft_smoothed", "resnet20", "pgd", 3, 32, 2, 2, 2, 1.0f, 0, 0.25f},
                         Setup{"gaussian", "lenet", "pgd", 1, 28, 2, 3, 2, 0.5f, 0, 0.5f},
                         Setup{"soft_smoothed", "lenet", "smoothmix", 1, 28, 3, 2, 2, 0, 0.5f, 0.25f},
                         Setup{"soft_smoothed", "resnet20", "smoothmix", 3, 32, 2, 2, 1, 0, 1.0f, 0.5f}}) {
    INFO(c.loss << " " << c.model << " " << c.attack << " eps " << c.eps << " steps " << c.steps);
    data_test::TempDir dir("attack_torch");
    layers::ModelOptions m;
    m.channels = c.channels, m.height = m.width = c.size, m.seed = 17;
    auto model = layers::make_model(c.model, m);
    uint32_t seed = 60;
    for (auto& [name, t] : model->named_buffers()) {
      const bool var = name.find("running_var") != std::string::npos;
      t->copy_from(random_tensor(t->shape(), seed++, var ? 0.5f : -0.3f, var ? 2.0f : 0.3f));
    }
    Tensor x = random_tensor({c.batch, c.channels, c.size, c.size}, 61, 0.0f, 1.0f);
    for (int64_t i = 0; i < x.numel(); i += 7) x.data()[i] = 0.0f;
    for (int64_t i = 3; i < x.numel(); i += 7) x.data()[i] = 1.0f;
    Tensor labels = random_labels(c.batch, 10, 62);
    AttackNoise noise;
    noise.copies = c.copies, noise.sigma = c.sigma, noise.seed = 8;
    noise.noise_counter = noise::kTraining | 5, noise.random_counter = noise::kAttack | (5 << 10);
    SafetensorsFile want = reference(dir, *model, c, x, labels, noise);

    const AttackSeedFn seed_fn = c.loss == "gaussian" ? &gaussian_seed : &soft_smoothed_seed;
    Tensor g = attack_input_gradient(*model, x, labels, noise, seed_fn);
    // fp32 against float64 on the same float32 numbers: relative to the gradient's scale.
    const Tensor want_g = as_float(*want.find("grad0"));
    double scale = 0;
    for (float v : want_g.to_vector()) scale = std::max(scale, double(std::fabs(v)));
    require_close(g, want_g, 1e-3, 1e-4 * scale, "input gradient");
    Tensor adv = c.attack == "pgd" ? pgd_attack(*model, x, labels, noise, seed_fn, c.eps, c.steps)
                                   : smoothmix_attack(*model, x, labels, noise, seed_fn, c.alpha, c.steps, 0, 0)
                                         .adversarial;
    require_close(adv, as_float(*want.find("x_adv")), 1e-4, 2e-5, "attacked point");
  }
}
