// The op-test harness (header-only): seeded random tensors, tensor comparison reporting the
// worst element, and central finite-difference gradient checks of any function of Vars.
//
// gradient check: the scalar is S = sum(out * W) with W fixed random weights; backward() gives
// dS/dx for every input; the reference perturbs each checked element by +-eps, re-runs the
// forward without recording and takes (S+ - S-) / 2eps, S summed in double. Elements pass when
// |analytic - numeric| <= atol + rtol * |numeric|. Big inputs are checked on a random subset.
#pragma once
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "kernels/elementwise.h"

namespace macer::testing {

inline Tensor random_tensor(const Shape& shape, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  Tensor t = Tensor::empty(shape);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = dist(rng);
  return t;
}

// Values at least `gap` apart in random order: no ties and no kinks within eps (max pool, relu).
inline Tensor spaced_tensor(const Shape& shape, uint64_t seed, float gap = 0.05f) {
  Tensor t = Tensor::empty(shape);
  std::vector<int64_t> order(t.numel());
  for (int64_t i = 0; i < t.numel(); ++i) order[i] = i;
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  float offset = -gap * float(t.numel()) / 2.0f + gap / 2.0f;  // symmetric, never exactly 0
  for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = offset + gap * float(order[i]);
  return t;
}

// Checks |a - b| <= atol + rtol |b| elementwise; on failure reports the worst element.
inline void require_close(const Tensor& a, const Tensor& b, double rtol, double atol, const std::string& what = "") {
  REQUIRE(a.shape() == b.shape());
  std::vector<float> x = a.to_vector(), y = b.to_vector();
  double worst = 0;
  int64_t at = -1;
  for (size_t i = 0; i < x.size(); ++i) {
    double excess = std::fabs(double(x[i]) - y[i]) - (atol + rtol * std::fabs(double(y[i])));
    if (!(excess <= worst)) {  // also catches NaN
      worst = std::isnan(excess) ? INFINITY : excess;
      at = int64_t(i);
    }
  }
  INFO(what << ": worst element " << at << ": " << (at >= 0 ? x[size_t(at)] : 0.f) << " vs "
            << (at >= 0 ? y[size_t(at)] : 0.f) << " (rtol " << rtol << ", atol " << atol << ")");
  CHECK(at < 0);
}

// S = sum(out * w) as a differentiable op on the CPU (the root of a gradient check).
inline Var weighted_sum(const Var& out, const Tensor& w) {
  const float* o = out.value().data();
  double s = 0;
  for (int64_t i = 0; i < w.numel(); ++i) s += double(o[i]) * w.data()[i];
  Var result(Tensor::full({1}, float(s)), out.requires_grad());
  if (out.requires_grad())
    record([=]() {
      float g = result.grad().data()[0];
      float* d = out.grad_buffer().data();
      for (int64_t i = 0; i < w.numel(); ++i) d[i] += g * w.data()[i];
    });
  return result;
}

struct GradCheck {
  double eps = 1e-2;
  double rtol = 2e-2;
  double atol = 2e-3;
  int64_t max_elements = 60;  // per input: all when smaller, else a random subset
};

// f maps Vars (inputs, in order) to one output Var. Every input that requires a gradient is
// compared element by element with central differences; returns one line per mismatch.
inline std::vector<std::string> gradient_mismatches(const std::function<Var(const std::vector<Var>&)>& f, std::vector<Tensor> inputs,
                            const std::vector<bool>& needs_grad, GradCheck opt = {}, uint64_t seed = 99) {
  std::vector<Var> vars;
  for (size_t i = 0; i < inputs.size(); ++i) vars.emplace_back(inputs[i], needs_grad[i]);
  Var out = f(vars);
  Tensor w = random_tensor(out.shape(), seed + 1);
  backward(weighted_sum(out, w));
  auto scalar = [&]() {
    NoGradGuard no_grad;
    std::vector<Var> plain;
    for (auto& t : inputs) plain.emplace_back(t, false);
    Tensor o = f(plain).value();
    double s = 0;
    for (int64_t i = 0; i < o.numel(); ++i) s += double(o.data()[i]) * w.data()[i];
    return s;
  };
  std::mt19937_64 rng(seed);
  std::vector<std::string> mismatches;
  for (size_t k = 0; k < inputs.size(); ++k) {
    if (!needs_grad[k]) continue;
    Tensor analytic = vars[k].grad_buffer();
    int64_t n = inputs[k].numel();
    std::vector<int64_t> idx;
    for (int64_t i = 0; i < n; ++i) idx.push_back(i);
    std::shuffle(idx.begin(), idx.end(), rng);
    if (int64_t(idx.size()) > opt.max_elements) idx.resize(size_t(opt.max_elements));
    for (int64_t i : idx) {
      float* p = inputs[k].data() + i;
      float keep = *p;
      *p = keep + float(opt.eps);
      double plus = scalar();
      *p = keep - float(opt.eps);
      double minus = scalar();
      *p = keep;
      double numeric = (plus - minus) / (2 * opt.eps);
      double a = analytic.data()[i];
      if (!(std::fabs(a - numeric) <= opt.atol + opt.rtol * std::fabs(numeric)))
        mismatches.push_back("input " + std::to_string(k) + " element " + std::to_string(i) + ": analytic " +
                             std::to_string(a) + ", numeric " + std::to_string(numeric));
    }
  }
  return mismatches;
}

inline void check_gradients(const std::function<Var(const std::vector<Var>&)>& f, std::vector<Tensor> inputs,
                            const std::vector<bool>& needs_grad, GradCheck opt = {}, uint64_t seed = 99) {
  std::vector<std::string> bad = gradient_mismatches(f, std::move(inputs), needs_grad, opt, seed);
  std::string first = bad.empty() ? "" : bad.front();
  INFO(bad.size() << " mismatching elements; first: " << first);
  CHECK(bad.empty());
}

}  // namespace macer::testing
