// Tests of 2-d convolution (kernels/cpu/conv2d*.cpp through engine/ops.h and directly): forward and
// all three backward kernels against direct loops in double, the fast path against the reference
// cpu::ref on random inputs, and finite-difference gradients.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/precision.h"
#include "gradcheck.h"
#include "kernels/conv2d.h"

using namespace macer;
using namespace macer::testing;

namespace {

struct ConvCase {
  int n, c, h, w, k, r, s, stride, pad;
  bool bias;
};

std::string describe(const ConvCase& cs) {
  return "x " + std::to_string(cs.n) + "x" + std::to_string(cs.c) + "x" + std::to_string(cs.h) + "x" +
         std::to_string(cs.w) + ", weight " + std::to_string(cs.k) + "x" + std::to_string(cs.c) + "x" +
         std::to_string(cs.r) + "x" + std::to_string(cs.s) + ", stride " + std::to_string(cs.stride) +
         ", pad " + std::to_string(cs.pad) + (cs.bias ? ", bias" : ", no bias");
}

kernels::Conv2dShape shape_of(const ConvCase& cs) {
  return {cs.n, cs.c, cs.h, cs.w, cs.k, cs.r, cs.s, cs.stride, cs.pad};
}

// The direct definition, in double: y[n,k,p,q] = b[k] + sum_{c,r,s} x[n,c,ih,iw] w[k,c,r,s] with
// ih = p*stride - pad + r, iw = q*stride - pad + s (zero outside). The backward references are
// the adjoints of the same sum: dx[n,c,ih,iw] += dy[n,k,p,q] w[k,c,r,s] and
// dw[k,c,r,s] += dy[n,k,p,q] x[n,c,ih,iw], visited term by term.
struct DirectConv {
  kernels::Conv2dShape s;
  template <typename Term> void each_term(Term term) const {
    const int P = s.out_h(), Q = s.out_w();
    for (int n = 0; n < s.n; ++n)
      for (int k = 0; k < s.k; ++k)
        for (int p = 0; p < P; ++p)
          for (int q = 0; q < Q; ++q)
            for (int c = 0; c < s.c; ++c)
              for (int r = 0; r < s.r; ++r)
                for (int t = 0; t < s.s; ++t) {
                  const int ih = p * s.stride - s.pad + r, iw = q * s.stride - s.pad + t;
                  if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;
                  const int64_t xi = ((int64_t(n) * s.c + c) * s.h + ih) * s.w + iw;
                  const int64_t wi = ((int64_t(k) * s.c + c) * s.r + r) * s.s + t;
                  const int64_t yi = ((int64_t(n) * s.k + k) * P + p) * Q + q;
                  term(xi, wi, yi);
                }
  }
  std::vector<double> forward(const float* x, const float* w, const float* b) const {
    std::vector<double> y(size_t(s.n) * s.k * s.out_h() * s.out_w());
    const int64_t pq = int64_t(s.out_h()) * s.out_w();
    for (size_t i = 0; i < y.size(); ++i) y[i] = b ? b[(int64_t(i) / pq) % s.k] : 0.0;
    each_term([&](int64_t xi, int64_t wi, int64_t yi) { y[size_t(yi)] += double(x[xi]) * w[wi]; });
    return y;
  }
};

Tensor as_tensor(const std::vector<double>& v, const Shape& shape) {
  return Tensor::from_vector(std::vector<float>(v.begin(), v.end()), shape);
}

}  // namespace

TEST_CASE("conv2d forward equals the direct sum in double", "[conv]") {
  const ConvCase cases[] = {
      {2, 3, 7, 5, 4, 3, 3, 1, 1, true},   {1, 2, 9, 9, 3, 3, 3, 2, 1, false},
      {3, 4, 6, 7, 5, 1, 1, 2, 0, false},  {2, 1, 8, 8, 2, 5, 5, 1, 2, true},
      {2, 3, 8, 6, 3, 3, 3, 2, 2, true},   {1, 2, 5, 6, 3, 3, 1, 1, 0, true},  // 3x1 kernel
      {1, 1, 28, 28, 4, 5, 5, 1, 0, true},                                    // LeNet's first
  };
  for (const ConvCase& cs : cases) {
    INFO(describe(cs));
    Tensor x = random_tensor({cs.n, cs.c, cs.h, cs.w}, 1), w = random_tensor({cs.k, cs.c, cs.r, cs.s}, 2);
    Tensor b = random_tensor({cs.k}, 3);
    Var y = ops::conv2d(Var(x), Var(w), cs.bias ? Var(b) : Var(), {cs.stride, cs.pad});
    DirectConv ref{shape_of(cs)};
    REQUIRE(y.shape() == Shape{cs.n, cs.k, ref.s.out_h(), ref.s.out_w()});
    require_close(y.value(), as_tensor(ref.forward(x.data(), w.data(), cs.bias ? b.data() : nullptr), y.shape()),
                  1e-4, 1e-5, "conv forward");
  }
}

