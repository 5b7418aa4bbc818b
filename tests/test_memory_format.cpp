// Tests of channels-last activations (Tensor's MemoryFormat, kernels/memory_format.h, the
// channels-last forms of the convolution and batch-norm kernels, and the ops that keep or reorder
// them): each against the (N,C,H,W) computation on random inputs, and gradients by finite differences.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "engine/ops.h"
#include "engine/precision.h"
#include "gradcheck.h"
#include "kernels/batchnorm.h"
#include "kernels/conv2d.h"
#include "kernels/memory_format.h"

using namespace macer;
using namespace macer::testing;

namespace {

constexpr MemoryFormat kLast = MemoryFormat::ChannelsLast;

// A copy of t, channels-last when `last`.
Tensor in_format(const Tensor& t, bool last) { return last ? t.to_memory_format(kLast) : t.clone(); }

}  // namespace

TEST_CASE("reorders between (N,C,H,W) and (N,H,W,C) move every element to its place", "[format]") {
  // n = 1 takes the split within one image, n = 5 the split over images; odd sizes cross tiles.
  for (const Shape& s : {Shape{1, 19, 5, 7}, Shape{5, 16, 8, 8}, Shape{3, 3, 17, 18}}) {
    INFO(shape_string(s));
    const int64_t n = s[0], c = s[1], hw = s[2] * s[3];
    Tensor x = random_tensor(s, 1);
    std::vector<float> last(size_t(x.numel()));
    kernels::cpu::to_channels_last(n, c, hw, x.data(), last.data());
    const float* xp = x.data();
    int64_t wrong = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t p = 0; p < hw; ++p) wrong += last[size_t((i * hw + p) * c + ch)] != xp[(i * c + ch) * hw + p];
    CHECK(wrong == 0);
    // back, and accumulating: dst += reordered src
    std::vector<float> back(size_t(x.numel()), 0.5f);
    kernels::cpu::to_contiguous(n, c, hw, last.data(), back.data(), true);
    wrong = 0;
    for (int64_t i = 0; i < x.numel(); ++i) wrong += back[size_t(i)] != xp[i] + 0.5f;
    CHECK(wrong == 0);
  }
}

TEST_CASE("a channels-last tensor reads back in logical order and refuses reinterpretation", "[format]") {
  Tensor x = random_tensor({2, 16, 3, 4}, 2);
  Tensor last = x.to_memory_format(kLast);
  CHECK(last.channels_last());
  CHECK(last.shape() == x.shape());
  CHECK(last.to_vector() == x.to_vector());
  CHECK(last.data()[1] == x.data()[12]);  // (n 0, h 0, w 0, c 1) = x[0][1][0][0]
  CHECK_THROWS_WITH(last.view({2, 192}), Catch::Contains("channels-last"));
  Tensor other = Tensor::empty(x.shape());
  CHECK_THROWS_WITH(other.copy_from(last), Catch::Contains("memory formats"));
  CHECK_THROWS_WITH(Tensor::empty({2, 16}, Device::CPU, DType::F32, kLast), Catch::Contains("4-d"));
  CHECK(Tensor::zeros_like(last).channels_last());
}

