// CPU-vs-CUDA parity of the losses (cross-entropy, MACER), noisy copies and the smoothing
// reductions, and a check that a warmed-up training-style sequence of ops makes no cudaMalloc.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "engine/device.h"
#include "engine/memory.h"
#include "engine/tensor.h"
#include "kernels/batchnorm.h"
#include "kernels/conv2d.h"
#include "kernels/cross_entropy.h"
#include "kernels/elementwise.h"
#include "kernels/finite_check.h"
#include "kernels/linear.h"
#include "kernels/macer_loss.h"
#include "kernels/noisy_copies.h"
#include "kernels/pool.h"
#include "kernels/sgd.h"
#include "kernels/smoothing.h"
#include "parity_util.h"

bool macer_tests_need_cuda = true;

namespace {

using namespace macer::parity;
namespace kc = macer::kernels::cpu;
namespace kg = macer::kernels::cuda;
namespace k = macer::kernels;

// The saved context of the MACER objective, as tensors on one device.
struct Saved {
  Tensor p_label, q1, q2, c1, c2, active;
  explicit Saved(int64_t b, Device d)
      : p_label(Tensor::empty({b}, d)),
        q1(Tensor::empty({b}, d)),
        q2(Tensor::empty({b}, d)),
        c1(Tensor::empty({b}, d, DType::I32)),
        c2(Tensor::empty({b}, d, DType::I32)),
        active(Tensor::empty({b}, d)) {}
  k::MacerSaved view() {
    return {p_label.data(),     q1.data(),          q2.data(),
            c1.data<int32_t>(), c2.data<int32_t>(), active.data()};
  }
};

}  // namespace

TEST_CASE("cross-entropy forward and backward: CUDA matches CPU", "[cuda][loss]") {
  const std::vector<k::CrossEntropyShape> shapes = {
      {8, 10, 1}, {32, 10, 4}, {6, 1000, 1}, {37, 7, 1}, {1024, 10, 16}};
  for (const k::CrossEntropyShape& s : shapes) {
    INFO("cross-entropy rows " << s.rows << ", classes " << s.classes << ", group " << s.group);
    Tensor z = randn({s.rows, s.classes}, 3.0f), labels = rand_labels(s.rows / s.group, s.classes);
    Tensor gz = gpu(z), glabels = gpu(labels);
    Tensor loss = Tensor::empty({1}), gloss = Tensor::empty({1}, Device::CUDA);
    kc::cross_entropy_forward(s, z.data(), labels.data<int32_t>(), loss.data());
    kg::cross_entropy_forward(s, gz.data(), glabels.data<int32_t>(), gloss.data());
    expect_close(gloss, loss, 1e-5, 1e-6, "cross-entropy loss");

    Tensor dloss = Tensor::full({1}, 0.7f), gdloss = gpu(dloss);
    Tensor dz = randn(z.shape()), gdz = gpu(dz);
    kc::cross_entropy_backward(s, z.data(), labels.data<int32_t>(), dloss.data(), dz.data());
    kg::cross_entropy_backward(s, gz.data(), glabels.data<int32_t>(), gdloss.data(), gdz.data());
    expect_close(gdz, dz, 1e-5, 1e-6, "cross-entropy dlogits");
  }
}