// The kernels directly, on a batch large enough to be split into several im2col groups (the last
// one partial): forward overwrites, and the three backward kernels accumulate onto what is there.
// Both CPU implementations: the reference and the fast path (oneDNN when built with it).
TEST_CASE("conv2d kernels over several image groups: forward overwrites, backwards accumulate", "[conv]") {
  const bool reference = GENERATE(true, false);
  INFO((reference ? "reference" : "fast path"));
  if (!reference && !kernels::cpu::conv2d_fast_path_built()) WARN("no fast CPU convolution in this build");
  kernels::cpu::conv2d_use_reference(reference);
  const ConvCase cases[] = {
      {30, 16, 32, 32, 4, 3, 3, 1, 1, true},  // ~147k column floats per image: groups of 28 and 2
      {5, 3, 11, 9, 6, 3, 3, 2, 1, true},     // one group
  };
  for (const ConvCase& cs : cases) {
    INFO(describe(cs));
    const kernels::Conv2dShape s = shape_of(cs);
    const Shape xs{cs.n, cs.c, cs.h, cs.w}, ws{cs.k, cs.c, cs.r, cs.s}, ys{cs.n, cs.k, s.out_h(), s.out_w()};
    Tensor x = random_tensor(xs, 4), w = random_tensor(ws, 5), b = random_tensor({cs.k}, 6);
    Tensor dy = random_tensor(ys, 7);
    DirectConv ref{s};

    Tensor y = Tensor::full(ys, NAN);  // whatever is in y must not survive
    kernels::cpu::conv2d_forward(s, x.data(), w.data(), b.data(), y.data());
    require_close(y, as_tensor(ref.forward(x.data(), w.data(), b.data()), ys), 1e-4, 1e-4, "forward");

    // Expected: the previous contents plus the adjoint sums.
    Tensor dx = random_tensor(xs, 8), dw = random_tensor(ws, 9), db = random_tensor({cs.k}, 10);
    std::vector<double> dx_ref(dx.data(), dx.data() + dx.numel()), dw_ref(dw.data(), dw.data() + dw.numel()),
        db_ref(db.data(), db.data() + db.numel());
    const float *xp = x.data(), *wp = w.data(), *dyp = dy.data();
    ref.each_term([&](int64_t xi, int64_t wi, int64_t yi) {
      dx_ref[size_t(xi)] += double(dyp[yi]) * wp[wi];
      dw_ref[size_t(wi)] += double(dyp[yi]) * xp[xi];
    });
    const int64_t pq = int64_t(s.out_h()) * s.out_w();
    for (int64_t i = 0; i < dy.numel(); ++i) db_ref[size_t((i / pq) % cs.k)] += dyp[i];

    kernels::cpu::conv2d_backward_data(s, dy.data(), w.data(), dx.data());
    kernels::cpu::conv2d_backward_weight(s, x.data(), dy.data(), dw.data());
    kernels::cpu::conv2d_backward_bias(s, dy.data(), db.data());
    require_close(dx, as_tensor(dx_ref, xs), 1e-4, 1e-4, "backward data");
    // dw sums n*P*Q terms of size ~1: allow for float accumulation over ~30k terms.
    require_close(dw, as_tensor(dw_ref, ws), 1e-4, 2e-3, "backward weight");
    require_close(db, as_tensor(db_ref, {cs.k}), 1e-5, 1e-3, "backward bias");
  }
  kernels::cpu::conv2d_use_reference(false);
}

