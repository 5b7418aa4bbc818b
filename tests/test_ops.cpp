// Gradient checks of every network op (engine/ops.h on the CPU) against central differences,
// on small random shapes with odd sizes, stride 2 and padding; forwards against naive loops.
#include <catch2/catch.hpp>

#include "engine/ops.h"
#include "kernels/batchnorm.h"
#include "kernels/sgd.h"
#include "op_check.h"

using namespace macer;
using namespace macer::testing;

namespace {

// Direct convolution in double: the forward's reference.
std::vector<double> naive_conv(const Tensor& x, const Tensor& w, const Tensor* b, int stride, int pad) {
  int n = int(x.dim(0)), c = int(x.dim(1)), h = int(x.dim(2)), wd = int(x.dim(3));
  int k = int(w.dim(0)), r = int(w.dim(2)), s = int(w.dim(3));
  int p = (h + 2 * pad - r) / stride + 1, q = (wd + 2 * pad - s) / stride + 1;
  std::vector<double> y(size_t(n) * k * p * q);
  for (int in = 0; in < n; ++in)
    for (int ik = 0; ik < k; ++ik)
      for (int ip = 0; ip < p; ++ip)
        for (int iq = 0; iq < q; ++iq) {
          double acc = b ? b->data()[ik] : 0.0;
          for (int ic = 0; ic < c; ++ic)
            for (int ir = 0; ir < r; ++ir)
              for (int is = 0; is < s; ++is) {
                int ih = ip * stride - pad + ir, iw = iq * stride - pad + is;
                if (ih < 0 || ih >= h || iw < 0 || iw >= wd) continue;
                acc += double(x.data()[((int64_t(in) * c + ic) * h + ih) * wd + iw]) *
                       w.data()[((int64_t(ik) * c + ic) * r + ir) * s + is];
              }
          y[((size_t(in) * k + ik) * p + ip) * q + iq] = acc;
        }
  return y;
}

}  // namespace

TEST_CASE("conv2d forward equals a direct loop", "[ops][conv]") {
  struct Case { int n, c, h, w, k, r, stride, pad; bool bias; };
  for (Case cs : {Case{2, 3, 7, 5, 4, 3, 1, 1, true}, Case{1, 2, 9, 9, 3, 3, 2, 1, false},
                  Case{3, 4, 6, 7, 5, 1, 2, 0, false}, Case{2, 1, 8, 8, 2, 5, 1, 2, true}}) {
    Tensor x = random_tensor({cs.n, cs.c, cs.h, cs.w}, 1), w = random_tensor({cs.k, cs.c, cs.r, cs.r}, 2);
    Tensor b = random_tensor({cs.k}, 3);
    Var y = ops::conv2d(Var(x), Var(w), cs.bias ? Var(b) : Var(), {cs.stride, cs.pad});
    auto ref = naive_conv(x, w, cs.bias ? &b : nullptr, cs.stride, cs.pad);
    REQUIRE(size_t(y.value().numel()) == ref.size());
    std::vector<float> refs(ref.begin(), ref.end());
    require_close(y.value(), Tensor::from_vector(refs, y.shape()), 1e-4, 1e-5, "conv forward");
  }
}

TEST_CASE("conv2d gradients: input, weight and bias, stride 1/2, padding 0/1/2, odd sizes", "[ops][conv][grad]") {
  struct Case { int n, c, h, w, k, r, stride, pad; bool bias; };
  for (Case cs : {Case{2, 3, 5, 7, 4, 3, 1, 1, true}, Case{1, 2, 9, 8, 3, 3, 2, 1, false},
                  Case{2, 3, 7, 7, 2, 1, 2, 0, true}, Case{1, 2, 6, 5, 3, 5, 1, 2, true}}) {
    INFO("case n" << cs.n << " c" << cs.c << " " << cs.h << "x" << cs.w << " k" << cs.k << " r" << cs.r
                  << " stride " << cs.stride << " pad " << cs.pad);
    std::vector<Tensor> in = {random_tensor({cs.n, cs.c, cs.h, cs.w}, 4), random_tensor({cs.k, cs.c, cs.r, cs.r}, 5),
                              random_tensor({cs.k}, 6)};
    check_gradients(
        [&](const std::vector<Var>& v) { return ops::conv2d(v[0], v[1], cs.bias ? v[2] : Var(), {cs.stride, cs.pad}); },
        in, {true, true, cs.bias});
  }
}