TEST_CASE("MACER objective forward and backward: CUDA matches CPU", "[cuda][loss][macer]") {
  struct Case {
    int batch, copies, classes;
    float beta;
  };
  for (const Case& c : {Case{12, 16, 10, 16.0f}, Case{9, 5, 7, 4.0f}, Case{5, 2, 100, 16.0f}}) {
    INFO("MACER B " << c.batch << ", k " << c.copies << ", C " << c.classes);
    k::MacerLossParams p{c.batch, c.copies, c.classes, 0.25f, 12.0f, c.beta, 8.0f};
    const int64_t rows = int64_t(c.batch) * c.copies;
    Tensor z = randn({rows, c.classes}), labels = rand_labels(c.batch, c.classes);
    // Inputs of every kind: favouring the label (active, or xi > gamma), saturated (q1 = 1,
    // xi not finite: inactive), and favouring another class (c1 != y: inactive).
    {
      float* zp = z.data();
      const int32_t* y = labels.data<int32_t>();
      for (int b = 0; b < c.batch; ++b)
        for (int j = 0; j < c.copies; ++j) {
          float* row = zp + (int64_t(b) * c.copies + j) * c.classes;
          if (b % 4 == 0) row[y[b]] += 1.5f;
          if (b % 4 == 1) row[y[b]] += 60.0f;
          if (b % 4 == 2) row[(y[b] + 1) % c.classes] += 2.0f;
        }
    }
    Tensor gz = gpu(z), glabels = gpu(labels);
    Saved saved(c.batch, Device::CPU), gsaved(c.batch, Device::CUDA);
    Tensor loss = Tensor::empty({1}), cl = Tensor::empty({c.batch}), rl = Tensor::empty({c.batch});
    Tensor gloss = Tensor::empty({1}, Device::CUDA), gcl = Tensor::empty({c.batch}, Device::CUDA);
    Tensor grl = Tensor::empty({c.batch}, Device::CUDA);
    kc::macer_loss_forward(p, z.data(), labels.data<int32_t>(), loss.data(), cl.data(), rl.data(),
                           saved.view());
    kg::macer_loss_forward(p, gz.data(), glabels.data<int32_t>(), gloss.data(), gcl.data(),
                           grl.data(), gsaved.view());

    std::vector<float> active = saved.active.to_vector();
    int n_active = 0;
    for (float a : active) n_active += a != 0.0f;
    INFO(n_active << " of " << c.batch << " inputs active");
    if (c.batch == 12) {  // the paper's setting: the constructed inputs give both kinds
      CHECK(n_active > 0);
      CHECK(n_active < c.batch);
    }

    expect_equal<int32_t>(gsaved.c1, saved.c1, "c1");
    expect_equal<int32_t>(gsaved.c2, saved.c2, "c2");
    expect_equal<float>(gsaved.active, saved.active, "active");
    expect_close(gsaved.p_label, saved.p_label, 1e-5, 1e-7, "p_label");
    expect_close(gsaved.q1, saved.q1, 1e-5, 1e-7, "q1");
    expect_close(gsaved.q2, saved.q2, 1e-4, 1e-7, "q2");
    expect_close(gcl, cl, 1e-5, 1e-6, "cl");
    expect_close(grl, rl, 1e-4, 1e-5, "rl");
    expect_close(gloss, loss, 1e-4, 1e-5, "loss");

    Tensor dloss = Tensor::full({1}, 1.3f), gdloss = gpu(dloss);
    Tensor dz = randn(z.shape(), 0.01f), gdz = gpu(dz);
    kc::macer_loss_backward(p, z.data(), labels.data<int32_t>(), saved.view(), dloss.data(),
                            dz.data());
    kg::macer_loss_backward(p, gz.data(), glabels.data<int32_t>(), gsaved.view(), gdloss.data(),
                            gdz.data());
    expect_close(gdz, dz, 1e-3, 1e-4, "MACER dlogits");
  }
}

TEST_CASE("noisy copies: CUDA matches CPU and repeats bit for bit", "[cuda][noise]") {
  // With and without a global offset (a rank's slice of a batch), odd sizes included.
  const std::vector<k::NoisyCopiesShape> shapes = {{2, 3, 75},    {4, 16, 3072}, {1, 1, 1},
                                                   {3, 5, 7},     {3, 5, 7, 3},  {2, 3, 75, 1},
                                                   {4, 16, 3072, 4}, {1, 1, 1, 5}};
  for (const k::NoisyCopiesShape& s : shapes) {
    INFO("noisy copies B " << s.batch << ", k " << s.copies << ", D " << s.features << ", first input "
                           << s.first_input);
    const Shape ys{int64_t(s.batch) * s.copies, s.features};
    Tensor x = randn({s.batch, s.features}), gx = gpu(x);
    Tensor y = Tensor::empty(ys), gy = Tensor::empty(ys, Device::CUDA);
    Tensor gy2 = Tensor::empty(ys, Device::CUDA), gy3 = Tensor::empty(ys, Device::CUDA);
    kc::noisy_copies(s, x.data(), 0.25f, 42, 7, y.data());
    kg::noisy_copies(s, gx.data(), 0.25f, 42, 7, gy.data());
    kg::noisy_copies(s, gx.data(), 0.25f, 42, 7, gy2.data());
    kg::noisy_copies(s, gx.data(), 0.25f, 42, 8, gy3.data());
    expect_close(gy, y, 1e-5, 2e-6, "noisy copies");
    std::vector<float> a = gy.to_vector(), b = gy2.to_vector(), c = gy3.to_vector();
    CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
    CHECK(a != c);  // another counter, other noise
  }
}

