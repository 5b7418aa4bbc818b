// The op-test harness (header-only, Catch2): seeded random tensors, tensor comparison that
// reports the worst element, and central finite-difference gradient checks of functions of Vars.
//
// Random inputs (std::mt19937, seeded: every run sees the same values)
//   random_tensor(shape, seed, lo, hi)   uniform in [lo, hi)
//   random_normal(shape, seed, std)      N(0, std^2)
//   spaced_tensor(shape, seed, gap)      distinct values at least `gap` apart, in random order,
//                                        none within gap/2 of 0: no ties and no kinks within
//                                        eps < gap/2 (relu, max pool: STYLE.md "kink")
//   random_labels(n, classes, seed)      int32 labels in [0, classes)
//
// Comparison (any device; F32, F64, I32 or I64)
//   compare_tensors(got, want, rtol, atol) -> Closeness: elements with
//     |got - want| > atol + rtol |want| (NaN counts as outside), the worst one and a message
//   require_close(got, want, rtol, atol, what): a Catch2 CHECK of the above
//
// Gradient check
//   f maps input Vars (in order) to one output Var of any shape. The checked scalar is
//   S = sum(out * W), W fixed random weights of magnitude 1.25..2.25 and random sign: never near
//   0, so no part of the output escapes the check, and never near 1, so an op that ignores the
//   gradient flowing into it (a scalar loss taking dloss as 1) fails. backward(S) gives the analytic dS/dx for
//   every input with needs_grad; each checked element is then moved by +-eps and S re-evaluated
//   without recording, summed in double: numeric = (S+ - S-) / (x+ - x-), x+- the float values
//   actually stored. An element passes when |analytic - numeric| <= atol + rtol |numeric|.
//   Inputs larger than max_elements are checked on a random subset.
//   - f must be deterministic: an op that draws noise must re-seed inside f (same seed every
//     call), so the check measures the function and not the generator.
//   - f may update state (batch-norm running statistics); the output must not depend on it.
//   - the check starts by clearing this thread's autograd tape.
//   - options.device = Device::CUDA runs f on the GPU (inputs are copied there, perturbed on
//     the host and copied again); the harness itself needs nothing but Tensor copies.
//   gradient_check(...) returns the counts and mismatch lines (to test that a check can fail);
//   check_gradients(...) wraps it in a CHECK.
#pragma once
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/precision.h"

#include "engine/autograd.h"

