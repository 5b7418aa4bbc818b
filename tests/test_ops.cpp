// Tests of the network ops of engine/ops.h on the CPU (convolution is in test_conv.cpp): central
// finite-difference gradients, forwards against naive loops, batch-norm statistics and SGD as
// PyTorch defines them, and the accumulate-into-gradients contract of the backward kernels.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <utility>
#include <vector>

#include "engine/ops.h"
#include "gradcheck.h"
#include "kernels/batchnorm.h"
#include "kernels/cross_entropy.h"
#include "kernels/elementwise.h"
#include "kernels/linear.h"
#include "kernels/normalize.h"
#include "kernels/pool.h"
#include "kernels/sgd.h"

using namespace macer;
using namespace macer::testing;

// ---- batch normalisation ------------------------------------------------------------------

TEST_CASE("batch norm gradients of x, gamma and beta in training mode (4-d and 2-d)", "[ops][bn][grad]") {
  for (Shape shape : {Shape{4, 3, 3, 5}, Shape{6, 4}, Shape{2, 2, 1, 3}}) {
    INFO("x " << shape_string(shape));
    const int64_t c = shape[1];
    Tensor rm = Tensor::zeros({c}), rv = Tensor::full({c}, 1.0f);
    std::vector<Tensor> in = {random_tensor(shape, 7, -1.0f, 2.0f), random_tensor({c}, 8, 0.5f, 1.5f),
                              random_tensor({c}, 9)};
    // The output divides by the batch's standard deviation: a smaller step keeps it near-linear.
    check_gradients([&](const std::vector<Var>& v) { return ops::batch_norm(v[0], v[1], v[2], rm, rv, {}); }, in,
                    {true, true, true}, GradCheckOptions{1e-3, 3e-2, 3e-3});
  }
}

// The fused relu(batch_norm(x)) (BatchNormParams::relu; one kernel each way on the CPU) against the
// two ops one after the other: outputs, running statistics and all three gradients, both modes.
TEST_CASE("batch norm with a fused ReLU equals relu(batch_norm) in values and gradients", "[ops][bn][grad]") {
  for (Shape shape : {Shape{6, 5, 7, 9}, Shape{9, 4}, Shape{3, 2, 33, 17}}) {
    INFO("x " << shape_string(shape));
    const int64_t c = shape[1];
    Tensor x = random_tensor(shape, 31, -1.0f, 2.0f), g0 = random_tensor({c}, 32, 0.5f, 1.5f), b0 = random_tensor({c}, 33);
    Tensor dy = random_tensor(shape, 34);
    struct Run {
      Tensor y, dx, dg, db, rm, rv, eval;
    };
    auto run = [&](bool fused) {
      Var xv(x.clone(), true), g(g0.clone(), true), b(b0.clone(), true);
      Run r{Tensor(), Tensor(), Tensor(), Tensor(), Tensor::zeros({c}), Tensor::full({c}, 1.0f), Tensor()};
      ops::BatchNormParams p;
      p.relu = fused;
      Var y = ops::batch_norm(xv, g, b, r.rm, r.rv, p);
      if (!fused) y = ops::relu(y);
      backward(weighted_sum(y, to_doubles(dy)));
      r.y = y.value(), r.dx = xv.grad(), r.dg = g.grad(), r.db = b.grad();
      NoGradGuard no_grad;
      p.training = false;
      Var e = ops::batch_norm(Var(x), Var(g0), Var(b0), r.rm, r.rv, p);
      r.eval = fused ? e.value() : ops::relu(e).value();
      return r;
    };
    Run fused = run(true), plain = run(false);
    require_close(fused.y, plain.y, 1e-6, 1e-6, "forward");
    require_close(fused.rm, plain.rm, 1e-6, 1e-7, "running mean");
    require_close(fused.rv, plain.rv, 1e-6, 1e-7, "running var");
    require_close(fused.dx, plain.dx, 1e-5, 1e-5, "dx");
    require_close(fused.dg, plain.dg, 1e-5, 1e-5, "dgamma");
    require_close(fused.db, plain.db, 1e-5, 1e-5, "dbeta");
    require_close(fused.eval, plain.eval, 1e-6, 1e-6, "eval mode");
    // Finite differences through the fused op itself, on the small shapes: in a large channel a
    // step of every input moves all its outputs and some of them across the ReLU's kink.
    if (shape_numel(shape) > 2000) continue;
    Tensor rm = Tensor::zeros({c}), rv = Tensor::full({c}, 1.0f);
    ops::BatchNormParams p;
    p.relu = true;
    check_gradients([&](const std::vector<Var>& v) { return ops::batch_norm(v[0], v[1], v[2], rm, rv, p); },
                    {x, g0, b0}, {true, true, true}, GradCheckOptions{1e-3, 3e-2, 3e-3});
  }
}