TEST_CASE("batch norm gradients in training mode (4-d and 2-d)", "[ops][bn][grad]") {
  for (Shape shape : {Shape{4, 3, 3, 5}, Shape{6, 4}}) {
    int64_t c = shape[1];
    Tensor rm = Tensor::zeros({c}), rv = Tensor::full({c}, 1.0f);
    std::vector<Tensor> in = {random_tensor(shape, 7), random_tensor({c}, 8, 0.5f, 1.5f), random_tensor({c}, 9)};
    // The normalisation divides by a batch standard deviation: smaller steps keep it linear.
    check_gradients([&](const std::vector<Var>& v) { return ops::batch_norm(v[0], v[1], v[2], rm, rv, {}); }, in,
                    {true, true, true}, GradCheck{1e-3, 3e-2, 3e-3});
  }
}

TEST_CASE("batch norm statistics follow PyTorch's definition", "[ops][bn]") {
  const int n = 5, c = 3, h = 2, w = 3;
  Tensor rm = Tensor::zeros({c}), rv = Tensor::full({c}, 1.0f);
  Var gamma(random_tensor({c}, 10)), beta(random_tensor({c}, 11));
  std::vector<double> exp_mean(c, 0.0), exp_var(c, 1.0);
  for (int step = 0; step < 3; ++step) {
    Tensor x = random_tensor({n, c, h, w}, 20 + step, -2.0f, 3.0f);
    Var y = ops::batch_norm(Var(x), gamma, beta, rm, rv, {true, 0.1f, 1e-5f});
    for (int ic = 0; ic < c; ++ic) {
      std::vector<double> vals;
      for (int in = 0; in < n; ++in)
        for (int i = 0; i < h * w; ++i) vals.push_back(x.data()[(in * c + ic) * h * w + i]);
      double mean = 0, var = 0;
      for (double v : vals) mean += v;
      mean /= vals.size();
      for (double v : vals) var += (v - mean) * (v - mean);
      double biased = var / vals.size(), unbiased = var / (vals.size() - 1);
      exp_mean[ic] = 0.9 * exp_mean[ic] + 0.1 * mean;      // running_mean, momentum 0.1
      exp_var[ic] = 0.9 * exp_var[ic] + 0.1 * unbiased;    // running_var uses the unbiased variance
      // y = (x - mean) / sqrt(biased + eps) * gamma + beta
      for (int in = 0; in < n; ++in) {
        int64_t at = (int64_t(in) * c + ic) * h * w;
        double expect = (x.data()[at] - mean) / std::sqrt(biased + 1e-5) * gamma.value().data()[ic] +
                        beta.value().data()[ic];
        CHECK(y.value().data()[at] == Approx(expect).epsilon(1e-4).margin(1e-5));
      }
    }
  }
  for (int ic = 0; ic < c; ++ic) {
    CHECK(rm.data()[ic] == Approx(exp_mean[ic]).epsilon(1e-5));
    CHECK(rv.data()[ic] == Approx(exp_var[ic]).epsilon(1e-5));
  }
  // Eval mode normalises with the running statistics and leaves them alone.
  Tensor x = random_tensor({2, c, h, w}, 30);
  Var y = ops::batch_norm(Var(x), gamma, beta, rm, rv, {false, 0.1f, 1e-5f});
  for (int ic = 0; ic < c; ++ic) {
    double expect = (x.data()[ic * h * w] - exp_mean[ic]) / std::sqrt(exp_var[ic] + 1e-5) * gamma.value().data()[ic] +
                    beta.value().data()[ic];
    CHECK(y.value().data()[ic * h * w] == Approx(expect).epsilon(1e-4).margin(1e-5));
    CHECK(rm.data()[ic] == Approx(exp_mean[ic]).epsilon(1e-5));
  }
}

