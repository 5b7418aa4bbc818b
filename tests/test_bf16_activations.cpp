// Tests of bf16 activations (engine/precision.h bf16_activations): the bf16 forms of the batch
// norm, ReLU and residual kernels against their float32 forms on the same (converted) values, the
// convolution writing and reading bf16, and the ops that convert a bf16 input to float32.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <utility>
#include <vector>

#include "engine/ops.h"
#include "engine/precision.h"
#include "gradcheck.h"
#include "kernels/batchnorm.h"
#include "kernels/conv2d.h"
#include "kernels/elementwise.h"
#include "kernels/precision.h"

using namespace macer;
using namespace macer::testing;
using kernels::Precision;

namespace {

constexpr MemoryFormat kLast = MemoryFormat::ChannelsLast;

// t (float32) rounded to bf16: the bits, and their exact float32 values (same order).
std::vector<uint16_t> bits_of(const Tensor& t) {
  const float* p = t.data();
  std::vector<uint16_t> out(size_t(t.numel()));
  for (size_t i = 0; i < out.size(); ++i) out[i] = kernels::float_to_bf16(p[i]);
  return out;
}
std::vector<float> floats_of(const std::vector<uint16_t>& b) {
  std::vector<float> out(b.size());
  for (size_t i = 0; i < b.size(); ++i) out[i] = kernels::bf16_to_float(b[i]);
  return out;
}

// Every bf16 result within one bf16 rounding of the float32 result (the float32 values may differ
// from the bf16 kernel's by float32 rounding, which can move a tie): |got - want| <= 2^-8 |want|
// + atol. At least one element must differ from its float32 value unless all are exact in bf16.
void check_rounded(const std::vector<uint16_t>& got, const std::vector<float>& want, double atol, const char* what) {
  INFO(what);
  REQUIRE(got.size() == want.size());
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = kernels::bf16_to_float(got[i]), w = want[i];
    if (!(std::fabs(g - w) <= std::ldexp(std::fabs(w), -8) + atol) && bad++ == 0) first = i;
  }
  INFO(bad << " of " << got.size() << " outside one bf16 rounding; first at " << first << ": got "
            << kernels::bf16_to_float(got[first]) << ", want " << want[first]);
  CHECK(bad == 0);
}

void check_close(const std::vector<float>& got, const std::vector<float>& want, double rtol, double atol,
                 const char* what) {
  require_close(Tensor::from_vector(got, {int64_t(got.size())}), Tensor::from_vector(want, {int64_t(want.size())}),
                rtol, atol, what);
}

// Sets the bf16 precision and the bf16-activations switch for a scope.
struct Bf16Scope {
  PrecisionGuard precision{Precision::BF16};
  Bf16ActivationsGuard activations;
  explicit Bf16Scope(bool on) : activations(on) {}
};

// Whether the convolutions write bf16 here: oneDNN's path only (not the reference, not a build
// without oneDNN); the op-level tests skip, saying so, where they cannot.
bool convolutions_write_bf16() {
  if (kernels::cpu::conv2d_fast_path_built() && !kernels::cpu::conv2d_using_reference()) return true;
  WARN("skipped: bf16 activations need oneDNN's convolutions (a build without oneDNN, or MACER_CPU_CONV=reference)");
  return false;
}

}  // namespace