TEST_CASE("batch norm follows PyTorch: biased variance to normalise, unbiased running var, eval mode",
          "[ops][bn]") {
  for (Shape shape : {Shape{5, 3, 2, 3}, Shape{8, 3}}) {
    INFO("x " << shape_string(shape));
    const int n = int(shape[0]), c = int(shape[1]), hw = shape.size() == 4 ? int(shape[2] * shape[3]) : 1;
    Tensor rm = Tensor::zeros({c}), rv = Tensor::full({c}, 1.0f);  // PyTorch's initial buffers
    Var gamma(random_tensor({c}, 10, 0.5f, 1.5f)), beta(random_tensor({c}, 11));
    const float* g = gamma.value().data();
    const float* bt = beta.value().data();
    std::vector<double> exp_mean(size_t(c), 0.0), exp_var(size_t(c), 1.0);
    for (int step = 0; step < 4; ++step) {
      Tensor x = random_tensor(shape, 20 + step, -2.0f + step, 3.0f);
      Tensor y = ops::batch_norm(Var(x), gamma, beta, rm, rv, {true, 0.1f, 1e-5f}).value();
      std::vector<double> want(size_t(y.numel()));
      for (int ic = 0; ic < c; ++ic) {
        auto at = [&](int in, int i) { return (int64_t(in) * c + ic) * hw + i; };
        double mean = 0, ss = 0;
        for (int in = 0; in < n; ++in)
          for (int i = 0; i < hw; ++i) mean += x.data()[at(in, i)];
        const double m = double(n) * hw;
        mean /= m;
        for (int in = 0; in < n; ++in)
          for (int i = 0; i < hw; ++i) ss += (x.data()[at(in, i)] - mean) * (x.data()[at(in, i)] - mean);
        exp_mean[size_t(ic)] = 0.9 * exp_mean[size_t(ic)] + 0.1 * mean;        // momentum 0.1
        exp_var[size_t(ic)] = 0.9 * exp_var[size_t(ic)] + 0.1 * ss / (m - 1);  // unbiased
        for (int in = 0; in < n; ++in)  // y = (x - mean) / sqrt(biased var + eps) * gamma + beta
          for (int i = 0; i < hw; ++i)
            want[size_t(at(in, i))] = (x.data()[at(in, i)] - mean) / std::sqrt(ss / m + 1e-5) * g[ic] + bt[ic];
      }
      require_close(y, Tensor::from_vector(std::vector<float>(want.begin(), want.end()), shape), 1e-4, 1e-5,
                    "training output");
      std::vector<float> em(exp_mean.begin(), exp_mean.end()), ev(exp_var.begin(), exp_var.end());
      require_close(rm, Tensor::from_vector(em, {c}), 1e-5, 1e-6, "running mean");
      require_close(rv, Tensor::from_vector(ev, {c}), 1e-5, 1e-6, "running var");
    }
    // Eval mode normalises with the running statistics and leaves them unchanged.
    Tensor rm_before = rm.clone(), rv_before = rv.clone();
    Tensor x = random_tensor(shape, 30, -2.0f, 2.0f);
    Tensor y = ops::batch_norm(Var(x), gamma, beta, rm, rv, {false, 0.1f, 1e-5f}).value();
    std::vector<float> want(size_t(y.numel()));
    for (int64_t i = 0; i < y.numel(); ++i) {
      const int ic = int((i / hw) % c);
      want[size_t(i)] = float((x.data()[i] - exp_mean[size_t(ic)]) / std::sqrt(exp_var[size_t(ic)] + 1e-5) * g[ic] + bt[ic]);
    }
    require_close(y, Tensor::from_vector(want, shape), 1e-4, 1e-5, "eval output");
    require_close(rm, rm_before, 0, 0, "running mean in eval");
    require_close(rv, rv_before, 0, 0, "running var in eval");
  }
}

TEST_CASE("batch norm's eps sits inside the square root, in training and eval mode", "[ops][bn]") {
  // Batch variance ~1e-7 and running variances down to 1e-6: eps = 1e-5 dominates, so leaving it
  // out (or adding it outside the root) changes the output by far more than the tolerance.
  const int n = 4, c = 3;
  Tensor x = random_tensor({n, c}, 32, -1e-3f, 1e-3f);
  Tensor rm = Tensor::zeros({c}), rv = Tensor::from_vector({1e-6f, 1e-5f, 1.0f}, {c});
  Var gamma(Tensor::full({c}, 1.0f)), beta(Tensor::zeros({c}));
  Tensor eval = ops::batch_norm(Var(x), gamma, beta, rm, rv, {false, 0.1f, 1e-5f}).value();
  Tensor train = ops::batch_norm(Var(x), gamma, beta, rm, rv, {true, 0.1f, 1e-5f}).value();
  std::vector<float> want_eval(size_t(n) * c), want_train(size_t(n) * c);
  const std::vector<double> var0 = {1e-6, 1e-5, 1.0};
  for (int ic = 0; ic < c; ++ic) {
    double mean = 0, ss = 0;
    for (int i = 0; i < n; ++i) mean += x.data()[i * c + ic] / double(n);
    for (int i = 0; i < n; ++i) ss += (x.data()[i * c + ic] - mean) * (x.data()[i * c + ic] - mean);
    for (int i = 0; i < n; ++i) {
      want_eval[size_t(i * c + ic)] = float(x.data()[i * c + ic] / std::sqrt(var0[size_t(ic)] + 1e-5));
      want_train[size_t(i * c + ic)] = float((x.data()[i * c + ic] - mean) / std::sqrt(ss / n + 1e-5));
    }
  }
  require_close(eval, Tensor::from_vector(want_eval, {n, c}), 1e-4, 1e-6, "eval");
  require_close(train, Tensor::from_vector(want_train, {n, c}), 1e-4, 1e-6, "training");
}