// The fast path against the plain reference (cpu::ref, im2col + sgemm) on random inputs: the
// shapes of LeNet and the Cifar ResNets, 1-channel and small-channel inputs, odd sizes, strides,
// paddings and batches; forward, backward data, weights and bias, all accumulating onto noise.
TEST_CASE("conv2d fast path equals the reference implementation", "[conv]") {
  if (!kernels::cpu::conv2d_fast_path_built()) {
    WARN("this build has no fast CPU convolution (oneDNN): the reference runs everywhere");
    return;
  }
  const ConvCase cases[] = {
      {7, 1, 28, 28, 20, 5, 5, 1, 0, true},   // LeNet conv1, odd batch
      {5, 20, 12, 12, 50, 5, 5, 1, 0, true},  // LeNet conv2
      {9, 3, 32, 32, 16, 3, 3, 1, 1, false},  // ResNet stem
      {4, 16, 32, 32, 16, 3, 3, 1, 1, false}, {3, 16, 32, 32, 32, 3, 3, 2, 1, false},
      {3, 16, 32, 32, 32, 1, 1, 2, 0, false}, {2, 64, 8, 8, 64, 3, 3, 1, 1, false},
      {3, 5, 13, 11, 7, 3, 3, 2, 1, true},    // odd everything
      {2, 3, 9, 10, 6, 5, 3, 1, 2, true},     // non-square kernel, wide padding
      {1, 17, 7, 7, 3, 1, 1, 1, 0, false},    {6, 2, 6, 5, 4, 3, 3, 3, 0, true},
      {32, 64, 8, 8, 64, 3, 3, 1, 1, false},  {24, 32, 16, 16, 64, 3, 3, 2, 1, false},  // larger batches
      {32, 16, 32, 32, 16, 3, 3, 1, 1, false},
  };
  for (const ConvCase& cs : cases) {
    INFO(describe(cs));
    const kernels::Conv2dShape s = shape_of(cs);
    const Shape xs{cs.n, cs.c, cs.h, cs.w}, ws{cs.k, cs.c, cs.r, cs.s}, ys{cs.n, cs.k, s.out_h(), s.out_w()};
    Tensor x = random_tensor(xs, 21), w = random_tensor(ws, 22), b = random_tensor({cs.k}, 23);
    Tensor dy = random_tensor(ys, 24);
    const float* bias = cs.bias ? b.data() : nullptr;
    struct Out {
      Tensor y, dx, dw, db;
    };
    auto run = [&](bool reference) {
      kernels::cpu::conv2d_use_reference(reference);
      Out o{Tensor::full(ys, NAN), random_tensor(xs, 25), random_tensor(ws, 26), random_tensor({cs.k}, 27)};
      kernels::cpu::conv2d_forward(s, x.data(), w.data(), bias, o.y.data());
      if (reference) {  // the three kernels one by one
        kernels::cpu::conv2d_backward_data(s, dy.data(), w.data(), o.dx.data());
        kernels::cpu::conv2d_backward_weight(s, x.data(), dy.data(), o.dw.data());
        kernels::cpu::conv2d_backward_bias(s, dy.data(), o.db.data());
      } else {  // the combined call the autograd makes (dy brought into the fast layout once)
        kernels::cpu::conv2d_backward(s, x.data(), dy.data(), w.data(), o.dx.data(), o.dw.data(), o.db.data());
      }
      return o;
    };
    Out ref = run(true), fast = run(false);
    kernels::cpu::conv2d_use_reference(false);
    require_close(fast.y, ref.y, 1e-4, 1e-4, "forward");
    require_close(fast.dx, ref.dx, 1e-4, 1e-4, "backward data");
    require_close(fast.dw, ref.dw, 1e-4, 1e-3, "backward weight");
    require_close(fast.db, ref.db, 1e-5, 1e-4, "backward bias");
  }
}



TEST_CASE("conv2d gradients of input, weight and bias: stride 1/2, padding 0/1/2, odd sizes", "[conv][grad]") {
  const ConvCase cases[] = {
      {2, 3, 5, 7, 4, 3, 3, 1, 1, true},  {1, 2, 9, 8, 3, 3, 3, 2, 1, false}, {2, 3, 7, 7, 2, 1, 1, 2, 0, true},
      {1, 2, 6, 5, 3, 5, 5, 1, 2, true},  {2, 2, 8, 7, 3, 3, 3, 2, 2, false}, {1, 3, 5, 5, 2, 3, 1, 1, 0, true},
      {3, 2, 4, 4, 3, 3, 3, 1, 0, false}, {2, 1, 9, 9, 2, 5, 5, 2, 2, true},
  };
  for (const ConvCase& cs : cases) {
    INFO(describe(cs));
    std::vector<Tensor> in = {random_tensor({cs.n, cs.c, cs.h, cs.w}, 11), random_tensor({cs.k, cs.c, cs.r, cs.s}, 12),
                              random_tensor({cs.k}, 13)};
    // The bias is passed only when the case has one; without it nothing may flow into it.
    check_gradients(
        [&](const std::vector<Var>& v) { return ops::conv2d(v[0], v[1], cs.bias ? v[2] : Var(), {cs.stride, cs.pad}); },
        in, {true, true, cs.bias});
  }
}