TEST_CASE("bf16 batch norm kernels equal the float32 kernels on the same values", "[bf16][batchnorm]") {
  // rows not a multiple of the 64-row chunk; channel counts below, at and above one AVX-512 vector
  for (const auto& dims : std::vector<std::vector<int>>{{3, 5, 7 * 5}, {2, 16, 9 * 7}, {4, 32, 8 * 8}, {1, 64, 13}}) {
    for (bool relu : {false, true}) {
      kernels::BatchNormShape s{dims[0], dims[1], dims[2]};
      s.channels_last = true;
      s.relu = relu;
      INFO("n " << s.n << " c " << s.c << " hw " << s.hw << " relu " << relu);
      const int64_t count = int64_t(s.n) * s.c * s.hw;
      // an offset per channel, so the two-pass variance matters
      Tensor raw = random_normal({count}, 7, 1.5f);
      for (int64_t j = 0; j < count; ++j) raw.data()[j] += 3.0f * float(j % s.c) - 20.0f;
      const std::vector<uint16_t> xb = bits_of(raw);
      const std::vector<float> xf = floats_of(xb);
      const Tensor gamma = random_tensor({s.c}, 8, 0.5f, 1.5f), beta = random_tensor({s.c}, 9);
      const Tensor dy = random_normal({count}, 10);

      // training forward: statistics as float32's, y within one rounding of float32's
      std::vector<float> rm_b(size_t(s.c), 0.1f), rv_b(size_t(s.c), 0.9f), rm_f = rm_b, rv_f = rv_b;
      std::vector<float> mean_b(size_t(s.c)), invstd_b(size_t(s.c)), mean_f(size_t(s.c)), invstd_f(size_t(s.c));
      std::vector<uint16_t> yb(static_cast<size_t>(count));
      std::vector<float> yf(static_cast<size_t>(count));
      kernels::cpu::batchnorm_forward_train(s, xb.data(), gamma.data(), beta.data(), rm_b.data(), rv_b.data(),
                                            yb.data(), mean_b.data(), invstd_b.data());
      kernels::cpu::batchnorm_forward_train(s, xf.data(), gamma.data(), beta.data(), rm_f.data(), rv_f.data(),
                                            yf.data(), mean_f.data(), invstd_f.data());
      check_close(mean_b, mean_f, 1e-6, 1e-6, "save_mean");
      check_close(invstd_b, invstd_f, 1e-6, 0, "save_invstd");
      check_close(rm_b, rm_f, 1e-6, 1e-6, "running_mean");
      check_close(rv_b, rv_f, 1e-6, 0, "running_var");
      check_rounded(yb, yf, 1e-6, "training forward y");

      // backward on the same bf16 values (x, and y as the bf16 forward stored it): float32 results
      const std::vector<float> ybf = floats_of(yb);
      for (bool overwrite : {false, true}) {
        kernels::BatchNormShape b = s;
        b.dx_overwrite = overwrite;
        const Tensor dx0 = random_tensor({count}, 11);
        std::vector<float> dx_b(dx0.data(), dx0.data() + count), dx_f = dx_b;
        std::vector<float> dg_b(size_t(s.c), 0.5f), db_b(size_t(s.c), -0.5f), dg_f = dg_b, db_f = db_b;
        kernels::cpu::batchnorm_backward(b, dy.data(), yb.data(), xb.data(), gamma.data(), mean_b.data(),
                                         invstd_b.data(), dx_b.data(), dg_b.data(), db_b.data());
        if (relu)
          kernels::cpu::batchnorm_relu_backward(b, dy.data(), ybf.data(), xf.data(), gamma.data(), mean_b.data(),
                                                invstd_b.data(), dx_f.data(), dg_f.data(), db_f.data());
        else
          kernels::cpu::batchnorm_backward(b, dy.data(), xf.data(), gamma.data(), mean_b.data(), invstd_b.data(),
                                           dx_f.data(), dg_f.data(), db_f.data());
        check_close(dx_b, dx_f, 1e-5, 1e-5, overwrite ? "dx (=)" : "dx (+=)");
        check_close(dg_b, dg_f, 1e-5, 1e-5, "dgamma");
        check_close(db_b, db_f, 1e-5, 1e-5, "dbeta");
      }

      // eval forward and its input gradient
      std::vector<uint16_t> eb(static_cast<size_t>(count));
      std::vector<float> ef(static_cast<size_t>(count));
      const float *rm = rm_f.data(), *rv = rv_f.data();
      kernels::cpu::batchnorm_forward_eval(s, xb.data(), gamma.data(), beta.data(), rm, rv, eb.data());
      kernels::cpu::batchnorm_forward_eval(s, xf.data(), gamma.data(), beta.data(), rm, rv, ef.data());
      check_rounded(eb, ef, 1e-6, "eval forward y");
      const std::vector<float> ebf = floats_of(eb);
      std::vector<float> ex_b(size_t(count), 0.25f), ex_f = ex_b;
      kernels::cpu::batchnorm_backward_eval_data(s, dy.data(), eb.data(), gamma.data(), rv_f.data(), ex_b.data());
      kernels::cpu::batchnorm_backward_eval_data(s, dy.data(), ebf.data(), gamma.data(), rv_f.data(), ex_f.data());
      check_close(ex_b, ex_f, 0, 0, "eval input gradient");
    }
  }
  // bf16 activations exist channels-last only
  kernels::BatchNormShape nchw{2, 3, 4};
  std::vector<uint16_t> x(24), y(24);
  std::vector<float> stats(3, 0.0f), ones(3, 1.0f);
  CHECK_THROWS_WITH(kernels::cpu::batchnorm_forward_eval(nchw, x.data(), ones.data(), stats.data(), stats.data(),
                                                         ones.data(), y.data()),
                    Catch::Contains("channels-last"));
}

