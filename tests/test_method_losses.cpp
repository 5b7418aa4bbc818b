// The training methods' losses on their own (no PyTorch): finite differences of every backward
// (the attack seed, Consistency, SmoothMix to both logit sets), identities with the Gaussian
// objective, the clamp and underflow edges, argument errors and the registry entry.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "gradcheck.h"
#include "macer/objectives/attack_loss.h"
#include "macer/objectives/objectives.h"
#include "macer/objectives/smoothmix.h"

using namespace macer;
using namespace macer::testing;

namespace {

struct Dims {
  int B, k, C;
};

// Logits (B*k, C) of scale `std`, labels (B).
Tensor logits_of(const Dims& d, uint32_t seed, float std = 2.0f) { return random_normal({d.B * d.k, d.C}, seed, std); }
Tensor labels_of(const Dims& d, uint32_t seed) { return random_labels(d.B, d.C, seed); }

Tensor lam_of(int B, uint32_t seed) { return random_tensor({B}, seed, 0.0f, 0.5f); }

// Clean logits whose copies of every other image lean toward the label (by 5, or 12 over more
// classes than a std-2 row's maximum stays under): both indicator values.
Tensor leaning(const Dims& d, const Tensor& labels, uint32_t seed) {
  Tensor z = logits_of(d, seed);
  const float lean = d.C > 100 ? 12.0f : 5.0f;
  for (int b = 0; b < d.B; b += 2)
    for (int i = 0; i < d.k; ++i) z.data()[(int64_t(b) * d.k + i) * d.C + labels.data<int32_t>()[b]] += lean;
  return z;
}

bool all_finite(const Tensor& t) {
  for (float v : t.to_vector())
    if (!std::isfinite(v)) return false;
  return true;
}

// Central differences of the per-image attack loss: d loss[b] / dz for each checked element (each
// element belongs to one image), against the seed with scale 1. Every element when there are at
// most `max_elements`, else a random subset of that many.
void check_attack_seed_fd(const Tensor& z, const Tensor& y, int k, int64_t max_elements = 400) {
  AttackLossOutputs o = attack_loss(z, y, k);
  const int C = int(z.shape()[1]);
  // eps^2 truncation (~2e-5) and the float loss's rounding over 2 eps (~2e-5 at loss 10)
  const float eps = 1e-2f;
  std::vector<int64_t> elements;
  std::mt19937 rng(7);
  for (int64_t e = 0; e < z.numel(); ++e) elements.push_back(e);
  if (z.numel() > max_elements) {
    std::shuffle(elements.begin(), elements.end(), rng);
    elements.resize(size_t(max_elements));
  }
  int64_t bad = 0;
  for (int64_t e : elements) {
    Tensor zp = z.clone(), zm = z.clone();
    zp.data()[e] += eps, zm.data()[e] -= eps;
    const int64_t b = e / (int64_t(k) * C);
    const double lp = attack_loss(zp, y, k).loss.data()[b], lm = attack_loss(zm, y, k).loss.data()[b];
    const double fd = (lp - lm) / (double(zp.data()[e]) - double(zm.data()[e]));
    const double an = o.dlogits.data()[e];
    if (std::fabs(fd - an) > 6e-5 + 1e-2 * std::fabs(fd)) {
      if (bad++ < 3) WARN("element " << e << ": seed " << an << ", central difference " << fd);
    }
  }
  CHECK(bad == 0);
}

GradCheckOptions fd_options() {
  GradCheckOptions o;
  o.eps = 1e-2;
  o.rtol = 1e-2;
  o.atol = 3e-4;  // the float loss's rounding over 2 eps: ~1e-4 at |S| ~ 40
  o.max_elements = 96;
  return o;
}

}  // namespace

// ---- attack loss --------------------------------------------------------------------------