TEST_CASE("smoothing reductions: CUDA matches CPU", "[cuda][smoothing]") {
  SECTION("argmax histogram, with ties") {
    for (k::LogitsShape s : {k::LogitsShape{1000, 10}, k::LogitsShape{300, 1000},
                             k::LogitsShape{50, 13000}, k::LogitsShape{7, 3}}) {
      INFO("rows " << s.rows << ", classes " << s.classes);
      Tensor z = rand_ints_as_floats({s.rows, s.classes}, -3, 3), gz = gpu(z);
      Tensor counts = Tensor::zeros({s.classes}, Device::CPU, DType::I64);
      counts.data<int64_t>()[0] = 5;  // accumulates
      Tensor gcounts = gpu(counts);
      kc::argmax_histogram(s, z.data(), counts.data<int64_t>());
      kg::argmax_histogram(s, gz.data(), gcounts.data<int64_t>());
      expect_equal<int64_t>(gcounts, counts, "argmax counts");
    }
  }
  SECTION("argmax histogram and votes with NaN and infinite logits (the same rule on both devices)") {
    k::LogitsShape s{600, 7};
    Tensor z = rand_ints_as_floats({s.rows, s.classes}, -2, 2);
    std::uniform_int_distribution<int> pick(0, 5);
    const float specials[] = {std::nanf(""), INFINITY, -INFINITY};
    for (int64_t i = 0; i < z.numel(); ++i)
      if (pick(rng()) == 0) z.data()[i] = specials[i % 3];
    for (int c = 0; c < s.classes; ++c) z.data()[5 * s.classes + c] = std::nanf("");  // an all-NaN row
    Tensor gz = gpu(z);
    Tensor counts = Tensor::zeros({s.classes}, Device::CPU, DType::I64), gcounts = gpu(counts);
    kc::argmax_histogram(s, z.data(), counts.data<int64_t>());
    kg::argmax_histogram(s, gz.data(), gcounts.data<int64_t>());
    expect_equal<int64_t>(gcounts, counts, "argmax counts with NaN/inf");
    Tensor labels = rand_labels(s.rows / 6, s.classes), glabels = gpu(labels);
    Tensor correct = Tensor::zeros({1}), gcorrect = gpu(correct);
    kc::vote_correct(s, 6, z.data(), labels.data<int32_t>(), correct.data());
    kg::vote_correct(s, 6, gz.data(), glabels.data<int32_t>(), gcorrect.data());
    expect_equal<float>(gcorrect, correct, "votes with NaN/inf");
  }
  SECTION("first_bad_tag: the smallest tag of the calls that saw NaN or inf") {
    for (int64_t n : {int64_t(1), int64_t(1000), int64_t(3) << 20}) {
      INFO("n " << n);
      Tensor x = randn({n}), gx = gpu(x);
      Tensor bad = x.clone();
      bad.data()[n - 1] = std::nanf("");
      Tensor gbad = gpu(bad);
      Tensor first = Tensor::empty({1}, Device::CPU, DType::I64);
      first.data<int64_t>()[0] = INT64_MAX;
      Tensor gfirst = gpu(first);
      for (auto [t, tag] : {std::pair{&gx, int64_t(1)}, std::pair{&gbad, int64_t(9)}, std::pair{&gx, int64_t(0)},
                            std::pair{&gbad, int64_t(4)}, std::pair{&gbad, int64_t(6)}}) {
        kg::first_bad_tag(n, t->data(), tag, gfirst.data<int64_t>());
        kc::first_bad_tag(n, (t == &gx ? x : bad).data(), tag, first.data<int64_t>());
      }
      CHECK(first.data<int64_t>()[0] == 4);
      expect_equal<int64_t>(gfirst, first, "first bad tag");
    }
  }
  SECTION("soft histogram") {
    for (auto [s, beta] :
         {std::pair{k::LogitsShape{1000, 10}, 16.0f}, std::pair{k::LogitsShape{257, 100}, 1.0f},
          std::pair{k::LogitsShape{20, 4000}, 2.0f}}) {
      INFO("rows " << s.rows << ", classes " << s.classes << ", beta " << beta);
      Tensor z = randn({s.rows, s.classes}, 2.0f), gz = gpu(z);
      Tensor sums = Tensor::zeros({s.classes}, Device::CPU, DType::F64);
      Tensor sumsq = Tensor::zeros({s.classes}, Device::CPU, DType::F64);
      sums.data<double>()[0] = 3.0;
      Tensor gsums = gpu(sums), gsumsq = gpu(sumsq);
      kc::soft_histogram(s, beta, z.data(), sums.data<double>(), sumsq.data<double>());
      kg::soft_histogram(s, beta, gz.data(), gsums.data<double>(), gsumsq.data<double>());
      expect_close_t<double>(gsums, sums, 1e-5, 1e-7, "soft sums");
      expect_close_t<double>(gsumsq, sumsq, 1e-5, 1e-7, "soft sums of squares");
    }
  }
  SECTION("vote correct, with ties") {
    for (auto [b, copies, classes] :
         {std::tuple{50, 16, 10}, std::tuple{33, 3, 4}, std::tuple{4, 7, 1000}}) {
      INFO("B " << b << ", k " << copies << ", C " << classes);
      k::LogitsShape s{b * copies, classes};
      Tensor z = rand_ints_as_floats({s.rows, classes}, -2, 2), gz = gpu(z);
      // Labels: the first copy's argmax for even b (often the vote), random for odd b.
      Tensor labels = rand_labels(b, classes);
      for (int i = 0; i < b; i += 2) {
        const float* row = z.data() + int64_t(i) * copies * classes;
        int best = 0;
        for (int c = 1; c < classes; ++c)
          if (row[c] > row[best]) best = c;
        labels.data<int32_t>()[i] = best;
      }
      Tensor glabels = gpu(labels);
      Tensor correct = Tensor::full({1}, 2.0f), gcorrect = gpu(correct);
      kc::vote_correct(s, copies, z.data(), labels.data<int32_t>(), correct.data());
      kg::vote_correct(s, copies, gz.data(), glabels.data<int32_t>(), gcorrect.data());
      expect_equal<float>(gcorrect, correct, "correct votes");
    }
  }
}