TEST_CASE("bf16 ReLU and residual add+ReLU equal the float32 kernels rounded once", "[bf16][elementwise]") {
  const int64_t n = 1037;  // not a multiple of a vector
  const std::vector<uint16_t> a = bits_of(random_normal({n}, 21)), b = bits_of(random_normal({n}, 22));
  const std::vector<float> af = floats_of(a), bf = floats_of(b);
  std::vector<uint16_t> y(static_cast<size_t>(n));
  std::vector<float> yf(static_cast<size_t>(n));
  kernels::cpu::relu_forward(n, a.data(), y.data());
  kernels::cpu::relu_forward(n, af.data(), yf.data());
  CHECK(floats_of(y) == yf);  // exact: a ReLU of a bf16 value is one
  kernels::cpu::add_relu_forward(n, a.data(), b.data(), y.data());
  kernels::cpu::add_relu_forward(n, af.data(), bf.data(), yf.data());
  CHECK(y == bits_of(Tensor::from_vector(yf, {n})));  // the same float32 sum, rounded to nearest even
  int rounded = 0;
  for (int64_t i = 0; i < n; ++i) rounded += kernels::bf16_to_float(y[size_t(i)]) != yf[size_t(i)];
  CHECK(rounded > n / 4);  // the sums are not bf16 values: rounding happened

  const Tensor dy = random_normal({n}, 23);
  const std::vector<float> ybf = floats_of(y);
  for (bool overwrite : {false, true}) {
    std::vector<float> da(size_t(n), 0.5f), db(size_t(n), -0.5f), da_f = da, db_f = db;
    kernels::cpu::add_relu_backward(n, y.data(), dy.data(), da.data(), db.data(), overwrite, overwrite);
    kernels::cpu::add_relu_backward(n, ybf.data(), dy.data(), da_f.data(), db_f.data(), overwrite, overwrite);
    CHECK(da == da_f);
    CHECK(db == db_f);
    std::vector<float> dx(size_t(n), 0.25f), dx_f = dx;
    kernels::cpu::relu_backward(n, y.data(), dy.data(), dx.data(), overwrite);
    kernels::cpu::relu_backward(n, ybf.data(), dy.data(), dx_f.data(), overwrite);
    CHECK(dx == dx_f);
  }
  // the conversions: exact one way, round to nearest even (NaN kept) the other
  const std::vector<float> special = {0.0f, -0.0f, 1.0f + std::ldexp(1.0f, -8), 1.0f + 3 * std::ldexp(1.0f, -8),
                                      std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN(),
                                      std::numeric_limits<float>::denorm_min(), -3.0e38f};
  std::vector<uint16_t> sb(special.size());
  kernels::cpu::float32_to_bf16(int64_t(special.size()), special.data(), sb.data());
  CHECK(sb == bits_of(Tensor::from_vector(special, {int64_t(special.size())})));
  std::vector<float> back(special.size());
  kernels::cpu::bf16_to_float32(int64_t(sb.size()), sb.data(), back.data());
  CHECK(bits_of(Tensor::from_vector(back, {int64_t(back.size())})) == sb);  // exact (NaN != NaN: bits)
  CHECK(std::isnan(back[5]));
  CHECK(back[2] == 1.0f);                            // a tie, to even
  CHECK(back[3] == 1.0f + std::ldexp(1.0f, -6));     // a tie, to even (up)
}

