// Tests of bf16 mixed precision on the CPU (kernels/precision.h, engine/precision.h): the rounding,
// every bf16 convolution and linear pass against the float32 reference (on bf16-rounded operands:
// equal up to float32 accumulation; on the original operands: within bf16's error), and the ops.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/precision.h"
#include "gradcheck.h"
#include "kernels/conv2d.h"
#include "kernels/cpu/gemm_bf16.h"
#include "kernels/cpu/sgemm.h"
#include "kernels/linear.h"

using namespace macer;
using namespace macer::testing;
using kernels::Precision;

namespace {

Tensor rounded(const Tensor& t) {
  std::vector<float> v = t.to_vector();
  for (float& f : v) f = kernels::round_to_bf16(f);
  return Tensor::from_vector(v, t.shape());
}
Tensor absolute(const Tensor& t) {
  std::vector<float> v = t.to_vector();
  for (float& f : v) f = std::fabs(f);
  return Tensor::from_vector(v, t.shape());
}

// Largest |got - want| / scale over the elements (scale: the accumulation scale of each output,
// sum of |a||b| over its products, plus a floor for outputs with no products).
double worst(const Tensor& got, const Tensor& want, const Tensor& scale) {
  const auto g = got.to_vector(), w = want.to_vector(), s = scale.to_vector();
  REQUIRE(g.size() == w.size());
  REQUIRE(g.size() == s.size());
  double out = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    REQUIRE(std::isfinite(g[i]));
    out = std::max(out, std::fabs(double(g[i]) - w[i]) / (double(s[i]) + 1e-3));
  }
  return out;
}

// The three checks of one bf16 result: (1) equal to float32 arithmetic on the bf16-rounded
// operands up to float32 accumulation in another order (`products` terms with rounding errors of
// 2^-24 of the scale that add up like a random walk: (16 + sqrt(products)) 2^-24 of it; measured:
// at most 3 2^-24); (2) within
// bf16's error of float32 arithmetic on the original operands: each operand rounded to 8
// significant bits is off by at most 2^-8, each product by 2^-7; (3) that it is bf16 at all:
// float32 arithmetic on the original operands is further off than (1) allows.
void check_bf16(const char* what, const Tensor& bf16, const Tensor& exact_on_rounded, const Tensor& fp32,
                const Tensor& scale, int64_t products) {
  INFO(what);
  const double tight = (16.0 + std::sqrt(double(products))) * std::ldexp(1.0, -24);
  const double to_rounded = worst(bf16, exact_on_rounded, scale), to_fp32 = worst(bf16, fp32, scale);
  const double fp32_to_rounded = worst(fp32, exact_on_rounded, scale);
  INFO("relative to the accumulation scale: bf16 vs exact on rounded " << to_rounded << " (tolerance " << tight
                                                                      << "), vs fp32 " << to_fp32
                                                                      << ", fp32 vs exact on rounded "
                                                                      << fp32_to_rounded);
  CHECK(to_rounded <= tight);
  if (std::getenv("MACER_BF16_TRACE")) std::printf("%-28s products %6lld: bf16~rounded %.3g, bf16~fp32 %.3g, fp32~rounded %.3g\n", what, (long long)products, to_rounded, to_fp32, fp32_to_rounded);
  CHECK(to_fp32 <= std::ldexp(1.0, -7) + tight);
  CHECK(fp32_to_rounded > 4 * tight);
}

struct ConvCase {
  int n, c, h, w, k, r, s, stride, pad;
  bool bias;
};

}  // namespace

TEST_CASE("bf16 rounding is round to nearest even, as oneDNN's and PyTorch's", "[bf16]") {
  using kernels::float_to_bf16;
  using kernels::round_to_bf16;
  CHECK(float_to_bf16(1.0f) == 0x3f80);
  CHECK(float_to_bf16(-2.0f) == 0xc000);
  // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: to the even one, 1; 1 + 3*2^-8 to 1 + 2^-6.
  CHECK(round_to_bf16(1.0f + std::ldexp(1.0f, -8)) == 1.0f);
  CHECK(round_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)) == 1.0f + std::ldexp(1.0f, -6));
  CHECK(round_to_bf16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)) == 1.0f + std::ldexp(1.0f, -7));
  CHECK(std::isinf(round_to_bf16(std::numeric_limits<float>::infinity())));
  CHECK(std::isnan(round_to_bf16(std::numeric_limits<float>::quiet_NaN())));
  CHECK(std::isnan(round_to_bf16(std::numeric_limits<float>::signaling_NaN())));
  CHECK(std::isinf(round_to_bf16(3.4e38f)));  // beyond bf16's largest finite value: rounds up to inf
  // 8 significant bits: relative error at most 2^-8 (half the spacing 2^(e-7) of [2^e, 2^(e+1))).
  Tensor t = random_tensor({4096}, 5, -1e4f, 1e4f);
  double worst_rel = 0;
  for (float f : t.to_vector()) worst_rel = std::max(worst_rel, std::fabs(double(round_to_bf16(f)) - f) / std::fabs(f));
  CHECK(worst_rel <= std::ldexp(1.0, -8));
  CHECK(worst_rel > std::ldexp(1.0, -9));  // and it does round to 8 bits, not more
}