// ---- relu, add, flatten -------------------------------------------------------------------

TEST_CASE("relu, add and flatten: forwards and gradients", "[ops][grad]") {
  Tensor x = spaced_tensor({2, 3, 4, 5}, 12);
  Tensor y = ops::relu(Var(x)).value();
  for (int64_t i = 0; i < x.numel(); ++i) CHECK(y.data()[i] == std::max(x.data()[i], 0.0f));
  // spaced_tensor keeps every input >= gap/2 = 0.025 from the kink, eps = 0.01 never crosses it.
  check_gradients([](const std::vector<Var>& v) { return ops::relu(v[0]); }, {x});
  check_gradients([](const std::vector<Var>& v) { return ops::add(v[0], v[1]); },
                  {random_tensor({3, 2, 5}, 13), random_tensor({3, 2, 5}, 14)});
  // A Var used twice (the residual) receives both contributions.
  check_gradients([](const std::vector<Var>& v) { return ops::add(ops::relu(v[0]), v[0]); },
                  {spaced_tensor({2, 7}, 15)});
  Tensor f = random_tensor({3, 2, 3, 3}, 16);
  Var flat = ops::flatten(Var(f));
  REQUIRE(flat.shape() == Shape{3, 18});
  require_close(flat.value().view(f.shape()), f, 0, 0, "flatten keeps the values in order");
  check_gradients([](const std::vector<Var>& v) { return ops::flatten(v[0]); }, {f});
}

// ---- input normalization ------------------------------------------------------------------

TEST_CASE("normalize: (x - mean[c]) / std[c] per channel, gradient dy / std[c]", "[ops][normalize][grad]") {
  const std::vector<float> mean = {0.4914f, 0.4822f, 0.4465f}, sd = {0.2023f, 0.1994f, 0.2010f};
  for (Shape shape : {Shape{2, 3, 4, 5}, Shape{5, 3}, Shape{1, 3, 1, 7}}) {
    INFO("x " << shape_string(shape));
    Tensor x = random_tensor(shape, 41, 0.0f, 1.0f);
    Tensor y = ops::normalize(Var(x), mean, sd).value();
    const int64_t hw = x.numel() / (shape[0] * 3);
    std::vector<float> want(size_t(x.numel()));
    for (int64_t i = 0; i < x.numel(); ++i) {
      const size_t c = size_t((i / hw) % 3);
      want[size_t(i)] = float((double(x.data()[i]) - mean[c]) / sd[c]);
    }
    require_close(y, Tensor::from_vector(want, shape), 1e-6, 1e-6, "forward");
    check_gradients([&](const std::vector<Var>& v) { return ops::normalize(v[0], mean, sd); }, {x});
  }
  // One channel (MNIST) and the gradient reaching an op before it.
  check_gradients([](const std::vector<Var>& v) { return ops::normalize(ops::relu(v[0]), {0.5f}, {0.25f}); },
                  {spaced_tensor({3, 1, 2, 2}, 42)});
}

TEST_CASE("normalize's backward accumulates; bad statistics are refused", "[ops][normalize]") {
  kernels::NormalizeShape ks;
  ks.n = 2, ks.c = 2, ks.hw = 3, ks.std[0] = 0.5f, ks.std[1] = 4.0f;
  Tensor dx = Tensor::full({2, 2, 3}, 1.0f), dy = Tensor::full({2, 2, 3}, 2.0f);
  kernels::cpu::normalize_backward(ks, dy.data(), dx.data());  // dx = 1 + 2 / std[c]
  for (int64_t i = 0; i < 12; ++i) CHECK(dx.data()[i] == ((i / 3) % 2 == 0 ? 5.0f : 1.5f));
  CHECK_THROWS_WITH(ops::normalize(Var(random_tensor({2, 3, 2}, 44)), {0.f, 0.f}, {1.f, 1.f}),
                    Catch::Contains("normalize: input"));
  CHECK_THROWS_WITH(ops::normalize(Var(random_tensor({2, 2, 2}, 45)), {0.f, 0.f}, {1.f, 0.f}),
                    Catch::Contains("standard deviation 0"));
}

// ---- pooling ------------------------------------------------------------------------------