TEST_CASE("conv2d kernels in every memory-format combination equal the (N,C,H,W) ones", "[format][conv]") {
  struct Case {
    kernels::Conv2dShape s;
    bool bias;
  };
  const Case cases[] = {
      {{3, 16, 8, 8, 16, 3, 3, 1, 1}, false},   // oneDNN's path
      {{2, 16, 9, 9, 32, 3, 3, 2, 1}, true},    // oneDNN, stride 2, odd size, bias
      {{3, 3, 8, 8, 16, 3, 3, 1, 1}, false},    // the stem
      {{2, 16, 6, 6, 20, 3, 3, 1, 0}, true},    // the unfolding (20 outputs) with reordered copies
  };
  for (const bool reference : {false, true}) {
    kernels::cpu::conv2d_use_reference(reference);
    for (const Case& cs : cases) {
      const kernels::Conv2dShape& s = cs.s;
      const Shape xs{s.n, s.c, s.h, s.w}, ws{s.k, s.c, s.r, s.s}, ys{s.n, s.k, s.out_h(), s.out_w()};
      Tensor x = random_tensor(xs, 3), w = random_tensor(ws, 4), b = random_tensor({s.k}, 5), dy = random_tensor(ys, 6);
      Tensor dx0 = random_tensor(xs, 7), dw0 = random_tensor(ws, 8), db0 = random_tensor({s.k}, 9);
      const float* bias = cs.bias ? b.data() : nullptr;
      // the (N,C,H,W) results; backwards accumulate onto dx0, dw0, db0
      Tensor y = Tensor::empty(ys), dx = dx0.clone(), dw = dw0.clone(), db = db0.clone();
      kernels::cpu::conv2d_forward(s, x.data(), w.data(), bias, y.data());
      kernels::cpu::conv2d_backward(s, x.data(), dy.data(), w.data(), dx.data(), dw.data(), db.data());
      for (const bool x_last : {false, true})
        for (const bool y_last : {false, true}) {
          if (!x_last && !y_last) continue;
          INFO("reference " << reference << ", shape n" << s.n << " c" << s.c << " k" << s.k << ", x channels-last "
                            << x_last << ", y channels-last " << y_last);
          kernels::Conv2dShape f = s;
          f.x_channels_last = x_last, f.y_channels_last = y_last;
          Tensor fx = in_format(x, x_last), fdy = in_format(dy, y_last);
          Tensor fy = Tensor::full(ys, NAN).to_memory_format(y_last ? kLast : MemoryFormat::Contiguous);
          Tensor fdx = in_format(dx0, x_last), fdw = dw0.clone(), fdb = db0.clone();
          kernels::cpu::conv2d_forward(f, fx.data(), w.data(), bias, fy.data());
          kernels::cpu::conv2d_backward(f, fx.data(), fdy.data(), w.data(), fdx.data(), fdw.data(), fdb.data());
          require_close(fy, y, 1e-5, 1e-5, "forward");
          require_close(fdx, dx, 1e-5, 1e-5, "backward data");
          require_close(fdw, dw, 1e-5, 1e-4, "backward weight");
          require_close(fdb, db, 1e-6, 1e-5, "backward bias");
        }
    }
  }
  kernels::cpu::conv2d_use_reference(false);
}

TEST_CASE("batch-norm kernels on (N,H*W,C) rows equal the (N,C,H*W) ones", "[format][bn]") {
  for (const bool relu : {false, true}) {
    INFO("fused relu " << relu);
    kernels::BatchNormShape s{5, 16, 7 * 9, 1e-5f, 0.1f, relu};
    kernels::BatchNormShape last = s;
    last.channels_last = true;
    const Shape xs{5, 16, 7, 9};
    Tensor x = random_tensor(xs, 10, -2.0f, 3.0f), dy = random_tensor(xs, 11), dx0 = random_tensor(xs, 12);
    Tensor gamma = random_tensor({16}, 13, 0.5f, 1.5f), beta = random_tensor({16}, 14);
    struct Out {
      Tensor y, mean, invstd, rm, rv, dx, dg, db, ey, edx;
    };
    auto run = [&](const kernels::BatchNormShape& sh) {
      const bool cl = sh.channels_last;
      Out o{Tensor::empty(xs).to_memory_format(cl ? kLast : MemoryFormat::Contiguous),
            Tensor::empty({16}),
            Tensor::empty({16}),
            random_tensor({16}, 15),
            random_tensor({16}, 16, 0.5f, 1.5f),
            in_format(dx0, cl),
            random_tensor({16}, 17),
            random_tensor({16}, 18),
            Tensor::empty(xs).to_memory_format(cl ? kLast : MemoryFormat::Contiguous),
            in_format(dx0, cl)};
      Tensor fx = in_format(x, cl), fdy = in_format(dy, cl);
      kernels::cpu::batchnorm_forward_train(sh, fx.data(), gamma.data(), beta.data(), o.rm.data(), o.rv.data(),
                                            o.y.data(), o.mean.data(), o.invstd.data());
      if (relu)
        kernels::cpu::batchnorm_relu_backward(sh, fdy.data(), o.y.data(), fx.data(), gamma.data(), o.mean.data(),
                                              o.invstd.data(), o.dx.data(), o.dg.data(), o.db.data());
      else
        kernels::cpu::batchnorm_backward(sh, fdy.data(), fx.data(), gamma.data(), o.mean.data(), o.invstd.data(),
                                         o.dx.data(), o.dg.data(), o.db.data());
      kernels::cpu::batchnorm_forward_eval(sh, fx.data(), gamma.data(), beta.data(), o.rm.data(), o.rv.data(),
                                           o.ey.data());
      kernels::cpu::batchnorm_backward_eval_data(sh, fdy.data(), o.ey.data(), gamma.data(), o.rv.data(),
                                                 o.edx.data());
      return o;
    };
    const Out a = run(s), b = run(last);
    require_close(b.y, a.y, 1e-5, 1e-5, "training forward");
    require_close(b.mean, a.mean, 1e-5, 1e-6, "saved mean");
    require_close(b.invstd, a.invstd, 1e-5, 1e-6, "saved 1/std");
    require_close(b.rm, a.rm, 1e-5, 1e-6, "running mean");
    require_close(b.rv, a.rv, 1e-5, 1e-6, "running variance");
    require_close(b.dx, a.dx, 1e-4, 1e-5, "training backward dx");
    require_close(b.dg, a.dg, 1e-4, 1e-5, "dgamma");
    require_close(b.db, a.db, 1e-4, 1e-5, "dbeta");
    require_close(b.ey, a.ey, 1e-5, 1e-5, "eval forward");
    require_close(b.edx, a.edx, 1e-5, 1e-5, "eval backward dx");
  }
}