TEST_CASE("bf16 activations through the ops: convolutions write them, element-wise ops keep them",
          "[bf16][ops]") {
  if (!convolutions_write_bf16()) return;
  // a residual block's ops: conv -> BN+ReLU -> conv -> BN -> add+ReLU(shortcut), in bf16 precision
  // with activations in bf16 (b) and in float32 (f), and in fp32 precision (e): the bf16 run keeps
  // its activations bf16 and channels-last, with float32 gradients, and is as close to fp32 as
  // bf16 precision with float32 activations is
  const Tensor x0 = random_normal({4, 16, 8, 8}, 31);
  const Tensor w1 = random_normal({16, 16, 3, 3}, 32, 0.12f), w2 = random_normal({16, 16, 3, 3}, 33, 0.12f);
  const Tensor g = random_tensor({16}, 34, 0.5f, 1.5f), bt = random_tensor({16}, 35, -0.2f, 0.2f);
  const Tensor head = random_normal({4, 16 * 8 * 8}, 36);
  struct Run {
    Tensor y, dx, dw1, dg;
    DType h_type;
    MemoryFormat h_format;
  };
  const auto run = [&](bool bf16_acts, bool fp32 = false) {
    Bf16Scope scope(bf16_acts);
    PrecisionGuard full(fp32 ? Precision::FP32 : Precision::BF16);
    Var x(x0.to_memory_format(kLast), true), v1(w1.clone(), true), v2(w2.clone(), true), gv(g.clone(), true),
        bv(bt.clone(), true);
    Tensor rm = Tensor::zeros({16}), rv = Tensor::full({16}, 1.0f);
    Tensor rm2 = Tensor::zeros({16}), rv2 = Tensor::full({16}, 1.0f);
    ops::BatchNormParams p;
    p.relu = true;
    Var stem = ops::conv2d(x, v1, Var(), {1, 1});  // x float32 in, the block's input
    Var h = ops::batch_norm(ops::conv2d(stem, v2, Var(), {1, 1}), gv, bv, rm, rv, p);
    p.relu = false;
    h = ops::batch_norm(ops::conv2d(h, v1, Var(), {1, 1}), gv, bv, rm2, rv2, p);
    Var out = ops::add_relu(h, stem);
    const DType type = out.value().dtype();
    const MemoryFormat format = out.value().memory_format();
    Var flat = ops::flatten(out);  // converts: float32 (N,C,H,W)
    backward(weighted_sum(flat, to_doubles(head)));
    return Run{flat.value(), x.grad().to_memory_format(MemoryFormat::Contiguous), v1.grad(), gv.grad(), type, format};
  };
  const Run b = run(true), f = run(false), e = run(false, true);
  CHECK(b.h_type == DType::BF16);
  CHECK(b.h_format == kLast);
  CHECK(f.h_type == DType::F32);
  CHECK(b.y.dtype() == DType::F32);
  CHECK(b.dx.dtype() == DType::F32);
  // the two runs round different intermediate values: compared against the output's scale
  require_close(b.y, f.y, 0, 0.05, "block output, bf16 vs float32 activations");
  CHECK(!compare_tensors(b.y, f.y, 0, 1e-6).ok());  // bf16 storage is not float32
  // Gradients against the float32 run's (e): bf16 convolutions alone are off by about 3% in
  // norm here (measured: 3.0% dx, 3.0% dw, 2.6% dgamma), bf16 activations add a little (3.8%,
  // 3.6%, 2.5%); a wrong gradient would be off by its own size.
  const auto rel = [](const Tensor& got, const Tensor& want) {
    const auto gv = got.to_vector(), wv = want.to_vector();
    double d = 0, n = 0;
    for (size_t i = 0; i < gv.size(); ++i) d += (gv[i] - wv[i]) * (gv[i] - wv[i]), n += double(wv[i]) * wv[i];
    return std::sqrt(d / n);
  };
  CHECK(rel(b.y, e.y) < 0.01);
  CHECK(rel(b.dx, e.dx) < 0.06);
  CHECK(rel(b.dw1, e.dw1) < 0.06);
  CHECK(rel(b.dg, e.dg) < 0.06);
  CHECK(rel(b.dx, e.dx) < 1.5 * rel(f.dx, e.dx) + 0.005);  // of bf16 precision's own error
  CHECK(rel(b.dw1, e.dw1) < 1.5 * rel(f.dw1, e.dw1) + 0.005);
}