TEST_CASE("attack seed matches central differences of the per-image loss", "[attack_loss]") {
  for (Dims d : {Dims{4, 3, 7}, Dims{3, 1, 10}, Dims{2, 2, 1000}}) {
    INFO("B " << d.B << ", k " << d.k << ", C " << d.C);
    Tensor z = logits_of(d, 11 + d.C), y = labels_of(d, 12 + d.C);
    if (d.C == 1000) {  // seed rows sum to 0 (softmax Jacobian rows), the label's entries are <= 0
      AttackLossOutputs o = attack_loss(z, y, d.k);
      for (int r = 0; r < d.B * d.k; ++r) {
        double s = 0;
        for (int c = 0; c < d.C; ++c) s += o.dlogits.data()[r * d.C + c];
        CHECK(std::fabs(s) < 1e-6);
        CHECK(o.dlogits.data()[r * d.C + y.data<int32_t>()[r / d.k]] <= 0.0f);
      }
    }
    check_attack_seed_fd(z, y, d.k);
  }
}

TEST_CASE("attack seed: k = 1 is the cross-entropy gradient; scale multiplies it", "[attack_loss]") {
  Dims d{5, 1, 10};
  Tensor z = logits_of(d, 21), y = labels_of(d, 22);
  AttackLossOutputs o = attack_loss(z, y, 1);
  for (int b = 0; b < d.B; ++b) {
    const float* row = z.data() + b * d.C;
    double m = *std::max_element(row, row + d.C), s = 0;
    for (int c = 0; c < d.C; ++c) s += std::exp(double(row[c]) - m);
    const int yb = y.data<int32_t>()[b];
    CHECK(o.loss.data()[b] == Approx(m + std::log(s) - row[yb]).epsilon(1e-6));
    for (int c = 0; c < d.C; ++c) {
      const double p = std::exp(double(row[c]) - m) / s;
      CHECK(o.dlogits.data()[b * d.C + c] == Approx(p - (c == yb)).margin(1e-7));
    }
  }
  AttackLossOutputs half = attack_loss(z, y, 1, 0.5f);
  for (int64_t e = 0; e < z.numel(); ++e)
    CHECK(half.dlogits.data()[e] == Approx(0.5 * o.dlogits.data()[e]).margin(1e-8));
  CHECK(half.loss.to_vector() == o.loss.to_vector());
}

TEST_CASE("attack loss: the 1e-20 clamp gives -log 1e-20 and a zero seed; underflowing copies stay finite",
          "[attack_loss]") {
  const int k = 3, C = 10;
  std::vector<float> z(size_t(3) * k * C, 0.0f);
  auto at = [&](int b, int i, int c) -> float& { return z[(size_t(b) * k + i) * C + c]; };
  for (int i = 0; i < k; ++i) at(0, i, 0) = -60.0f;  // image 0: q ~ 1e-27: clamped
  at(1, 0, 1) = -200.0f;                             // image 1: copy 0's p_y under float, the others fine
  at(1, 1, 1) = -150.0f;
  for (int i = 0; i < k; ++i) at(2, i, 2) = -40.0f;  // image 2: q ~ 5e-19: not clamped
  AttackLossOutputs o = attack_loss(Tensor::from_vector(z, {3 * k, C}), Tensor::from_ints({0, 1, 2}, {3}), k);
  CHECK(all_finite(o.loss));
  CHECK(all_finite(o.dlogits));
  CHECK(o.loss.data()[0] == float(-std::log(1e-20)));
  for (int e = 0; e < k * C; ++e) CHECK(o.dlogits.data()[e] == 0.0f);
  // image 1: only copy 2 carries weight (w = 1): its seed is p - onehot; copies 0 and 1 are ~0
  CHECK(o.loss.data()[1] == Approx(std::log(3.0) + std::log(1.0 + 9.0 * 1.0)).epsilon(1e-6));
  CHECK(o.dlogits.data()[(1 * k + 2) * C + 1] == Approx(0.1 - 1.0).epsilon(1e-6));
  CHECK(std::fabs(o.dlogits.data()[(1 * k + 0) * C + 1]) < 1e-30);
  // image 2: q = e^-40 / (9 + e^-40) > 1e-20, so the seed is on: w_i = 1/3 on each copy
  CHECK(o.loss.data()[2] < 46.0f);
  CHECK(o.dlogits.data()[(2 * k + 0) * C + 2] == Approx(-1.0 / 3.0).epsilon(1e-6));
}