namespace {

// Parameters of a small conv net, kept across steps as a trainer keeps them.
struct Net {
  static constexpr int B = 4, K = 4, C = 10;
  k::Conv2dShape conv{B * K, 3, 8, 8, 8, 3, 3, 1, 1};
  k::BatchNormShape bn{B * K, 8, 64};
  k::Pool2dShape maxpool{B * K, 8, 8, 8, 2, 2, 0};
  k::Pool2dShape avgpool{B * K, 8, 4, 4, 4, 4, 0};
  k::LinearShape fc{B * K, 8, C};
  Tensor params = gpu(randn({8 * 3 * 9 + 8 + 8 + 8 + C * 8 + C}, 0.3f));
  Tensor momentum = Tensor::zeros(params.shape(), Device::CUDA);
  Tensor running_mean = Tensor::zeros({8}, Device::CUDA),
         running_var = Tensor::full({8}, 1.0f, Device::CUDA);
  Tensor x = gpu(randn({B, 3, 8, 8}, 1.0f, 0.5f)), labels = gpu(rand_labels(B, C));
};

Tensor cuda_empty(const Shape& s, DType t = DType::F32) {
  return Tensor::empty(s, Device::CUDA, t);
}
Tensor cuda_zeros(const Shape& s) { return Tensor::zeros(s, Device::CUDA); }

// One training-style step: forward, the fused loss, backward, the optimizer, and the smoothing
// reductions; every activation and gradient is a fresh tensor from the caching allocator.
void training_step(Net& n, uint64_t step) {
  const int R = Net::B * Net::K;
  float* p = n.params.data();
  float *w = p, *wb = w + 8 * 3 * 9, *gamma = wb + 8, *beta = gamma + 8, *fw = beta + 8,
        *fb = fw + Net::C * 8;
  Tensor grads = cuda_zeros(n.params.shape());
  float* g = grads.data();
  float *dw = g, *dwb = dw + 8 * 3 * 9, *dgamma = dwb + 8, *dbeta = dgamma + 8, *dfw = dbeta + 8,
        *dfb = dfw + Net::C * 8;

  Tensor xn = cuda_empty({R, 3, 8, 8});
  kg::noisy_copies({Net::B, Net::K, 3 * 64}, n.x.data(), 0.25f, 1, step, xn.data());
  Tensor a1 = cuda_empty({R, 8, 8, 8}), a2 = cuda_empty({R, 8, 8, 8}),
         a3 = cuda_empty({R, 8, 8, 8});
  Tensor mean = cuda_empty({8}), invstd = cuda_empty({8});
  kg::conv2d_forward(n.conv, xn.data(), w, wb, a1.data());
  kg::batchnorm_forward_train(n.bn, a1.data(), gamma, beta, n.running_mean.data(),
                              n.running_var.data(), a2.data(), mean.data(), invstd.data());
  kg::relu_forward(a2.numel(), a2.data(), a3.data());
  Tensor a4 = cuda_empty({R, 8, 4, 4}), am = cuda_empty({R, 8, 4, 4}, DType::I32);
  kg::maxpool_forward(n.maxpool, a3.data(), a4.data(), am.data<int32_t>());
  Tensor a5 = cuda_empty({R, 8}), logits = cuda_empty({R, Net::C});
  kg::avgpool_forward(n.avgpool, a4.data(), a5.data());
  kg::linear_forward(n.fc, a5.data(), fw, fb, logits.data());

  k::MacerLossParams mp{Net::B, Net::K, Net::C, 0.25f, 12.0f, 16.0f, 8.0f};
  Saved saved(Net::B, Device::CUDA);
  Tensor loss = cuda_empty({1}), cl = cuda_empty({Net::B}), rl = cuda_empty({Net::B});
  kg::macer_loss_forward(mp, logits.data(), n.labels.data<int32_t>(), loss.data(), cl.data(),
                         rl.data(), saved.view());
  Tensor ce = cuda_empty({1});
  kg::cross_entropy_forward({R, Net::C, Net::K}, logits.data(), n.labels.data<int32_t>(),
                            ce.data());

  Tensor one = Tensor::full({1}, 1.0f, Device::CUDA);
  Tensor dlogits = cuda_zeros(logits.shape());
  kg::macer_loss_backward(mp, logits.data(), n.labels.data<int32_t>(), saved.view(), one.data(),
                          dlogits.data());
  kg::cross_entropy_backward({R, Net::C, Net::K}, logits.data(), n.labels.data<int32_t>(),
                             one.data(), dlogits.data());
  Tensor d5 = cuda_zeros(a5.shape()), d4 = cuda_zeros(a4.shape()), d3 = cuda_zeros(a3.shape());
  kg::linear_backward_data(n.fc, dlogits.data(), fw, d5.data());
  kg::linear_backward_weight(n.fc, a5.data(), dlogits.data(), dfw);
  kg::linear_backward_bias(n.fc, dlogits.data(), dfb);
  kg::avgpool_backward(n.avgpool, d5.data(), d4.data());
  kg::maxpool_backward(n.maxpool, d4.data(), am.data<int32_t>(), d3.data());
  Tensor d2 = cuda_zeros(a2.shape()), d1 = cuda_zeros(a1.shape()), d0 = cuda_zeros(xn.shape());
  kg::relu_backward(a3.numel(), a3.data(), d3.data(), d2.data());
  kg::batchnorm_backward(n.bn, d2.data(), a1.data(), gamma, mean.data(), invstd.data(), d1.data(),
                         dgamma, dbeta);
  kg::conv2d_backward_weight(n.conv, xn.data(), d1.data(), dw);
  kg::conv2d_backward_bias(n.conv, d1.data(), dwb);
  kg::conv2d_backward_data(n.conv, d1.data(), w, d0.data());
  kg::scale(grads.numel(), 0.5f, g);
  kg::sgd_step(k::SgdParams{}, n.params.numel(), p, g, n.momentum.data());

  Tensor counts = Tensor::zeros({Net::C}, Device::CUDA, DType::I64);
  Tensor sums = Tensor::zeros({Net::C}, Device::CUDA, DType::F64);
  Tensor sumsq = Tensor::zeros({Net::C}, Device::CUDA, DType::F64);
  Tensor correct = cuda_zeros({1});
  kg::argmax_histogram({R, Net::C}, logits.data(), counts.data<int64_t>());
  kg::soft_histogram({R, Net::C}, 16.0f, logits.data(), sums.data<double>(), sumsq.data<double>());
  kg::vote_correct({R, Net::C}, Net::K, logits.data(), n.labels.data<int32_t>(), correct.data());
}

}  // namespace

TEST_CASE("a warmed-up training step makes no cudaMalloc", "[cuda][memory]") {
  Net net;
  training_step(net, 0);
  training_step(net, 1);
  macer::synchronize(Device::CUDA);
  const int64_t before = macer::cuda_memory_stats().malloc_calls;
  training_step(net, 2);
  macer::synchronize(Device::CUDA);
  const int64_t after = macer::cuda_memory_stats().malloc_calls;
  CHECK(after == before);
  std::vector<float> params = net.params.to_vector();
  bool finite = true;
  for (float v : params) finite = finite && std::isfinite(v);
  CHECK(finite);
}