namespace {
// Naive windows in double; padding is skipped (max never takes it, avg counts it as zero).
void naive_pools(const Tensor& x, ops::Pool2dParams p, std::vector<float>& mx, std::vector<float>& av) {
  const int planes = int(x.dim(0) * x.dim(1)), h = int(x.dim(2)), w = int(x.dim(3));
  const int ph = (h + 2 * p.pad - p.kernel) / p.stride + 1, pw = (w + 2 * p.pad - p.kernel) / p.stride + 1;
  mx.assign(size_t(planes) * ph * pw, 0.0f);
  av.assign(mx.size(), 0.0f);
  for (int pl = 0; pl < planes; ++pl)
    for (int oh = 0; oh < ph; ++oh)
      for (int ow = 0; ow < pw; ++ow) {
        double best = -INFINITY, sum = 0;
        for (int kh = 0; kh < p.kernel; ++kh)
          for (int kw = 0; kw < p.kernel; ++kw) {
            const int ih = oh * p.stride - p.pad + kh, iw = ow * p.stride - p.pad + kw;
            if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue;
            const double v = x.data()[(int64_t(pl) * h + ih) * w + iw];
            best = std::max(best, v);
            sum += v;
          }
        const size_t o = (size_t(pl) * ph + oh) * pw + ow;
        mx[o] = float(best);
        av[o] = float(sum / (p.kernel * p.kernel));
      }
}
}  // namespace

// The fused relu(a + b) of the residual blocks against relu(add(a, b)), also with a == b.
TEST_CASE("add_relu equals relu(add) in values and gradients", "[ops][grad]") {
  const Shape shape{3, 4, 5, 7};
  Tensor a0 = random_tensor(shape, 41), b0 = random_tensor(shape, 42), dy = random_tensor(shape, 43);
  for (bool same : {false, true}) {
    INFO((same ? "a and b the same variable" : "two variables"));
    auto run = [&](bool fused) {
      Var a(a0.clone(), true), b(b0.clone(), true);
      const Var& second = same ? a : b;
      Var y = fused ? ops::add_relu(a, second) : ops::relu(ops::add(a, second));
      backward(weighted_sum(y, to_doubles(dy)));
      return std::vector<Tensor>{y.value(), a.grad(), same ? a.grad() : b.grad()};
    };
    std::vector<Tensor> fused = run(true), plain = run(false);
    for (size_t i = 0; i < fused.size(); ++i) require_close(fused[i], plain[i], 0.0, 0.0, "output/gradient");
  }
  // Finite differences away from the kink: a + b = 2c with |c| >= 0.2, half of them negative.
  Tensor c = random_tensor(shape, 44, 0.2f, 1.0f);
  for (int64_t i = 0; i < c.numel(); i += 2) c.data()[i] = -c.data()[i];
  check_gradients([](const std::vector<Var>& v) { return ops::add_relu(v[0], v[1]); }, {c, c.clone()},
                  {true, true});
}

TEST_CASE("max and average pooling: forwards against naive windows, and gradients", "[ops][pool][grad]") {
  struct Case { int h, w, kernel, stride, pad; };
  const Case cases[] = {{6, 6, 2, 2, 0}, {7, 5, 3, 2, 1}, {8, 8, 8, 8, 0},  // global 8x8 (ResNet-110)
                        {7, 7, 7, 7, 0},                                    // global 7x7 (ResNet-50)
                        {5, 7, 3, 1, 1}, {9, 9, 2, 2, 0}, {5, 5, 2, 1, 1}};
  for (const Case& cs : cases) {
    INFO("pool " << cs.h << "x" << cs.w << " kernel " << cs.kernel << " stride " << cs.stride << " pad " << cs.pad);
    const ops::Pool2dParams p{cs.kernel, cs.stride, cs.pad};
    // Forwards, once on mixed signs and once all negative (where a zero from padding would win).
    for (auto range : {std::pair<float, float>{-1.0f, 1.0f}, std::pair<float, float>{-2.0f, -1.0f}}) {
      Tensor x = random_tensor({2, 3, cs.h, cs.w}, 19, range.first, range.second);
      std::vector<float> mx, av;
      naive_pools(x, p, mx, av);
      Tensor ymax = ops::max_pool2d(Var(x), p).value(), yavg = ops::avg_pool2d(Var(x), p).value();
      require_close(ymax, Tensor::from_vector(mx, ymax.shape()), 0, 0, "max pool forward");
      require_close(yavg, Tensor::from_vector(av, yavg.shape()), 1e-5, 1e-6, "avg pool forward");
    }
    // Distinct values 0.05 apart: with eps 0.01 no window's maximum changes hands.
    check_gradients([&](const std::vector<Var>& v) { return ops::max_pool2d(v[0], p); },
                    {spaced_tensor({2, 3, cs.h, cs.w}, 17)});
    check_gradients([&](const std::vector<Var>& v) { return ops::avg_pool2d(v[0], p); },
                    {random_tensor({2, 3, cs.h, cs.w}, 18)});
  }
}