// Each bf16 convolution pass (the fast path: oneDNN's bf16 primitives, and the reference's
// emulation) against float32: forward with and without bias, backward data and weights one by
// one and combined, every backward accumulating onto random values.
TEST_CASE("bf16 convolution passes against the float32 reference", "[bf16][conv]") {
  const ConvCase cases[] = {
      {7, 1, 28, 28, 20, 5, 5, 1, 0, true},   // LeNet conv1, odd batch
      {5, 20, 12, 12, 50, 5, 5, 1, 0, true},  // LeNet conv2 (channels oneDNN pads)
      {9, 3, 32, 32, 16, 3, 3, 1, 1, false},  // ResNet stem
      {4, 16, 32, 32, 16, 3, 3, 1, 1, false}, {3, 16, 32, 32, 32, 3, 3, 2, 1, false},
      {3, 16, 32, 32, 32, 1, 1, 2, 0, false}, {4, 64, 8, 8, 64, 3, 3, 1, 1, false},
      {3, 5, 13, 11, 7, 3, 3, 2, 1, true},    // odd everything
      {2, 3, 9, 10, 6, 5, 3, 1, 2, true},     // non-square kernel, wide padding
  };
  const bool fast_built = kernels::cpu::conv2d_fast_path_built();
  if (!fast_built) WARN("this build has no oneDNN: only the emulated bf16 reference is tested");
  for (const bool reference : {false, true}) {
    if (!reference && !fast_built) continue;
    for (const ConvCase& cs : cases) {
      INFO((reference ? "reference (emulated bf16)" : "fast path (oneDNN bf16)") << ", x " << cs.n << "x" << cs.c
                                                                                 << "x" << cs.h << "x" << cs.w
                                                                                 << ", weight " << cs.k << "x"
                                                                                 << cs.r << "x" << cs.s);
      kernels::Conv2dShape s{cs.n, cs.c, cs.h, cs.w, cs.k, cs.r, cs.s, cs.stride, cs.pad};
      kernels::Conv2dShape sb = s;
      sb.precision = Precision::BF16;
      const Shape xs{cs.n, cs.c, cs.h, cs.w}, ws{cs.k, cs.c, cs.r, cs.s}, ys{cs.n, cs.k, s.out_h(), s.out_w()};
      Tensor x = random_tensor(xs, 31), w = random_tensor(ws, 32), b = random_tensor({cs.k}, 33);
      Tensor dy = random_tensor(ys, 34);
      Tensor xr = rounded(x), wr = rounded(w), dyr = rounded(dy);
      const float* bias = cs.bias ? b.data() : nullptr;
      const Tensor dx0 = random_tensor(xs, 35), dw0 = random_tensor(ws, 36);

      // float32 arithmetic (the reference) on given operands; the scales on their absolute values.
      kernels::cpu::conv2d_use_reference(true);
      auto fwd = [&](const Tensor& a, const Tensor& wt, const float* bb) {
        Tensor y = Tensor::full(ys, NAN);
        kernels::cpu::conv2d_forward(s, a.data(), wt.data(), bb, y.data());
        return y;
      };
      auto bwd_data = [&](const Tensor& d, const Tensor& wt, const Tensor& init) {
        Tensor dx = init.clone();
        kernels::cpu::conv2d_backward_data(s, d.data(), wt.data(), dx.data());
        return dx;
      };
      auto bwd_weight = [&](const Tensor& a, const Tensor& d, const Tensor& init) {
        Tensor dw = init.clone();
        kernels::cpu::conv2d_backward_weight(s, a.data(), d.data(), dw.data());
        return dw;
      };
      const Tensor y_exact = fwd(xr, wr, bias), y_fp32 = fwd(x, w, bias);
      const Tensor y_scale = fwd(absolute(x), absolute(w), nullptr);
      const Tensor dx_exact = bwd_data(dyr, wr, dx0), dx_fp32 = bwd_data(dy, w, dx0);
      const Tensor dx_scale = bwd_data(absolute(dy), absolute(w), Tensor::zeros(xs));
      const Tensor dw_exact = bwd_weight(xr, dyr, dw0), dw_fp32 = bwd_weight(x, dy, dw0);
      const Tensor dw_scale = bwd_weight(absolute(x), absolute(dy), Tensor::zeros(ws));

      kernels::cpu::conv2d_use_reference(reference);
      Tensor y = Tensor::full(ys, NAN), dx = dx0.clone(), dw = dw0.clone();
      kernels::cpu::conv2d_forward(sb, x.data(), w.data(), bias, y.data());
      kernels::cpu::conv2d_backward_data(sb, dy.data(), w.data(), dx.data());
      kernels::cpu::conv2d_backward_weight(sb, x.data(), dy.data(), dw.data());
      Tensor dx2 = dx0.clone(), dw2 = dw0.clone(), db2 = Tensor::zeros({cs.k}), db_fp32 = Tensor::zeros({cs.k});
      kernels::cpu::conv2d_backward(sb, x.data(), dy.data(), w.data(), dx2.data(), dw2.data(), db2.data());
      kernels::cpu::conv2d_use_reference(false);
      kernels::cpu::conv2d_backward_bias(s, dy.data(), db_fp32.data());

      const int64_t crs = int64_t(cs.c) * cs.r * cs.s;
      check_bf16("forward", y, y_exact, y_fp32, y_scale, crs);
      check_bf16("backward data", dx, dx_exact, dx_fp32, dx_scale, int64_t(cs.k) * cs.r * cs.s);
      check_bf16("backward weights", dw, dw_exact, dw_fp32, dw_scale, int64_t(cs.n) * s.out_h() * s.out_w());
      check_bf16("combined backward: data", dx2, dx_exact, dx_fp32, dx_scale, int64_t(cs.k) * cs.r * cs.s);
      check_bf16("combined backward: weights", dw2, dw_exact, dw_fp32, dw_scale,
                 int64_t(cs.n) * s.out_h() * s.out_w());
      require_close(db2, db_fp32, 1e-6, 1e-5, "combined backward: bias (a float32 sum in either precision)");
    }
  }
}

