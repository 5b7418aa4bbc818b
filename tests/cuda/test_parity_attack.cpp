// CPU-vs-CUDA parity of the attack kernels (kernels/attack.h) and of eval-mode batch norm's input
// gradient, on odd sizes; the end-to-end eval-mode input gradient of a ResNet-20 on both devices.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <tuple>
#include <vector>

#include "engine/tensor.h"
#include "kernels/attack.h"
#include "kernels/batchnorm.h"
#include "layers/registry.h"
#include "macer/objectives/attacks.h"
#include "macer/objectives/objectives.h"
#include "../attack_test_util.h"
#include "parity_util.h"

bool macer_tests_need_cuda = true;

namespace {

using namespace macer::parity;
namespace kc = macer::kernels::cpu;
namespace kg = macer::kernels::cuda;
namespace k = macer::kernels;

Tensor empty_like_gpu(const Tensor& t) { return Tensor::empty(t.shape(), Device::CUDA); }

}  // namespace

TEST_CASE("attack kernels: CUDA matches the CPU", "[cuda][attack]") {
  for (auto [b, copies, d] : {std::tuple<int, int, int64_t>{1, 1, 1}, {3, 2, 257}, {5, 3, 3 * 32 * 32}, {2, 4, 1000}}) {
    INFO("B " << b << " k " << copies << " D " << d);
    k::AttackShape s{b, copies, d, 3};
    Tensor dn = randn({int64_t(b) * copies, d});
    Tensor g_cpu = Tensor::empty({b, d}), g_gpu = Tensor::empty({b, d}, Device::CUDA);
    kc::attack_sum_copies(s, dn.data(), g_cpu.data());
    kg::attack_sum_copies(s, gpu(dn).data(), g_gpu.data());
    expect_close(g_gpu, g_cpu, 1e-6, 1e-6, "sum_copies");

    Tensor x = randn({b, d}, 0.3f, 0.5f);
    for (int64_t i = 0; i < x.numel(); ++i) x.data()[i] = std::min(1.0f, std::max(0.0f, x.data()[i]));
    Tensor g = randn({b, d});
    for (int64_t e = 0; e < d; ++e) g.data()[e] = 0.0f;  // image 0: the random direction
    Tensor delta_cpu = randn({b, d}, 0.01f), x_adv_cpu = Tensor::empty({b, d});
    Tensor delta_gpu = gpu(delta_cpu), x_adv_gpu = empty_like_gpu(x_adv_cpu);
    kc::pgd_step(s, x.data(), g.data(), 0.3f, 0.4f, 9, 11, delta_cpu.data(), x_adv_cpu.data());
    kg::pgd_step(s, gpu(x).data(), gpu(g).data(), 0.3f, 0.4f, 9, 11, delta_gpu.data(), x_adv_gpu.data());
    expect_close(delta_gpu, delta_cpu, 1e-5, 1e-5, "pgd delta");
    expect_close(x_adv_gpu, x_adv_cpu, 1e-5, 1e-5, "pgd x_adv");

    Tensor next_cpu = Tensor::empty({b, d}), next_gpu = Tensor::empty({b, d}, Device::CUDA);
    kc::smoothmix_step(s, x.data(), g.data(), 0.5f, next_cpu.data());
    kg::smoothmix_step(s, gpu(x).data(), gpu(g).data(), 0.5f, next_gpu.data());
    expect_close(next_gpu, next_cpu, 1e-5, 1e-5, "smoothmix_step");

    Tensor far = randn({b, d});
    Tensor y_cpu = Tensor::empty({b, d}), y_gpu = Tensor::empty({b, d}, Device::CUDA);
    kc::project_ball(s, x.data(), far.data(), 0.7f, y_cpu.data());
    kg::project_ball(s, gpu(x).data(), gpu(far).data(), 0.7f, y_gpu.data());
    expect_close(y_gpu, y_cpu, 1e-5, 1e-5, "project_ball");

    Tensor lam_cpu = Tensor::empty({b}), lam_gpu = Tensor::empty({b}, Device::CUDA);
    kc::mix_inputs(s, x.data(), far.data(), 4, 5, lam_cpu.data(), y_cpu.data());
    kg::mix_inputs(s, gpu(x).data(), gpu(far).data(), 4, 5, lam_gpu.data(), y_gpu.data());
    expect_equal<float>(lam_gpu, lam_cpu, "mix lam");
    expect_close(y_gpu, y_cpu, 1e-6, 1e-6, "mixed input");
  }
}

TEST_CASE("eval-mode batch norm input gradient: CUDA matches the CPU", "[cuda][attack]") {
  k::BatchNormShape s{3, 5, 7 * 9};
  Tensor dy = randn({3, 5, 7, 9}), gamma = randn({5}), rv = randn({5}, 0.2f, 1.0f);
  Tensor dx_cpu = randn({3, 5, 7, 9});
  Tensor dx_gpu = gpu(dx_cpu);
  const float* no_y = nullptr;  // no ReLU: y is not read
  kc::batchnorm_backward_eval_data(s, dy.data(), no_y, gamma.data(), rv.data(), dx_cpu.data());
  kg::batchnorm_backward_eval_data(s, gpu(dy).data(), nullptr, gpu(gamma).data(), gpu(rv).data(), dx_gpu.data());
  expect_close(dx_gpu, dx_cpu, 1e-5, 1e-6, "bn eval dx");
}

TEST_CASE("the eval-mode input gradient of a ResNet-20: CUDA matches the CPU", "[cuda][attack]") {
  macer::layers::ModelOptions m;
  m.seed = 4;
  auto cpu_model = macer::layers::make_model("resnet20", m);
  auto gpu_model = macer::layers::make_model("resnet20", m);
  gpu_model->to(Device::CUDA);
  Tensor x = randn({3, 3, 32, 32}, 0.2f, 0.5f);
  Tensor labels = rand_labels(3, 10);
  macer::AttackNoise noise;
  noise.copies = 2, noise.seed = 3, noise.noise_counter = 7;
  Tensor g_cpu = macer::attack_input_gradient(*cpu_model, x, labels, noise, &macer::testing::gaussian_seed);
  Tensor g_gpu = macer::attack_input_gradient(*gpu_model, gpu(x), gpu(labels), noise, &macer::testing::gaussian_seed);
  expect_close(g_gpu, g_cpu, 1e-3, 1e-4, "input gradient");
}