TEST_CASE("max pool with tied values: the first maximum of each window takes the gradient", "[ops][pool]") {
  // Small integers: most windows hold several equal maxima. Reference: scan the window row by
  // row and keep the first strictly larger value; dx[that element] += dy (windows overlap here).
  const int h = 7, w = 6;
  std::mt19937 rng(33);
  std::uniform_int_distribution<int> dist(0, 2);
  std::vector<float> xv(size_t(2) * h * w);
  for (float& v : xv) v = float(dist(rng));
  Tensor x = Tensor::from_vector(xv, {1, 2, h, w});
  for (ops::Pool2dParams p : {ops::Pool2dParams{2, 2, 0}, ops::Pool2dParams{3, 1, 1}, ops::Pool2dParams{3, 2, 1}}) {
    INFO("kernel " << p.kernel << " stride " << p.stride << " pad " << p.pad);
    Var xvar(x, true);
    Var y = ops::max_pool2d(xvar, p);
    Tensor dy = random_tensor(y.shape(), 34);
    std::vector<double> wdy = to_doubles(dy);
    backward(weighted_sum(y, wdy));
    const int ph = int(y.shape()[2]), pw = int(y.shape()[3]);
    std::vector<float> want(xv.size(), 0.0f);
    for (int pl = 0; pl < 2; ++pl)
      for (int oh = 0; oh < ph; ++oh)
        for (int ow = 0; ow < pw; ++ow) {
          int at = -1;
          for (int kh = 0; kh < p.kernel; ++kh)
            for (int kw = 0; kw < p.kernel; ++kw) {
              const int ih = oh * p.stride - p.pad + kh, iw = ow * p.stride - p.pad + kw;
              if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue;
              if (at < 0 || xv[size_t(pl * h * w + ih * w + iw)] > xv[size_t(pl * h * w + at)]) at = ih * w + iw;
            }
          want[size_t(pl * h * w + at)] += float(wdy[size_t((pl * ph + oh) * pw + ow)]);
        }
    require_close(xvar.grad(), Tensor::from_vector(want, x.shape()), 1e-6, 1e-6, "dx");
  }
}

// ---- linear and cross-entropy ---------------------------------------------------------------

TEST_CASE("linear: forward against a loop, gradients with and without bias", "[ops][linear][grad]") {
  for (bool bias : {true, false}) {
    INFO((bias ? "with bias" : "without bias"));
    Tensor x = random_tensor({5, 7}, 20), w = random_tensor({3, 7}, 21), b = random_tensor({3}, 22);
    Tensor y = ops::linear(Var(x), Var(w), bias ? Var(b) : Var()).value();
    std::vector<float> want(15);
    for (int r = 0; r < 5; ++r)
      for (int o = 0; o < 3; ++o) {
        double acc = bias ? b.data()[o] : 0.0;  // y = x W^T + b
        for (int i = 0; i < 7; ++i) acc += double(x.data()[r * 7 + i]) * w.data()[o * 7 + i];
        want[size_t(r * 3 + o)] = float(acc);
      }
    require_close(y, Tensor::from_vector(want, {5, 3}), 1e-5, 1e-6, "linear forward");
    check_gradients([&](const std::vector<Var>& v) { return ops::linear(v[0], v[1], bias ? v[2] : Var()); },
                    {x, w, b}, {true, true, bias});
  }
}

TEST_CASE("cross-entropy: forward in double, gradients plain and grouped over k copies", "[ops][ce][grad]") {
  const int classes = 5;
  Tensor labels = Tensor::from_ints({2, 0, 4}, {3});
  for (int group : {1, 4}) {
    INFO("group " << group);
    const int rows = 3 * group;
    Tensor z = random_tensor({rows, classes}, 24, -3.0f, 3.0f);
    double want = 0;  // mean over rows of logsumexp(z_r) - z_r[label of r / group]
    for (int r = 0; r < rows; ++r) {
      double s = 0;
      for (int c = 0; c < classes; ++c) s += std::exp(double(z.data()[r * classes + c]));
      want += std::log(s) - z.data()[r * classes + labels.data<int32_t>()[r / group]];
    }
    CHECK(ops::cross_entropy(Var(z), labels, group).value().item() == Approx(want / rows).epsilon(1e-6));
    check_gradients([&](const std::vector<Var>& v) { return ops::cross_entropy(v[0], labels, group); }, {z});
  }
  // The backward kernel against its formula, with an incoming gradient dloss that is not 1:
  // dz[r,c] = dloss / rows * (softmax(z_r)[c] - [c == label of r / group]).
  const kernels::CrossEntropyShape shape{6, classes, 2};
  Tensor z = random_tensor({6, classes}, 25, -3.0f, 3.0f), dloss = Tensor::full({1}, 2.5f);
  Tensor dz = Tensor::zeros({6, classes});
  kernels::cpu::cross_entropy_backward(shape, z.data(), labels.data<int32_t>(), dloss.data(), dz.data());
  std::vector<float> want(size_t(6 * classes));
  for (int r = 0; r < 6; ++r) {
    double total = 0;
    for (int c = 0; c < classes; ++c) total += std::exp(double(z.data()[r * classes + c]));
    for (int c = 0; c < classes; ++c)
      want[size_t(r * classes + c)] = float(2.5 / 6 * (std::exp(double(z.data()[r * classes + c])) / total -
                                                       (c == labels.data<int32_t>()[r / 2] ? 1.0 : 0.0)));
  }
  require_close(dz, Tensor::from_vector(want, {6, classes}), 1e-5, 1e-7, "cross-entropy backward");
  // Stable for large logits: 1000 and 0 give loss 1000 for the wrong label, 0 for the right one.
  Tensor big = Tensor::from_vector({1000.0f, 0.0f, 0.0f, 1000.0f}, {2, 2});
  CHECK(ops::cross_entropy(Var(big), Tensor::from_ints({1, 1}, {2})).value().item() == Approx(500.0f));
  Var bz(big, true);
  backward(ops::cross_entropy(bz, Tensor::from_ints({0, 1}, {2})));
  for (float g : bz.grad().to_vector()) CHECK(std::fabs(g) < 1e-6f);
}