// The unfolding convolution's bf16 product: op(A) op(B) (+ C) against sgemm on the operands
// rounded to bf16, every transpose, beta 0 and 1.
TEST_CASE("gemm_bf16 equals sgemm of the rounded operands", "[bf16][gemm]") {
  const int64_t M = 13, N = 37, K = 29;
  for (const bool ta : {false, true})
    for (const bool tb : {false, true})
      for (const float beta : {0.0f, 1.0f}) {
        INFO("ta " << ta << " tb " << tb << " beta " << beta);
        const int64_t lda = ta ? M + 3 : K + 3, ldb = tb ? K + 5 : N + 5, ldc = N + 2;
        Tensor a = random_tensor({ta ? K : M, lda}, 61), b = random_tensor({tb ? N : K, ldb}, 62);
        Tensor c0 = random_tensor({M, ldc}, 63);
        Tensor want = c0.clone(), got = c0.clone();
        kernels::cpu::sgemm(ta, tb, M, N, K, rounded(a).data(), lda, rounded(b).data(), ldb, beta, want.data(), ldc);
        kernels::cpu::gemm_bf16(ta, tb, M, N, K, a.data(), lda, b.data(), ldb, beta, got.data(), ldc);
        // exact products of bf16 values, summed in float32 in another order
        require_close(got, want, 1e-5, 1e-5, "gemm_bf16");
      }
}

TEST_CASE("bf16 linear passes against the float32 linear", "[bf16][linear]") {
  struct Case {
    int n, in, out;
  };
  for (const Case& c : {Case{7, 13, 5}, Case{64, 500, 10}, Case{1, 1, 1}, Case{33, 64, 17}, Case{128, 84, 10}}) {
    INFO("linear " << c.n << "x" << c.in << " -> " << c.out);
    const kernels::LinearShape s{c.n, c.in, c.out};
    kernels::LinearShape sb = s;
    sb.precision = Precision::BF16;
    Tensor x = random_tensor({c.n, c.in}, 41), w = random_tensor({c.out, c.in}, 42), b = random_tensor({c.out}, 43);
    Tensor dy = random_tensor({c.n, c.out}, 44);
    const Tensor dx0 = random_tensor({c.n, c.in}, 45), dw0 = random_tensor({c.out, c.in}, 46);
    auto fwd = [&](const kernels::LinearShape& sh, const Tensor& a, const Tensor& wt, const float* bb) {
      Tensor y = Tensor::full({c.n, c.out}, NAN);
      kernels::cpu::linear_forward(sh, a.data(), wt.data(), bb, y.data());
      return y;
    };
    auto bwd_data = [&](const kernels::LinearShape& sh, const Tensor& d, const Tensor& wt, const Tensor& init) {
      Tensor dx = init.clone();
      kernels::cpu::linear_backward_data(sh, d.data(), wt.data(), dx.data());
      return dx;
    };
    auto bwd_weight = [&](const kernels::LinearShape& sh, const Tensor& a, const Tensor& d, const Tensor& init) {
      Tensor dw = init.clone();
      kernels::cpu::linear_backward_weight(sh, a.data(), d.data(), dw.data());
      return dw;
    };
    for (const bool with_bias : {false, true}) {
      const float* bias = with_bias ? b.data() : nullptr;
      check_bf16(with_bias ? "forward with bias" : "forward", fwd(sb, x, w, bias), fwd(s, rounded(x), rounded(w), bias),
                 fwd(s, x, w, bias), fwd(s, absolute(x), absolute(w), nullptr), c.in);
    }
    check_bf16("backward data", bwd_data(sb, dy, w, dx0), bwd_data(s, rounded(dy), rounded(w), dx0),
               bwd_data(s, dy, w, dx0), bwd_data(s, absolute(dy), absolute(w), Tensor::zeros({c.n, c.in})), c.out);
    check_bf16("backward weights", bwd_weight(sb, x, dy, dw0), bwd_weight(s, rounded(x), rounded(dy), dw0),
               bwd_weight(s, x, dy, dw0), bwd_weight(s, absolute(x), absolute(dy), Tensor::zeros({c.out, c.in})),
               c.n);
  }
  // An empty batch writes nothing and adds nothing.
  kernels::LinearShape empty{0, 4, 3};
  empty.precision = Precision::BF16;
  Tensor dw = random_tensor({3, 4}, 47), before = dw.clone();
  kernels::cpu::linear_backward_weight(empty, nullptr, nullptr, dw.data());
  require_close(dw, before, 0, 0, "empty batch");
}