TEST_CASE("conv2d gradient of only some inputs leaves the others alone", "[conv][grad]") {
  // Weight needs a gradient, the input does not (the first layer of a network): the input's
  // gradient buffer must never be created.
  Var x(random_tensor({2, 2, 5, 5}, 14)), w(random_tensor({3, 2, 3, 3}, 15), true), b(random_tensor({3}, 16), true);
  Var y = ops::conv2d(x, w, b, {1, 1});
  backward(weighted_sum(y, std::vector<double>(size_t(y.value().numel()), 1.0)));
  CHECK_FALSE(x.grad().defined());
  REQUIRE(b.grad().defined());
  // With all-ones weights the bias gradient is the number of output positions per channel.
  for (float g : b.grad().to_vector()) CHECK(g == Approx(2 * 5 * 5));
}

TEST_CASE("conv2d backward data with dx_overwrite writes what accumulating onto zeros gives", "[conv]") {
  // oneDNN (16 channels), the unfolding (20 outputs), the stem, each path also with channels-last
  // operands, and the reference: dx starts as NaN, so any element not written shows.
  const kernels::Conv2dShape shapes[] = {{3, 16, 8, 8, 16, 3, 3, 1, 1}, {2, 16, 6, 6, 20, 3, 3, 1, 0},
                                         {2, 3, 8, 8, 16, 3, 3, 2, 1}};
  for (const bool reference : {false, true})
    for (const bool last : {false, true})
      for (const kernels::Conv2dShape& s0 : shapes) {
        kernels::cpu::conv2d_use_reference(reference);
        kernels::Conv2dShape s = s0;
        s.x_channels_last = s.y_channels_last = last;
        INFO("reference " << reference << ", channels-last " << last << ", c " << s.c << ", k " << s.k);
        const Shape xs{s.n, s.c, s.h, s.w}, ys{s.n, s.k, s.out_h(), s.out_w()};
        const MemoryFormat fx = last ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous;
        Tensor x = random_tensor(xs, 41).to_memory_format(fx), w = random_tensor({s.k, s.c, s.r, s.s}, 42);
        Tensor dy = random_tensor(ys, 43).to_memory_format(fx);
        Tensor want = Tensor::zeros(xs).to_memory_format(fx), dw = Tensor::zeros(w.shape());
        kernels::cpu::conv2d_backward(s, x.data(), dy.data(), w.data(), want.data(), dw.data(), nullptr);
        kernels::Conv2dShape o = s;
        o.dx_overwrite = true;
        Tensor got = Tensor::full(xs, NAN).to_memory_format(fx), got1 = got.clone(), dw2 = Tensor::zeros(w.shape());
        kernels::cpu::conv2d_backward(o, x.data(), dy.data(), w.data(), got.data(), dw2.data(), nullptr);
        kernels::cpu::conv2d_backward_data(o, dy.data(), w.data(), got1.data());
        require_close(got, want, 0, 0, "combined backward");
        require_close(got1, want, 0, 0, "backward data alone");
        require_close(dw2, dw, 0, 0, "the weight gradient is unchanged");
      }
  kernels::cpu::conv2d_use_reference(false);
}

// ---- the convolution with its max pool as one op (LeNet) -------------------------------------