// ---- a network end to end -----------------------------------------------------------------

TEST_CASE("a small network's gradients end to end (conv, bn, relu, pools, linear, ce)", "[ops][grad]") {
  Tensor rm = Tensor::zeros({4}), rv = Tensor::full({4}, 1.0f);
  Tensor labels = Tensor::from_ints({1, 2}, {2});
  auto net = [&](const std::vector<Var>& v) {
    Var h = ops::conv2d(v[0], v[1], Var(), {1, 1});
    h = ops::relu(ops::batch_norm(h, v[2], v[3], rm, rv, {}));
    h = ops::avg_pool2d(ops::max_pool2d(h, {2, 2, 0}), {3, 3, 0});
    return ops::cross_entropy(ops::linear(ops::flatten(h), v[4], v[5]), labels);
  };
  // Random inputs can land near a relu or max-pool kink: a small step and a looser tolerance.
  check_gradients(net,
                  {random_tensor({2, 2, 6, 6}, 25), random_tensor({4, 2, 3, 3}, 26), random_tensor({4}, 27, 0.5f, 1.5f),
                   random_tensor({4}, 28), random_tensor({3, 4}, 29), random_tensor({3}, 30)},
                  {}, GradCheckOptions{1e-3, 5e-2, 2e-3});
}

// ---- SGD ----------------------------------------------------------------------------------

TEST_CASE("fused SGD equals torch.optim.SGD step by step", "[ops][sgd]") {
  for (bool nesterov : {false, true})
    for (float wd : {0.0f, 5e-4f, 0.1f})
      for (float momentum : {0.0f, 0.9f}) {
        if (nesterov && momentum == 0.0f) continue;  // PyTorch refuses nesterov without momentum
        INFO("nesterov " << nesterov << ", weight decay " << wd << ", momentum " << momentum);
        const kernels::SgdParams p{0.1f, momentum, wd, nesterov};
        const int n = 9;
        Tensor param = random_tensor({n}, 31), buf = Tensor::zeros({n});
        std::vector<double> ref(param.data(), param.data() + n), ref_buf(n, 0.0);
        for (int step = 0; step < 5; ++step) {
          Tensor grad = random_tensor({n}, 40 + step);
          kernels::cpu::sgd_step(p, n, param.data(), grad.data(), buf.data());
          // torch.optim.SGD (dampening 0): d = g + wd p; buf = d at the first step, then
          // buf = m buf + d; d = nesterov ? d + m buf : buf (no buffer when m = 0); p -= lr d.
          for (int i = 0; i < n; ++i) {
            double d = grad.data()[i] + double(wd) * ref[size_t(i)];
            if (momentum != 0.0f) {
              ref_buf[size_t(i)] = step == 0 ? d : momentum * ref_buf[size_t(i)] + d;
              d = nesterov ? d + momentum * ref_buf[size_t(i)] : ref_buf[size_t(i)];
            }
            ref[size_t(i)] -= 0.1 * d;
          }
        }
        require_close(param, Tensor::from_vector(std::vector<float>(ref.begin(), ref.end()), {n}), 1e-5, 1e-6,
                      "parameters after 5 steps");
      }
}

// ---- the contract of the backward kernels, and the harness itself -------------------------