// The ops take the process's precision into their kernels' shapes at the forward, and the
// backward recorded then keeps it (a backward after the precision changed still runs in bf16).
TEST_CASE("ops compute convolutions and linears in the process's precision", "[bf16][ops]") {
  const kernels::Conv2dShape s{3, 16, 8, 8, 16, 3, 3, 1, 1};
  kernels::Conv2dShape sb = s;
  sb.precision = Precision::BF16;
  Tensor x = random_tensor({3, 16, 8, 8}, 51), w = random_tensor({16, 16, 3, 3}, 52), dy = random_tensor({3, 16, 8, 8}, 53);
  CHECK(compute_precision() == Precision::FP32);  // the default
  // float32 activations: the op's output is the kernel's (bf16 activations: test_bf16_activations)
  Bf16ActivationsGuard activations(false);
  auto run = [&](Precision p) {
    Var xv(x.clone(), true), wv(w.clone(), true);
    Var y;
    {
      PrecisionGuard guard(p);
      y = ops::conv2d(xv, wv, Var(), {1, 1});
    }
    backward(weighted_sum(y, to_doubles(dy)));  // after the guard: fp32 again
    return std::vector<Tensor>{y.value(), xv.grad(), wv.grad()};
  };
  const auto bf = run(Precision::BF16), fp = run(Precision::FP32);
  CHECK(compute_precision() == Precision::FP32);  // the guard restored it
  Tensor y = Tensor::empty({3, 16, 8, 8}), dx = Tensor::zeros(x.shape()), dw = Tensor::zeros(w.shape());
  kernels::cpu::conv2d_forward(sb, x.data(), w.data(), nullptr, y.data());
  kernels::cpu::conv2d_backward(sb, x.data(), dy.data(), w.data(), dx.data(), dw.data(), nullptr);
  require_close(bf[0], y, 1e-6, 1e-6, "bf16 op forward = bf16 kernel");
  require_close(bf[1], dx, 1e-6, 1e-6, "bf16 op input gradient = bf16 kernel");
  require_close(bf[2], dw, 1e-5, 1e-5, "bf16 op weight gradient = bf16 kernel");
  // the op's bf16 forward keeps its converted x for the weight gradient; what it gives equals
  // the kernels converting x again (above); fp32 keeps nothing
  CHECK(kernels::cpu::conv2d_kept_bytes(sb, false) >= size_t(x.numel()) * 2);
  CHECK(kernels::cpu::conv2d_kept_bytes(s, false) == 0);
  CHECK(!compare_tensors(fp[0], y, 1e-5, 1e-5).ok());  // fp32 is not bf16
  CHECK(!compare_tensors(fp[1], dx, 1e-5, 1e-5).ok());
  CHECK(!compare_tensors(fp[2], dw, 1e-5, 1e-5).ok());

  // linear, forward only
  Tensor a = random_tensor({5, 24}, 54), m = random_tensor({7, 24}, 55);
  Tensor ly = Tensor::empty({5, 7});
  kernels::LinearShape ls{5, 24, 7};
  ls.precision = Precision::BF16;
  kernels::cpu::linear_forward(ls, a.data(), m.data(), nullptr, ly.data());
  PrecisionGuard guard(Precision::BF16);
  require_close(ops::linear(Var(a), Var(m), Var()).value(), ly, 0, 0, "bf16 linear op = bf16 kernel");
}