// ---- Consistency -------------------------------------------------------------------------

TEST_CASE("Consistency backward matches central differences", "[consistency]") {
  for (Dims d : {Dims{3, 2, 5}, Dims{2, 4, 7}, Dims{3, 1, 6}, Dims{1, 2, 1000}}) {
    INFO("B " << d.B << ", k " << d.k << ", C " << d.C);
    Tensor y = labels_of(d, 31 + d.C);
    for (auto [lambda, eta] : {std::pair{10.0f, 0.5f}, std::pair{2.0f, 3.0f}}) {
      INFO("lambda " << lambda << ", eta " << eta);
      check_gradients([&](const std::vector<Var>& v) { return consistency_loss(v[0], y, d.k, lambda, eta).loss; },
                      {logits_of(d, 32 + d.C)}, {}, fd_options());
    }
  }
}

TEST_CASE("Consistency with lambda = eta = 0 is the Gaussian objective; with k = 1, CE + eta H(p)", "[consistency]") {
  Dims d{4, 3, 6};
  Tensor z = logits_of(d, 41), y = labels_of(d, 42);
  Var a(z.clone(), true), g(z.clone(), true);
  Var la = consistency_loss(a, y, d.k, 0.0f, 0.0f).loss;
  backward(la);  // backward runs the whole tape: one loss at a time
  Var lg = gaussian_loss(g, y, d.k);
  backward(lg);
  CHECK(la.value().item() == Approx(lg.value().item()).epsilon(1e-6));
  for (int64_t e = 0; e < z.numel(); ++e) CHECK(a.grad().data()[e] == Approx(g.grad().data()[e]).margin(1e-7));

  Dims d1{3, 1, 6};
  Tensor z1 = logits_of(d1, 43), y1 = labels_of(d1, 44);
  ConsistencyOutputs o = consistency_loss(Var(z1), y1, 1, 10.0f, 0.5f);
  for (int b = 0; b < d1.B; ++b) {
    const float* row = z1.data() + b * d1.C;
    double m = *std::max_element(row, row + d1.C), s = 0, h = 0;
    for (int c = 0; c < d1.C; ++c) s += std::exp(row[c] - m);
    for (int c = 0; c < d1.C; ++c) {
      const double p = std::exp(row[c] - m) / s;
      h -= p * std::log(p);
    }
    CHECK(o.ce.data()[b] == Approx(m + std::log(s) - row[y1.data<int32_t>()[b]]).epsilon(1e-6));
    CHECK(o.reg.data()[b] == Approx(0.5 * h).epsilon(1e-6));  // KL(p || p) = 0
  }
}

TEST_CASE("Consistency stays finite and exact-differentiable where pbar underflows", "[consistency]") {
  // Rows 0 at one class and -30 .. -300 elsewhere: pbar under the entropy clamp and under float.
  const int k = 2, C = 6;
  std::vector<float> z = {0,    -30,  -60, -90, -200, -300, -25,  0,    -70, -95, -210, -280,
                          -300, -290, 0,   -35, -33,  -31,  -300, -290, 0,   -35, -33,  -31};
  Tensor zt = Tensor::from_vector(z, {2 * k, C}), y = Tensor::from_ints({0, 2}, {2});
  ConsistencyOutputs o = consistency_loss(Var(zt), y, k, 10.0f, 0.5f);
  CHECK(all_finite(o.loss.value()));
  CHECK(all_finite(o.reg));
  // image 1's copies are equal: KL = 0, and H is finite and small
  CHECK(o.reg.data()[1] >= 0.0f);
  CHECK(o.reg.data()[1] < 1e-10f);
  GradCheckOptions opt = fd_options();
  opt.eps = 1e-3;  // the terms reach ~ lambda * 300: small steps
  check_gradients([&](const std::vector<Var>& v) { return consistency_loss(v[0], y, k, 10.0f, 0.5f).loss; }, {zt}, {},
                  opt);
}