TEST_CASE("backward kernels accumulate: a second call adds the same gradient again", "[ops][kernels]") {
  // Each backward runs once into zeros (g) and once more into the same buffer: the result must be 2g.
  auto twice = [](const char* name, int64_t n, const std::function<void(float*)>& backward_into) {
    INFO(name);
    std::vector<float> g(size_t(n), 0.0f);
    backward_into(g.data());
    std::vector<float> gg = g;
    backward_into(gg.data());
    double norm = 0;
    for (float v : g) norm += std::fabs(v);
    CHECK(norm > 0);  // a kernel that writes nothing cannot pass
    std::vector<float> want(g.size());
    for (size_t i = 0; i < g.size(); ++i) want[i] = 2 * g[i];
    require_close(Tensor::from_vector(gg, {n}), Tensor::from_vector(want, {n}), 1e-6, 1e-7, name);
  };
  namespace k = kernels::cpu;
  Tensor x = spaced_tensor({2, 3, 6, 6}, 60), dy = random_tensor({2, 3, 6, 6}, 61);
  twice("relu_backward", x.numel(), [&](float* dx) {
    Tensor y = ops::relu(Var(x)).value();
    k::relu_backward(x.numel(), y.data(), dy.data(), dx);
  });
  const kernels::Pool2dShape ps{2, 3, 6, 6, 2, 2, 0};
  Tensor dyp = random_tensor({2, 3, 3, 3}, 62), argmax = Tensor::empty({2, 3, 3, 3}, Device::CPU, DType::I32);
  Tensor yp = Tensor::empty({2, 3, 3, 3});
  k::maxpool_forward(ps, x.data(), yp.data(), argmax.data<int32_t>());
  twice("maxpool_backward", x.numel(), [&](float* dx) { k::maxpool_backward(ps, dyp.data(), argmax.data<int32_t>(), dx); });
  twice("avgpool_backward", x.numel(), [&](float* dx) { k::avgpool_backward(ps, dyp.data(), dx); });
  const kernels::LinearShape ls{4, 5, 3};
  Tensor lx = random_tensor({4, 5}, 63), lw = random_tensor({3, 5}, 64), ldy = random_tensor({4, 3}, 65);
  twice("linear_backward_data", 20, [&](float* dx) { k::linear_backward_data(ls, ldy.data(), lw.data(), dx); });
  twice("linear_backward_weight", 15, [&](float* dw) { k::linear_backward_weight(ls, lx.data(), ldy.data(), dw); });
  twice("linear_backward_bias", 3, [&](float* db) { k::linear_backward_bias(ls, ldy.data(), db); });
  const kernels::BatchNormShape bs{2, 3, 36};
  Tensor gamma = random_tensor({3}, 66, 0.5f, 1.5f), beta = random_tensor({3}, 67), rm = Tensor::zeros({3}),
         rv = Tensor::full({3}, 1.0f), by = Tensor::empty({2, 3, 6, 6}), sm = Tensor::empty({3}),
         si = Tensor::empty({3});
  Tensor bx = random_tensor({2, 3, 6, 6}, 68);
  k::batchnorm_forward_train(bs, bx.data(), gamma.data(), beta.data(), rm.data(), rv.data(), by.data(), sm.data(),
                             si.data());
  twice("batchnorm_backward dx", bx.numel(), [&](float* dx) {
    std::vector<float> dg(3), db(3);
    k::batchnorm_backward(bs, dy.data(), bx.data(), gamma.data(), sm.data(), si.data(), dx, dg.data(), db.data());
  });
  twice("batchnorm_backward dgamma", 3, [&](float* dg) {
    std::vector<float> dx(size_t(bx.numel())), db(3);
    k::batchnorm_backward(bs, dy.data(), bx.data(), gamma.data(), sm.data(), si.data(), dx.data(), dg, db.data());
  });
  twice("batchnorm_backward dbeta", 3, [&](float* db) {
    std::vector<float> dx(size_t(bx.numel())), dg(3);
    k::batchnorm_backward(bs, dy.data(), bx.data(), gamma.data(), sm.data(), si.data(), dx.data(), dg.data(), db);
  });
  const kernels::CrossEntropyShape cs{6, 4, 2};
  Tensor z = random_tensor({6, 4}, 69), labels = Tensor::from_ints({3, 0, 1}, {3}), dloss = Tensor::full({1}, 0.7f);
  twice("cross_entropy_backward", 24,
        [&](float* dz) { k::cross_entropy_backward(cs, z.data(), labels.data<int32_t>(), dloss.data(), dz); });
  // The small elementwise helpers.
  std::vector<float> a = {1, -2, 3}, b = {0.5f, 0.5f, 0.5f};
  k::accumulate(3, a.data(), b.data());
  k::scale(3, 2.0f, b.data());
  CHECK(b == std::vector<float>{3, -3, 7});
  k::fill(3, -1.5f, b.data());
  CHECK(b == std::vector<float>{-1.5f, -1.5f, -1.5f});
}

