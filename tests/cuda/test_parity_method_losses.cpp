// CPU-vs-CUDA parity of the training methods' losses: the attack loss's seed, Consistency and
// SmoothMix (forward terms and every gradient), at several sizes with odd ones, k = 1, C = 1000,
// the clamp and underflowing rows; and the autograd ops run on CUDA Vars.
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "kernels/attack_loss.h"
#include "kernels/consistency_loss.h"
#include "kernels/smoothmix_loss.h"
#include "macer/objectives/objectives.h"
#include "macer/objectives/smoothmix.h"
#include "parity_util.h"

bool macer_tests_need_cuda = true;

namespace {

using namespace macer::parity;
namespace kc = macer::kernels::cpu;
namespace kg = macer::kernels::cuda;
namespace k = macer::kernels;

struct Dims {
  int B, k, C;
};

const std::vector<Dims> kSizes = {{7, 4, 10}, {33, 2, 7}, {5, 1, 10}, {3, 16, 100}, {4, 2, 1000}, {1, 3, 1}};

// Logits (B*k, C) of scale `std`; with `underflow`, every third row gets one class at 0 and the
// rest between -40 and -240 (softmax entries far under float's range, pbar under 1e-20).
Tensor logits(const Dims& d, float std, bool underflow) {
  Tensor z = randn({d.B * d.k, d.C}, std);
  if (underflow)
    for (int r = 0; r < d.B * d.k; r += 3) {
      float* row = z.data() + int64_t(r) * d.C;
      for (int c = 0; c < d.C; ++c) row[c] = -40.0f - 200.0f * std::fabs(std::sin(float(r * d.C + c)));
      row[r % d.C] = 0.0f;
    }
  return z;
}

std::string what(const char* name, const Dims& d, bool underflow) {
  return std::string(name) + " B " + std::to_string(d.B) + " k " + std::to_string(d.k) + " C " + std::to_string(d.C) +
         (underflow ? " (underflow rows)" : "");
}

}  // namespace

TEST_CASE("attack loss and seed: CUDA matches CPU (clamp, underflow, k = 1, C = 1000)", "[cuda][loss][attack]") {
  for (const Dims& d : kSizes)
    for (bool underflow : {false, true}) {
      INFO(what("attack", d, underflow));
      Tensor z = logits(d, 3.0f, underflow), y = rand_labels(d.B, d.C);
      if (underflow && d.C > 1) z.data()[y.data<int32_t>()[0]] = -120.0f;  // image 0, copy 0: p_y under float
      const k::AttackLossParams p{d.B, d.k, d.C, 0.5f};
      Tensor loss = Tensor::empty({d.B}), dz = Tensor::empty(z.shape());
      Tensor gloss = Tensor::empty({d.B}, Device::CUDA), gdz = Tensor::empty(z.shape(), Device::CUDA);
      Tensor gz = gpu(z), gy = gpu(y);
      kc::attack_loss(p, z.data(), y.data<int32_t>(), loss.data(), dz.data());
      kg::attack_loss(p, gz.data(), gy.data<int32_t>(), gloss.data(), gdz.data());
      expect_close(gloss, loss, 1e-5, 1e-6, "attack loss");
      expect_close(gdz, dz, 1e-4, 1e-5, "attack dlogits");
    }
  // the clamp: an image whose every copy has p_y ~ e^-60 gives -log 1e-20 and a zero seed on both
  Tensor z = Tensor::zeros({2, 4}), y = Tensor::from_ints({1}, {1});
  z.data()[1] = z.data()[5] = -60.0f;
  const k::AttackLossParams p{1, 2, 4, 1.0f};
  Tensor gloss = Tensor::empty({1}, Device::CUDA), gdz = Tensor::empty({2, 4}, Device::CUDA);
  Tensor gz = gpu(z), gy = gpu(y);
  kg::attack_loss(p, gz.data(), gy.data<int32_t>(), gloss.data(), gdz.data());
  CHECK(host<float>(gloss)[0] == float(-std::log(1e-20)));
  for (float v : host<float>(gdz)) CHECK(v == 0.0f);
}

TEST_CASE("Consistency forward and backward: CUDA matches CPU (pbar underflow, k = 1, C = 1000)",
          "[cuda][loss][consistency]") {
  for (const Dims& d : kSizes)
    for (bool underflow : {false, true}) {
      INFO(what("consistency", d, underflow));
      Tensor z = logits(d, 3.0f, underflow), y = rand_labels(d.B, d.C);
      const k::ConsistencyLossParams p{d.B, d.k, d.C, 10.0f, 0.5f};
      Tensor loss = Tensor::empty({1}), ce = Tensor::empty({d.B}), reg = Tensor::empty({d.B});
      Tensor gloss = Tensor::empty({1}, Device::CUDA), gce = Tensor::empty({d.B}, Device::CUDA),
             greg = Tensor::empty({d.B}, Device::CUDA);
      Tensor gz = gpu(z), gy = gpu(y);
      kc::consistency_loss_forward(p, z.data(), y.data<int32_t>(), loss.data(), ce.data(), reg.data());
      kg::consistency_loss_forward(p, gz.data(), gy.data<int32_t>(), gloss.data(), gce.data(), greg.data());
      expect_close(gloss, loss, 1e-4, 1e-5, "consistency loss");
      expect_close(gce, ce, 1e-5, 1e-6, "consistency ce");
      expect_close(greg, reg, 1e-4, 1e-5, "consistency reg");

      Tensor dloss = Tensor::full({1}, 0.7f), gdloss = gpu(dloss);
      Tensor dz = randn(z.shape()), gdz = gpu(dz);  // backward accumulates
      kc::consistency_loss_backward(p, z.data(), y.data<int32_t>(), dloss.data(), dz.data());
      kg::consistency_loss_backward(p, gz.data(), gy.data<int32_t>(), gdloss.data(), gdz.data());
      expect_close(gdz, dz, 1e-4, 1e-4, "consistency dlogits");
    }
}