namespace macer::testing {

// ---- random inputs ----------------------------------------------------------------------

inline Tensor random_tensor(const Shape& shape, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  Tensor t = Tensor::empty(shape);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  float* p = t.data();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = dist(rng);
  return t;
}

inline Tensor random_normal(const Shape& shape, uint32_t seed, float stddev = 1.0f) {
  Tensor t = Tensor::empty(shape);
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  float* p = t.data();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = dist(rng);
  return t;
}

// Values offset + gap * (a permutation of 0..n-1), centred on 0 with 0 itself midway between
// two values: pairwise at least `gap` apart and at least gap/2 from the relu kink.
inline Tensor spaced_tensor(const Shape& shape, uint32_t seed, float gap = 0.05f) {
  Tensor t = Tensor::empty(shape);
  const int64_t n = t.numel();
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[size_t(i)] = i;
  std::mt19937 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  // n even: values +-gap/2, +-3gap/2, ...; n odd: shift by gap/2 so 0 is still avoided.
  const float offset = -gap * float(n / 2) + gap / 2.0f;
  for (int64_t i = 0; i < n; ++i) t.data()[i] = offset + gap * float(order[size_t(i)]);
  return t;
}

inline Tensor random_labels(int64_t n, int classes, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> dist(0, classes - 1);
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (int32_t& x : v) x = dist(rng);
  return Tensor::from_ints(v, {n});
}

// ---- comparison -------------------------------------------------------------------------

// Host copy of any tensor's values as doubles.
inline std::vector<double> to_doubles(const Tensor& t) {
  // in logical (N,C,H,W) order whatever the memory format
  Tensor h = (t.device() == Device::CPU ? t : t.to(Device::CPU)).to_memory_format(MemoryFormat::Contiguous);
  std::vector<double> out(static_cast<size_t>(h.numel()));
  for (size_t i = 0; i < out.size(); ++i) {
    switch (h.dtype()) {
      case DType::F32: out[i] = h.data<float>()[i]; break;
      case DType::F64: out[i] = h.data<double>()[i]; break;
      case DType::I32: out[i] = h.data<int32_t>()[i]; break;
      case DType::I64: out[i] = double(h.data<int64_t>()[i]); break;
      case DType::BF16: out[i] = kernels::bf16_to_float(h.data<uint16_t>()[i]); break;  // not reached: converted above
    }
  }
  return out;
}

struct Closeness {
  int64_t bad = 0;     // elements outside tolerance
  int64_t worst = -1;  // index of the largest excess over tolerance (-1: empty tensors)
  double got = 0, want = 0;
  std::string message;
  bool ok() const { return bad == 0; }
};

inline Closeness compare_tensors(const Tensor& got, const Tensor& want, double rtol, double atol) {
  Closeness r;
  if (got.shape() != want.shape()) {
    r.bad = std::max<int64_t>(1, want.numel());
    r.message = "shapes " + shape_string(got.shape()) + " and " + shape_string(want.shape());
    return r;
  }
  std::vector<double> g = to_doubles(got), w = to_doubles(want);
  double worst_excess = -std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < g.size(); ++i) {
    double excess = std::fabs(g[i] - w[i]) - (atol + rtol * std::fabs(w[i]));
    if (std::isnan(excess)) excess = std::numeric_limits<double>::infinity();
    if (excess > 0) ++r.bad;
    if (excess > worst_excess) worst_excess = excess, r.worst = int64_t(i);
  }
  std::ostringstream msg;
  msg.precision(9);
  msg << r.bad << " of " << g.size() << " elements outside |got - want| <= " << atol << " + " << rtol
      << " |want|";
  if (r.worst >= 0) {
    r.got = g[size_t(r.worst)], r.want = w[size_t(r.worst)];
    msg << "; worst at flat index " << r.worst << ": got " << r.got << ", want " << r.want;
  }
  r.message = msg.str();
  return r;
}

inline void require_close(const Tensor& got, const Tensor& want, double rtol, double atol,
                          const std::string& what = "") {
  Closeness c = compare_tensors(got, want, rtol, atol);
  INFO(what << ": " << c.message);
  CHECK(c.ok());
}

// ---- gradient check ---------------------------------------------------------------------

using VarFunction = std::function<Var(const std::vector<Var>&)>;

struct GradCheckOptions {
  double eps = 1e-2;
  double rtol = 2e-2;
  double atol = 2e-3;
  int64_t max_elements = 64;  // per input: all when smaller, else a random subset
  uint32_t seed = 99;         // the weights W and the subsets
  Device device = Device::CPU;
};

struct GradCheckResult {
  int64_t checked = 0, failed = 0;
  std::vector<std::string> mismatches;  // "input k element i: analytic a, numeric n"
  std::string summary() const {
    return std::to_string(failed) + " of " + std::to_string(checked) + " gradient elements mismatch" +
           (mismatches.empty() ? "" : "; first: " + mismatches.front());
  }
};

// S = sum(out * w) as a differentiable op on any device (host arithmetic, explicit copies).
inline Var weighted_sum(const Var& out, const std::vector<double>& w) {
  std::vector<double> o = to_doubles(out.value());
  double s = 0;
  for (size_t i = 0; i < o.size(); ++i) s += o[i] * w[i];
  Var result(Tensor::full({1}, float(s), out.device()), out.requires_grad());
  if (out.requires_grad())
    record([=]() {
      const double g = to_doubles(result.grad())[0];
      Tensor& dout = out.grad_buffer();
      std::vector<double> prev = to_doubles(dout);
      Tensor add = Tensor::empty(dout.shape());
      for (size_t i = 0; i < w.size(); ++i) add.data()[i] = float(prev[i] + g * w[i]);
      dout.copy_from(add.to_memory_format(dout.memory_format()));  // add is in logical order
    });
  return result;
}