TEST_CASE("backward kernels with overwrite write what accumulating onto zeros gives", "[ops][kernels]") {
  namespace k = kernels::cpu;
  for (const bool last : {false, true})
    for (const bool relu : {false, true}) {
      INFO("channels-last " << last << ", relu " << relu);
      kernels::BatchNormShape s{3, 16, 25, 1e-5f, 0.1f, relu};
      s.channels_last = last;
      Tensor x = random_tensor({3, 16, 5, 5}, 80), dy = random_tensor({3, 16, 5, 5}, 81);
      Tensor gamma = random_tensor({16}, 82, 0.5f, 1.5f), beta = random_tensor({16}, 83);
      Tensor rm = Tensor::zeros({16}), rv = Tensor::full({16}, 1.0f), y = Tensor::empty(x.shape());
      Tensor mean = Tensor::empty({16}), invstd = Tensor::empty({16});
      k::batchnorm_forward_train(s, x.data(), gamma.data(), beta.data(), rm.data(), rv.data(), y.data(), mean.data(),
                                 invstd.data());
      auto backward = [&](const kernels::BatchNormShape& sh, Tensor dx) {
        std::vector<float> dg(16), db(16);
        if (relu)
          k::batchnorm_relu_backward(sh, dy.data(), y.data(), x.data(), gamma.data(), mean.data(), invstd.data(),
                                     dx.data(), dg.data(), db.data());
        else
          k::batchnorm_backward(sh, dy.data(), x.data(), gamma.data(), mean.data(), invstd.data(), dx.data(), dg.data(),
                                db.data());
        return dx;
      };
      kernels::BatchNormShape o = s;
      o.dx_overwrite = true;
      require_close(backward(o, Tensor::full(x.shape(), NAN)), backward(s, Tensor::zeros(x.shape())), 0, 0,
                    "batch norm dx");
    }
  // add_relu: da written, db added, element by element, so one buffer for both gets 2g
  Tensor y = random_tensor({40}, 84), dy = random_tensor({40}, 85);
  Tensor want = Tensor::zeros({40});
  k::add_relu_backward(40, y.data(), dy.data(), want.data(), want.data());
  Tensor got = Tensor::full({40}, NAN), got_b = Tensor::full({40}, NAN), zeros_a = Tensor::zeros({40});
  k::add_relu_backward(40, y.data(), dy.data(), got.data(), got.data(), true, false);
  require_close(got, want, 0, 0, "add_relu, one buffer for a and b");
  Tensor want_b = Tensor::zeros({40});
  k::add_relu_backward(40, y.data(), dy.data(), nullptr, want_b.data());
  k::add_relu_backward(40, y.data(), dy.data(), nullptr, got_b.data(), false, true);
  require_close(got_b, want_b, 0, 0, "add_relu, db written");
  // relu: written over NaN equals added onto zeros
  Tensor relu_want = Tensor::zeros({40}), relu_got = Tensor::full({40}, NAN);
  k::relu_backward(40, y.data(), dy.data(), relu_want.data());
  k::relu_backward(40, y.data(), dy.data(), relu_got.data(), true);
  require_close(relu_got, relu_want, 0, 0, "relu dx written");
  // max pool: a 2x2 window over an odd plane (its last row and column get no gradient) and an
  // overlapping 3x3/2 window (two outputs may share an input): the plane's zeros are written too
  for (const kernels::Pool2dShape& ps :
       {kernels::Pool2dShape{2, 3, 7, 5, 2, 2, 0}, kernels::Pool2dShape{2, 3, 7, 7, 3, 2, 1}}) {
    INFO("max pool " << ps.kernel << "/" << ps.stride);
    Tensor px = random_tensor({2, 3, ps.h, ps.w}, 86), pdy = random_tensor({2, 3, ps.out_h(), ps.out_w()}, 87);
    Tensor py = Tensor::empty(pdy.shape()), at = Tensor::empty(pdy.shape(), Device::CPU, DType::I32);
    k::maxpool_forward(ps, px.data(), py.data(), at.data<int32_t>());
    Tensor pool_want = Tensor::zeros(px.shape()), pool_got = Tensor::full(px.shape(), NAN);
    k::maxpool_backward(ps, pdy.data(), at.data<int32_t>(), pool_want.data());
    k::maxpool_backward(ps, pdy.data(), at.data<int32_t>(), pool_got.data(), true);
    require_close(pool_got, pool_want, 0, 0, "max pool dx written");
  }
}

TEST_CASE("relu and max pool write the first gradient to reach their input and add the next", "[ops][grad]") {
  // x feeds two relus (or pools): the first backward writes x's gradient, the second adds to it
  Tensor x = random_tensor({2, 3, 6, 6}, 88);
  check_gradients([](const std::vector<Var>& v) { return ops::add(ops::relu(v[0]), ops::relu(v[0])); }, {x});
  check_gradients(
      [](const std::vector<Var>& v) {
        return ops::add(ops::max_pool2d(v[0], {2, 2, 0}), ops::relu(ops::max_pool2d(v[0], {2, 2, 0})));
      },
      {x});
}

TEST_CASE("the harness can fail: a wrong backward and a wrong value are caught", "[ops][grad]") {
  // relu whose backward forgets the mask: the five negative inputs must be flagged.
  auto wrong_relu = [](const std::vector<Var>& v) {
    Var x = v[0];
    Var out(ops::relu(Var(x.value())).value(), x.requires_grad());
    if (x.requires_grad())
      record([=]() { kernels::cpu::accumulate(x.value().numel(), out.grad().data(), x.grad_buffer().data()); });
    return out;
  };
  GradCheckResult bad = gradient_check(wrong_relu, {spaced_tensor({10}, 50)});
  CHECK(bad.checked == 10);
  CHECK(bad.failed == 5);
  // A gradient off by 1% on every element is beyond rtol 2e-3.
  auto scaled = [](const std::vector<Var>& v) {
    Var x = v[0];
    Var out(x.value().clone(), x.requires_grad());
    if (x.requires_grad())
      record([=]() {
        for (int64_t i = 0; i < x.value().numel(); ++i) x.grad_buffer().data()[i] += 1.01f * out.grad().data()[i];
      });
    return out;
  };
  CHECK(gradient_check(scaled, {random_tensor({8}, 51)}, {}, GradCheckOptions{1e-2, 2e-3, 1e-4}).failed == 8);
  CHECK(gradient_check([](const std::vector<Var>& v) { return ops::relu(v[0]); }, {spaced_tensor({10}, 50)}).failed ==
        0);
  // compare_tensors: one element off, and a NaN, are found and located.
  Tensor t = random_tensor({4, 5}, 52), u = t.clone();
  u.data()[7] += 1e-3f;
  Closeness c = compare_tensors(u, t, 1e-4, 1e-5);
  CHECK(c.bad == 1);
  CHECK(c.worst == 7);
  u.data()[3] = NAN;
  CHECK(compare_tensors(u, t, 1.0, 1.0).bad == 1);
  CHECK(compare_tensors(t, t.view({5, 4}), 0, 0).bad > 0);  // shapes differ
}