// A residual block as layers/models.cpp builds it, on oneDNN's channel counts, then pooling, a
// linear layer and the cross-entropy.
Var residual_net(const std::vector<Var>& v, Tensor& rm, Tensor& rv, const Tensor& labels) {
  Var h = ops::conv2d(v[0], v[1], Var(), {1, 1});  // stem: 3 -> 16
  h = ops::batch_norm(h, v[2], v[3], rm, rv, {true, 0.1f, 1e-5f, true});
  Var r = ops::conv2d(h, v[4], Var(), {1, 1});
  r = ops::batch_norm(r, v[2], v[3], rm, rv, {});
  h = ops::add_relu(r, h);
  h = ops::avg_pool2d(h, {4, 4, 0});
  return ops::cross_entropy(ops::linear(ops::flatten(h), v[5], Var()), labels);
}

TEST_CASE("ops keep channels-last between convolutions: values and gradients equal (N,C,H,W)'s",
          "[format][ops][grad]") {
  if (!kernels::cpu::conv2d_fast_path_built()) {
    WARN("this build has no oneDNN: every convolution output is (N,C,H,W), channels-last never starts");
    return;
  }
  Tensor labels = Tensor::from_ints({1, 0}, {2});
  const std::vector<Tensor> inputs = {random_tensor({2, 3, 4, 4}, 20), random_tensor({16, 3, 3, 3}, 21, -0.5f, 0.5f),
                                      random_tensor({16}, 22, 0.5f, 1.5f), random_tensor({16}, 23),
                                      random_tensor({16, 16, 3, 3}, 24, -0.3f, 0.3f), random_tensor({3, 16}, 25)};
  auto run = [&](bool last) {
    ChannelsLastGuard guard(last);
    Tensor rm = Tensor::zeros({16}), rv = Tensor::full({16}, 1.0f);
    std::vector<Var> v;
    for (const Tensor& t : inputs) v.emplace_back(t.clone(), true);
    // the block's activations are channels-last exactly when the switch is on
    Var h = ops::conv2d(v[0], v[1], Var(), {1, 1});
    CHECK(h.value().channels_last() == last);
    CHECK(ops::relu(h).value().channels_last() == last);
    Var loss = residual_net(v, rm, rv, labels);
    backward(loss);
    std::vector<Tensor> out = {loss.value(), rm, rv};
    for (const Var& x : v) out.push_back(x.grad());
    return out;
  };
  const auto a = run(false), b = run(true);
  const char* names[] = {"loss", "running mean", "running var", "dx", "dstem", "dgamma", "dbeta", "dconv", "dlinear"};
  for (size_t i = 0; i < a.size(); ++i) require_close(b[i], a[i], 1e-4, 1e-5, names[i]);

  // and the channels-last gradients against finite differences
  ChannelsLastGuard guard(true);
  Tensor rm = Tensor::zeros({16}), rv = Tensor::full({16}, 1.0f);
  check_gradients([&](const std::vector<Var>& v) { return residual_net(v, rm, rv, labels); }, inputs, {},
                  GradCheckOptions{1e-3, 5e-2, 2e-3});
}

TEST_CASE("ops reorder a channels-last operand where they need (N,C,H,W) or a partner's format",
          "[format][ops][grad]") {
  Tensor a = random_tensor({2, 16, 4, 4}, 30), b = random_tensor({2, 16, 4, 4}, 31);
  // add of a channels-last and a contiguous tensor, then flatten: gradients by finite differences
  check_gradients(
      [](const std::vector<Var>& v) {
        Var sum = ops::add(ops::contiguous(v[0], kLast), v[1]);
        CHECK(sum.value().channels_last());
        return ops::flatten(ops::relu(sum));
      },
      {a, b});
  Var x(a.to_memory_format(kLast));
  CHECK(ops::contiguous(x).value().to_vector() == a.to_vector());
  CHECK(!ops::max_pool2d(x, {2, 2, 0}).value().channels_last());
  require_close(ops::avg_pool2d(x, {2, 2, 0}).value(), ops::avg_pool2d(Var(a), {2, 2, 0}).value(), 0, 0, "avg pool");
  CHECK_THROWS_WITH(ops::noisy_copies(a.to_memory_format(kLast), 2, 0.5f, 1, 0), Catch::Contains("channels-last"));
}