TEST_CASE("relu, add and flatten gradients", "[ops][grad]") {
  check_gradients([](const std::vector<Var>& v) { return ops::relu(v[0]); }, {spaced_tensor({2, 3, 4, 5}, 12)},
                  {true});
  check_gradients([](const std::vector<Var>& v) { return ops::add(v[0], v[1]); },
                  {random_tensor({3, 2, 5}, 13), random_tensor({3, 2, 5}, 14)}, {true, true});
  // A Var used twice (the residual) gets both contributions.
  check_gradients([](const std::vector<Var>& v) { return ops::add(ops::relu(v[0]), v[0]); },
                  {spaced_tensor({2, 7}, 15)}, {true});
  check_gradients([](const std::vector<Var>& v) { return ops::flatten(v[0]); }, {random_tensor({3, 2, 3, 3}, 16)},
                  {true});
}

TEST_CASE("max and average pooling: forward and gradients", "[ops][pool][grad]") {
  struct Case { int h, w, kernel, stride, pad; };
  for (Case cs : {Case{6, 6, 2, 2, 0}, Case{7, 5, 3, 2, 1}, Case{8, 8, 8, 8, 0}, Case{7, 7, 7, 7, 0},
                  Case{5, 7, 3, 1, 1}}) {
    INFO("pool " << cs.h << "x" << cs.w << " kernel " << cs.kernel << " stride " << cs.stride << " pad " << cs.pad);
    ops::Pool2dParams p{cs.kernel, cs.stride, cs.pad};
    check_gradients([&](const std::vector<Var>& v) { return ops::max_pool2d(v[0], p); },
                    {spaced_tensor({2, 3, cs.h, cs.w}, 17)}, {true});
    check_gradients([&](const std::vector<Var>& v) { return ops::avg_pool2d(v[0], p); },
                    {random_tensor({2, 3, cs.h, cs.w}, 18)}, {true});
    // Forwards against naive windows.
    Tensor x = random_tensor({1, 2, cs.h, cs.w}, 19);
    Tensor mx = ops::max_pool2d(Var(x), p).value(), av = ops::avg_pool2d(Var(x), p).value();
    int ph = int(mx.dim(2)), pw = int(mx.dim(3));
    for (int ch = 0; ch < 2; ++ch)
      for (int oh = 0; oh < ph; ++oh)
        for (int ow = 0; ow < pw; ++ow) {
          double best = -1e30, sum = 0;
          for (int kh = 0; kh < cs.kernel; ++kh)
            for (int kw = 0; kw < cs.kernel; ++kw) {
              int ih = oh * cs.stride - cs.pad + kh, iw = ow * cs.stride - cs.pad + kw;
              if (ih < 0 || ih >= cs.h || iw < 0 || iw >= cs.w) continue;
              double v = x.data()[(ch * cs.h + ih) * cs.w + iw];
              best = std::max(best, v);
              sum += v;
            }
          int64_t o = (ch * ph + oh) * pw + ow;
          CHECK(mx.data()[o] == Approx(best));
          CHECK(av.data()[o] == Approx(sum / (cs.kernel * cs.kernel)).margin(1e-6));
        }
  }
}

TEST_CASE("linear gradients with and without bias", "[ops][linear][grad]") {
  for (bool bias : {true, false}) {
    check_gradients(
        [&](const std::vector<Var>& v) { return ops::linear(v[0], v[1], bias ? v[2] : Var()); },
        {random_tensor({5, 7}, 20), random_tensor({3, 7}, 21), random_tensor({3}, 22)}, {true, true, bias});
  }
}