TEST_CASE("SmoothMix forward and backward: CUDA matches CPU (lam 0, underflow, k = 1, C = 1000)",
          "[cuda][loss][smoothmix]") {
  for (const Dims& d : kSizes)
    for (bool underflow : {false, true}) {
      INFO(what("smoothmix", d, underflow));
      Tensor zc = logits(d, 3.0f, underflow), zm = randn({d.B * d.k, d.C}, 3.0f);
      // labels: the clean argmax of copy 0 on even images (mostly right), random on odd ones
      Tensor y = rand_labels(d.B, d.C);
      for (int b = 0; b < d.B; b += 2) {
        const float* row = zc.data() + int64_t(b) * d.k * d.C;
        int top = 0;
        for (int c = 1; c < d.C; ++c)
          if (row[c] > row[top]) top = c;
        y.data<int32_t>()[b] = top;
      }
      Tensor lam = Tensor::zeros({d.B});
      for (int b = 0; b < d.B; ++b) lam.data()[b] = b % 3 == 0 ? 0.0f : 0.5f * float(b % 5) / 4.0f;
      const k::SmoothMixLossParams p{d.B, d.k, d.C, 5.0f};
      Tensor loss = Tensor::empty({1}), ce = Tensor::empty({d.B}), mix = Tensor::empty({d.B}),
             correct = Tensor::empty({d.B});
      Tensor gloss = Tensor::empty({1}, Device::CUDA), gce = Tensor::empty({d.B}, Device::CUDA),
             gmix = Tensor::empty({d.B}, Device::CUDA), gcorrect = Tensor::empty({d.B}, Device::CUDA);
      Tensor gzc = gpu(zc), gzm = gpu(zm), gy = gpu(y), glam = gpu(lam);
      kc::smoothmix_loss_forward(p, zc.data(), zm.data(), y.data<int32_t>(), lam.data(), loss.data(), ce.data(),
                                 mix.data(), correct.data());
      kg::smoothmix_loss_forward(p, gzc.data(), gzm.data(), gy.data<int32_t>(), glam.data(), gloss.data(), gce.data(),
                                 gmix.data(), gcorrect.data());
      expect_equal<float>(gcorrect, correct, "smoothmix correct");
      expect_close(gloss, loss, 1e-4, 1e-5, "smoothmix loss");
      expect_close(gce, ce, 1e-5, 1e-6, "smoothmix ce");
      expect_close(gmix, mix, 1e-4, 1e-5, "smoothmix mix");

      Tensor dloss = Tensor::full({1}, 0.7f), gdloss = gpu(dloss);
      Tensor dzc = randn(zc.shape()), dzm = randn(zm.shape()), gdzc = gpu(dzc), gdzm = gpu(dzm);
      kc::smoothmix_loss_backward(p, zc.data(), zm.data(), y.data<int32_t>(), lam.data(), correct.data(), dloss.data(),
                                  dzc.data(), dzm.data());
      kg::smoothmix_loss_backward(p, gzc.data(), gzm.data(), gy.data<int32_t>(), glam.data(), gcorrect.data(),
                                  gdloss.data(), gdzc.data(), gdzm.data());
      expect_close(gdzc, dzc, 1e-4, 1e-4, "smoothmix dclean");
      expect_close(gdzm, dzm, 1e-4, 1e-4, "smoothmix dmixed");
    }
}

TEST_CASE("the method-loss ops run on CUDA Vars and give the CPU's gradients", "[cuda][loss][objectives]") {
  const Dims d{6, 2, 10};
  Tensor z = randn({d.B * d.k, d.C}, 2.0f), zm = randn({d.B * d.k, d.C}, 2.0f), y = rand_labels(d.B, d.C);
  Tensor lam = Tensor::full({d.B}, 0.25f);

  macer::Var c(z.clone(), true), g(gpu(z), true);
  macer::backward(macer::consistency_loss(c, y, d.k, 10.0f, 0.5f).loss);
  macer::backward(macer::consistency_loss(g, gpu(y), d.k, 10.0f, 0.5f).loss);
  expect_close(g.grad(), c.grad(), 1e-4, 1e-4, "consistency op dlogits");

  macer::Var cc(z.clone(), true), cm(zm.clone(), true), gc(gpu(z), true), gm(gpu(zm), true);
  macer::backward(macer::smoothmix_loss(cc, cm, y, lam, d.k, 5.0f).loss);
  macer::backward(macer::smoothmix_loss(gc, gm, gpu(y), gpu(lam), d.k, 5.0f).loss);
  expect_close(gc.grad(), cc.grad(), 1e-4, 1e-4, "smoothmix op dclean");
  expect_close(gm.grad(), cm.grad(), 1e-4, 1e-4, "smoothmix op dmixed");
}