// needs_grad empty: every input is checked.
inline GradCheckResult gradient_check(const VarFunction& f, const std::vector<Tensor>& inputs,
                                      std::vector<bool> needs_grad = {}, GradCheckOptions opt = {}) {
  if (needs_grad.empty()) needs_grad.assign(inputs.size(), true);
  REQUIRE(needs_grad.size() == inputs.size());
  // Private copies: host ones to perturb, and what f sees (the same storage on the CPU).
  std::vector<Tensor> host, used;
  for (const Tensor& t : inputs) {
    host.push_back(t.to(Device::CPU));
    used.push_back(opt.device == Device::CPU ? host.back() : t.to(opt.device));
  }
  std::vector<Var> vars;
  for (size_t i = 0; i < used.size(); ++i) vars.emplace_back(used[i], bool(needs_grad[i]));
  clear_tape();
  Var out = f(vars);
  REQUIRE(out.requires_grad());

  // W: random sign times a magnitude in [1.25, 2.25).
  std::mt19937 rng(opt.seed);
  std::uniform_real_distribution<double> mag(1.25, 2.25);
  std::vector<double> w(static_cast<size_t>(out.value().numel()));
  for (double& v : w) v = (rng() & 1 ? 1.0 : -1.0) * mag(rng);
  backward(weighted_sum(out, w));

  auto evaluate = [&]() {  // S at the current (perturbed) inputs, in double
    NoGradGuard no_grad;
    std::vector<Var> plain;
    for (const Tensor& t : used) plain.emplace_back(t, false);
    std::vector<double> o = to_doubles(f(plain).value());
    double s = 0;
    for (size_t i = 0; i < o.size(); ++i) s += o[i] * w[i];
    return s;
  };

  GradCheckResult result;
  for (size_t k = 0; k < inputs.size(); ++k) {
    if (!needs_grad[k]) continue;
    std::vector<double> analytic = to_doubles(vars[k].grad_buffer());
    std::vector<int64_t> idx(static_cast<size_t>(host[k].numel()));
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = int64_t(i);
    std::shuffle(idx.begin(), idx.end(), rng);
    if (int64_t(idx.size()) > opt.max_elements) idx.resize(size_t(opt.max_elements));
    for (int64_t i : idx) {
      float* p = host[k].data() + i;
      const float keep = *p;
      const float xp = float(keep + opt.eps), xm = float(keep - opt.eps);
      *p = xp;
      if (opt.device != Device::CPU) used[k].copy_from(host[k]);
      const double plus = evaluate();
      *p = xm;
      if (opt.device != Device::CPU) used[k].copy_from(host[k]);
      const double minus = evaluate();
      *p = keep;
      if (opt.device != Device::CPU) used[k].copy_from(host[k]);
      const double numeric = (plus - minus) / (double(xp) - double(xm));
      const double a = analytic[size_t(i)];
      ++result.checked;
      if (!(std::fabs(a - numeric) <= opt.atol + opt.rtol * std::fabs(numeric))) {
        ++result.failed;
        std::ostringstream line;
        line << "input " << k << " element " << i << ": analytic " << a << ", numeric " << numeric;
        result.mismatches.push_back(line.str());
      }
    }
  }
  return result;
}

inline void check_gradients(const VarFunction& f, const std::vector<Tensor>& inputs,
                            std::vector<bool> needs_grad = {}, GradCheckOptions opt = {}) {
  GradCheckResult r = gradient_check(f, inputs, std::move(needs_grad), opt);
  INFO(r.summary());
  CHECK(r.checked > 0);
  CHECK(r.failed == 0);
}

}  // namespace macer::testing