TEST_CASE("conv2d_max_pool2d equals max_pool2d(conv2d) in values and gradients, fp32 and bf16", "[conv][pool]") {
  struct Case {
    ConvCase conv;
    ops::Pool2dParams pool;
  };
  const Case cases[] = {
      {{5, 1, 28, 28, 20, 5, 5, 1, 0, true}, {2, 2, 0}},   // LeNet conv1 + pool
      {{3, 20, 12, 12, 50, 5, 5, 1, 0, true}, {2, 2, 0}},  // LeNet conv2 + pool
      {{2, 3, 11, 9, 7, 3, 3, 1, 1, false}, {2, 2, 0}},    // odd planes: the last row/column unpooled
      {{2, 5, 13, 13, 6, 3, 3, 2, 1, true}, {3, 2, 1}},    // overlapping, padded windows
  };
  REQUIRE(kernels::cpu::conv2d_fast_path_built());  // the fused path sits beside oneDNN's
  for (const Precision precision : {Precision::FP32, Precision::BF16})
    for (const bool relu : {false, true})
    for (const Case& c : cases) {
      INFO(describe(c.conv) << ", pool " << c.pool.kernel << "/" << c.pool.stride << "/" << c.pool.pad << ", "
                            << (precision == Precision::BF16 ? "bf16" : "fp32") << (relu ? ", relu" : ""));
      PrecisionGuard guard(precision);
      const ConvCase& cs = c.conv;
      kernels::Conv2dShape s = shape_of(cs);
      s.precision = precision;
      const kernels::Pool2dShape ps{cs.n, cs.k, s.out_h(), s.out_w(), c.pool.kernel, c.pool.stride, c.pool.pad};
      CHECK(kernels::cpu::conv2d_max_pool2d_fused(s, ps));  // these shapes take the fused path
      const Tensor x0 = random_tensor({cs.n, cs.c, cs.h, cs.w}, 90), w0 = random_tensor({cs.k, cs.c, cs.r, cs.s}, 91);
      const Tensor b0 = random_tensor({cs.k}, 92);
      const Tensor dy = random_tensor({cs.n, cs.k, ps.out_h(), ps.out_w()}, 93);
      struct Result {
        Tensor y, dx, dw, db;
      };
      auto run = [&](bool fused) {
        Var x(x0.clone(), true), w(w0.clone(), true), b = cs.bias ? Var(b0.clone(), true) : Var();
        Var y = fused ? ops::conv2d_max_pool2d(x, w, b, {cs.stride, cs.pad}, c.pool, relu)
                      : ops::max_pool2d(ops::conv2d(x, w, b, {cs.stride, cs.pad}), c.pool);
        if (relu && !fused) y = ops::relu(y);
        backward(y, dy);
        return Result{y.value(), x.grad(), w.grad(), cs.bias ? b.grad() : Tensor()};
      };
      const Result want = run(false), got = run(true);
      {  // inference: the maxima without their positions
        NoGradGuard no_grad;
        require_close(ops::conv2d_max_pool2d(Var(x0), Var(w0), cs.bias ? Var(b0) : Var(), {cs.stride, cs.pad}, c.pool,
                                             relu)
                          .value(),
                      want.y, 1e-5, 1e-5, "y without gradients");
      }
      // the same products summed in the same order: the values and argmaxes agree to rounding
      require_close(got.y, want.y, 1e-5, 1e-5, "y");
      require_close(got.dx, want.dx, 1e-5, 1e-5, "dx");
      require_close(got.dw, want.dw, 1e-5, 1e-4, "dweight");
      if (cs.bias) require_close(got.db, want.db, 1e-5, 1e-4, "dbias");
    }
}

TEST_CASE("conv2d_max_pool2d gradients against finite differences", "[conv][pool][grad]") {
  // A step of 1e-3 (not the default 1e-2): a weight's step moves every output of its channel, and
  // a larger one hands some window's maximum to another position (a kink, not a wrong gradient).
  const Tensor x = random_tensor({2, 3, 10, 10}, 94), w = random_tensor({5, 3, 3, 3}, 95), b = random_tensor({5}, 96);
  GradCheckOptions opt;
  opt.eps = 1e-3;
  for (const bool relu : {false, true})
    check_gradients(
        [&](const std::vector<Var>& v) { return ops::conv2d_max_pool2d(v[0], v[1], v[2], {1, 0}, {2, 2, 0}, relu); },
        {x, w, b}, {}, opt);
}

TEST_CASE("conv2d_max_pool2d takes two ops where it does not fuse, and says what is wrong", "[conv][pool]") {
  // channel counts in blocks of 16 run on oneDNN: no fusion, the same values
  const Tensor x = random_tensor({2, 16, 8, 8}, 97), w = random_tensor({16, 16, 3, 3}, 98);
  kernels::Conv2dShape s{2, 16, 8, 8, 16, 3, 3, 1, 1};
  CHECK_FALSE(kernels::cpu::conv2d_max_pool2d_fused(s, {2, 16, 8, 8, 2, 2, 0}));
  Tensor got = ops::conv2d_max_pool2d(Var(x), Var(w), Var(), {1, 1}, {2, 2, 0}).value();
  Tensor want = ops::max_pool2d(ops::conv2d(Var(x), Var(w), Var(), {1, 1}), {2, 2, 0}).value();
  require_close(ops::contiguous(Var(got)).value(), want, 0, 0, "unfused");
  CHECK_THROWS_WITH(ops::conv2d_max_pool2d(Var(x), Var(random_tensor({16, 8, 3, 3}, 99)), Var(), {1, 1}, {2, 2, 0}),
                    Catch::Contains("conv2d: input"));
}