TEST_CASE("ops given a bf16 activation compute what they compute on its float32 value", "[bf16][ops]") {
  if (!convolutions_write_bf16()) return;
  Bf16Scope scope(true);
  const Tensor x0 = random_normal({2, 16, 6, 6}, 41), w = random_normal({16, 16, 3, 3}, 42, 0.1f);
  Var conv = ops::conv2d(Var(x0.to_memory_format(kLast)), Var(w), Var(), {1, 1});
  REQUIRE(conv.value().dtype() == DType::BF16);
  const Tensor act = conv.value();                    // bf16, channels-last
  const Tensor as_float = act.to_float32();            // its exact float32 values
  CHECK(as_float.to_vector() == act.to_vector());
  CHECK(act.to_memory_format(MemoryFormat::Contiguous).dtype() == DType::F32);
  const Tensor w20 = random_normal({20, 16, 3, 3}, 43, 0.1f), other = random_normal({2, 16, 6, 6}, 44);
  using Op = std::function<Var(const Var&)>;
  const std::vector<std::pair<const char*, Op>> cases = {
      {"avg_pool2d", [](const Var& v) { return ops::avg_pool2d(v, {2, 2, 0}); }},
      {"max_pool2d", [](const Var& v) { return ops::max_pool2d(v, {3, 2, 1}); }},
      {"flatten", [](const Var& v) { return ops::flatten(v); }},
      {"add (float32 other)", [&](const Var& v) { return ops::add(v, Var(other)); }},
      {"add_relu (float32 other)", [&](const Var& v) { return ops::add_relu(v, Var(other)); }},
      {"conv2d unfolding (20 channels)", [&](const Var& v) { return ops::conv2d(v, Var(w20), Var(), {1, 1}); }},
      {"relu", [](const Var& v) { return ops::relu(v); }},
  };
  for (const auto& [name, op] : cases) {
    INFO(name);
    Var xb(act, true), xf(as_float, true);
    Var yb = op(xb);  // each graph taken back before the next is recorded (one tape)
    const Tensor dy = random_normal(yb.shape(), 45);
    backward(weighted_sum(yb, to_doubles(dy)));
    Var yf = op(xf);
    backward(weighted_sum(yf, to_doubles(dy)));
    require_close(yb.value().to_float32(), yf.value().to_float32(), 0, 0, "forward");
    REQUIRE(xb.grad().dtype() == DType::F32);
    require_close(xb.grad(), xf.grad(), 0, 0, "gradient");
  }
}