TEST_CASE("cross-entropy gradients, plain and grouped over k copies", "[ops][ce][grad]") {
  for (int group : {1, 4}) {
    Tensor labels = Tensor::from_ints({2, 0, 4}, {3});
    check_gradients([&](const std::vector<Var>& v) { return ops::cross_entropy(v[0], labels, group); },
                    {random_tensor({3 * group, 5}, 23, -3.0f, 3.0f)}, {true}, GradCheck{1e-2, 2e-2, 1e-3});
    // Forward: mean of -log softmax at the label of row r / group, in double.
    Tensor z = random_tensor({3 * group, 5}, 24, -3.0f, 3.0f);
    double expect = 0;
    for (int r = 0; r < 3 * group; ++r) {
      double m = -1e30, s = 0;
      for (int c = 0; c < 5; ++c) m = std::max(m, double(z.data()[r * 5 + c]));
      for (int c = 0; c < 5; ++c) s += std::exp(z.data()[r * 5 + c] - m);
      expect += m + std::log(s) - z.data()[r * 5 + labels.data<int32_t>()[r / group]];
    }
    CHECK(ops::cross_entropy(Var(z), labels, group).value().item() == Approx(expect / (3 * group)).epsilon(1e-5));
  }
}

TEST_CASE("a small network's gradients end to end (conv, bn, relu, pools, linear, ce)", "[ops][grad]") {
  Tensor rm = Tensor::zeros({4}), rv = Tensor::full({4}, 1.0f);
  Tensor labels = Tensor::from_ints({1, 2}, {2});
  auto net = [&](const std::vector<Var>& v) {
    Var h = ops::conv2d(v[0], v[1], Var(), {1, 1});
    h = ops::relu(ops::batch_norm(h, v[2], v[3], rm, rv, {}));
    h = ops::avg_pool2d(ops::max_pool2d(h, {2, 2, 0}), {3, 3, 0});
    return ops::cross_entropy(ops::linear(ops::flatten(h), v[4], v[5]), labels);
  };
  check_gradients(net,
                  {random_tensor({2, 2, 6, 6}, 25), random_tensor({4, 2, 3, 3}, 26), random_tensor({4}, 27, 0.5f, 1.5f),
                   random_tensor({4}, 28), random_tensor({3, 4}, 29), random_tensor({3}, 30)},
                  {true, true, true, true, true, true}, GradCheck{1e-3, 5e-2, 2e-3});
}

TEST_CASE("fused SGD equals torch.optim.SGD step by step", "[ops][sgd]") {
  for (bool nesterov : {false, true}) {
    kernels::SgdParams p{0.1f, 0.9f, 5e-4f, nesterov};
    const int n = 7;
    Tensor param = random_tensor({n}, 31), mom = Tensor::zeros({n});
    std::vector<double> ref(param.data(), param.data() + n), buf(n, 0.0);
    for (int step = 0; step < 4; ++step) {
      Tensor grad = random_tensor({n}, 40 + step);
      kernels::cpu::sgd_step(p, n, param.data(), grad.data(), mom.data());
      for (int i = 0; i < n; ++i) {  // PyTorch: d = g + wd p; buf = d on step 0, else m buf + d
        double d = grad.data()[i] + 5e-4 * ref[i];
        buf[i] = step == 0 ? d : 0.9 * buf[i] + d;
        double upd = nesterov ? d + 0.9 * buf[i] : buf[i];
        ref[i] -= 0.1 * upd;
      }
    }
    for (int i = 0; i < n; ++i) CHECK(param.data()[i] == Approx(ref[i]).epsilon(1e-5));
  }
}

TEST_CASE("the gradient check can fail: a wrong backward is caught", "[ops][grad]") {
  // relu whose backward forgets the mask: the harness must flag the negative inputs.
  auto wrong_relu = [](const std::vector<Var>& v) {
    Var out(ops::relu(Var(v[0].value())).value(), v[0].requires_grad());
    Var x = v[0];
    if (x.requires_grad())
      record([=]() { kernels::cpu::accumulate(x.value().numel(), out.grad().data(), x.grad_buffer().data()); });
    return out;
  };
  auto bad = gradient_mismatches(wrong_relu, {spaced_tensor({10}, 50)}, {true});
  CHECK(bad.size() == 5);  // the five negative inputs
  auto good = gradient_mismatches([](const std::vector<Var>& v) { return ops::relu(v[0]); },
                                  {spaced_tensor({10}, 50)}, {true});
  CHECK(good.empty());
}