// ---- SmoothMix ---------------------------------------------------------------------------

TEST_CASE("SmoothMix backward matches central differences, to the clean and the mixed logits", "[smoothmix]") {
  for (Dims d : {Dims{4, 2, 5}, Dims{3, 4, 7}, Dims{4, 1, 6}, Dims{2, 2, 1000}}) {
    INFO("B " << d.B << ", k " << d.k << ", C " << d.C);
    Tensor y = labels_of(d, 51 + d.C), lam = lam_of(d.B, 52 + d.C);
    Tensor zc = leaning(d, y, 53 + d.C), zm = logits_of(d, 54 + d.C);
    SmoothMixOutputs o = smoothmix_loss(Var(zc), Var(zm), y, lam, d.k, 5.0f);
    const std::vector<float> ind = o.correct.to_vector();
    REQUIRE(std::count(ind.begin(), ind.end(), 1.0f) > 0);
    check_gradients([&](const std::vector<Var>& v) { return smoothmix_loss(v[0], v[1], y, lam, d.k, 5.0f).loss; },
                    {zc, zm}, {}, fd_options());
    // one side alone: the other gets a scratch gradient, this one the same values
    Var c1(zc.clone(), true), m1(zm.clone(), false), c2(zc.clone(), true), m2(zm.clone(), true);
    backward(smoothmix_loss(c1, m1, y, lam, d.k, 5.0f).loss);
    backward(smoothmix_loss(c2, m2, y, lam, d.k, 5.0f).loss);
    CHECK(c1.grad().to_vector() == c2.grad().to_vector());
    CHECK_FALSE(m1.grad().defined());
  }
}

TEST_CASE("SmoothMix: eta_w = 0 or no correct image is the Gaussian loss on the clean copies", "[smoothmix]") {
  Dims d{4, 3, 6};
  Tensor y = labels_of(d, 61), lam = lam_of(d.B, 62), zc = leaning(d, y, 63), zm = logits_of(d, 64);
  Var c(zc.clone(), true), m(zm.clone(), true), g(zc.clone(), true);
  SmoothMixOutputs o = smoothmix_loss(c, m, y, lam, d.k, 0.0f);
  backward(o.loss);  // backward runs the whole tape: one loss at a time
  Var lg = gaussian_loss(g, y, d.k);
  backward(lg);
  CHECK(o.loss.value().item() == Approx(lg.value().item()).epsilon(1e-6));
  for (int64_t e = 0; e < zc.numel(); ++e) CHECK(c.grad().data()[e] == Approx(g.grad().data()[e]).margin(1e-7));
  for (float v : m.grad().to_vector()) CHECK(v == 0.0f);

  // labels that the clean copies never pick: the indicator is 0 everywhere, the mixup term off
  Dims w{3, 2, 4};
  Tensor zw = Tensor::from_vector({5, 0, 0, 0, 4, 1, 0, 0, 0, 6, 0, 0, 0, 5, 1, 0, 0, 0, 7, 0, 0, 1, 6, 0}, {6, 4});
  Tensor yw = Tensor::from_ints({3, 3, 1}, {3});
  SmoothMixOutputs ow = smoothmix_loss(Var(zw), Var(logits_of(w, 65)), yw, lam_of(3, 66), 2, 5.0f);
  CHECK(ow.correct.to_vector() == std::vector<float>{0, 0, 0});
  CHECK(ow.mix.to_vector() == std::vector<float>{0, 0, 0});
  CHECK(ow.loss.value().item() == Approx(gaussian_loss(Var(zw), yw, 2).value().item()).epsilon(1e-6));
}

TEST_CASE("SmoothMix: argmax ties go to the lowest class; lam = 1 makes the target uniform", "[smoothmix]") {
  // all-equal clean logits: pbar uniform, argmax class 0
  Tensor zc = Tensor::zeros({4, 5}), zm = random_normal({4, 5}, 71);
  SmoothMixOutputs o =
      smoothmix_loss(Var(zc), Var(zm), Tensor::from_ints({0, 1}, {2}), Tensor::from_vector({1.0f, 0.3f}, {2}), 2, 1.0f);
  CHECK(o.correct.to_vector() == std::vector<float>{1, 0});
  // image 0 with lam = 1: t = 1/C, mix = mean_i KL(uniform || q_i) = mean_i (-log C - (1/C) sum_c log q_ic)
  double want = 0;
  for (int i = 0; i < 2; ++i) {
    const float* row = zm.data() + i * 5;
    double m = *std::max_element(row, row + 5), s = 0, mean_lq = 0;
    for (int c = 0; c < 5; ++c) s += std::exp(row[c] - m);
    for (int c = 0; c < 5; ++c) mean_lq += (row[c] - m - std::log(s)) / 5;
    want += (-std::log(5.0) - mean_lq) / 2;
  }
  CHECK(o.mix.data()[0] == Approx(want).epsilon(1e-6));
}

// ---- arguments and registry ----------------------------------------------------------------

TEST_CASE("the method losses reject bad arguments with one clear message", "[objectives]") {
  Tensor z = random_normal({6, 4}, 81), y = Tensor::from_ints({0, 1, 2}, {3}), lam = Tensor::full({3}, 0.25f);
  CHECK_THROWS_WITH(attack_loss(z, y, 4), Catch::Contains("attack_loss") && Catch::Contains("copies"));
  CHECK_THROWS_WITH(attack_loss(z, Tensor::from_ints({0, 4, 1}, {3}), 2), Catch::Contains("label 4"));
  CHECK_THROWS_WITH(attack_loss(z, y, 2, NAN), Catch::Contains("scale"));
  CHECK_THROWS_WITH(consistency_loss(Var(z), y, 2, INFINITY, 0.5f), Catch::Contains("lambda"));
  CHECK_THROWS_WITH(consistency_loss(Var(z), y, 0, 1.0f, 0.5f), Catch::Contains("consistency_loss"));
  CHECK_THROWS_WITH(smoothmix_loss(Var(z), Var(random_normal({6, 5}, 82)), y, lam, 2, 1.0f),
                    Catch::Contains("mixed logits"));
  CHECK_THROWS_WITH(smoothmix_loss(Var(z), Var(z), y, Tensor::full({2}, 0.25f), 2, 1.0f), Catch::Contains("lam"));
  CHECK_THROWS_WITH(smoothmix_loss(Var(z), Var(z), y, Tensor::full({3}, 1.5f), 2, 1.0f), Catch::Contains("lam 1.5"));
  CHECK_THROWS_WITH(smoothmix_loss(Var(z), Var(z), y, lam, 2, -1.0f), Catch::Contains("eta_w"));
}

TEST_CASE("the registry's consistency entry is consistency_loss, its terms as cl and rl", "[objectives]") {
  Dims d{3, 2, 5};
  Tensor z = logits_of(d, 91), y = labels_of(d, 92);
  ObjectiveHyper h;
  h.lambda = 10.0f, h.eta = 0.5f;
  ObjectiveResult r = objective_by_name("consistency")(Var(z), y, d.k, h);
  ConsistencyOutputs c = consistency_loss(Var(z), y, d.k, 10.0f, 0.5f);
  CHECK(r.loss.value().item() == c.loss.value().item());
  CHECK(r.cl.to_vector() == c.ce.to_vector());
  CHECK(r.rl.to_vector() == c.reg.to_vector());
  CHECK_FALSE(r.active.defined());
}
