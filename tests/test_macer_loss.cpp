// Tests of the MACER and Gaussian objectives (kernels/cpu/macer_loss.cpp, macer/objectives) and
// of macer/schedule: a plain double implementation, finite differences, the PyTorch golden file.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "engine/safetensors.h"
#include "kernels/macer_loss.h"
#include "macer/objectives/objectives.h"
#include "macer/train/schedule.h"

using namespace macer;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// One MACER problem: logits (B*k, C) and labels (B) on the host.
struct Problem {
  int B, k, C;
  MacerHyper h;
  std::vector<float> z;
  std::vector<int32_t> y;
  kernels::MacerLossParams params() const { return {B, k, C, h.sigma, h.lambda, h.beta, h.gamma}; }
};

// ---- the double-precision implementation, written from SPEC.md independently of the op ----

// Phi^-1 by bisection on Phi(u) = erfc(-u / sqrt 2) / 2 (no Boost), the upper half by symmetry.
double ref_inv_phi(double q) {
  if (q <= 0) return -kInf;
  if (q >= 1) return kInf;
  if (q > 0.5) return -ref_inv_phi(1.0 - q);
  double lo = -40, hi = 0;
  for (int i = 0; i < 200; ++i) {
    double mid = 0.5 * (lo + hi);
    if (0.5 * std::erfc(-mid / std::sqrt(2.0)) < q)
      lo = mid;
    else
      hi = mid;
  }
  return 0.5 * (lo + hi);
}

std::vector<double> ref_softmax(const double* z, int C, double scale) {
  double m = -kInf, sum = 0;
  for (int c = 0; c < C; ++c) m = std::max(m, scale * z[c]);
  std::vector<double> s(C);
  for (int c = 0; c < C; ++c) sum += s[c] = std::exp(scale * z[c] - m);
  for (double& v : s) v /= sum;
  return s;
}

struct Ref {
  double loss = 0;
  std::vector<double> cl, rl, q1, q2, dz;
  std::vector<int> active, c1, c2;
};

// round_q: q is a float quantity as the op's contract has it (q1 may round to 1); off for
// finite differences, which need a smooth function.
Ref ref_macer(const Problem& pb, const std::vector<double>& z, bool round_q) {
  const int B = pb.B, k = pb.k, C = pb.C;
  const double beta = pb.h.beta, sigma = pb.h.sigma, lambda = pb.h.lambda, gamma = pb.h.gamma;
  Ref r;
  r.dz.assign(z.size(), 0.0);
  double sum_cl = 0, sum_rl = 0;
  for (int b = 0; b < B; ++b) {
    std::vector<std::vector<double>> s(k), t(k);
    std::vector<double> p(C, 0.0), q(C, 0.0);
    for (int j = 0; j < k; ++j) {
      s[j] = ref_softmax(&z[size_t(b * k + j) * C], C, 1.0);
      t[j] = ref_softmax(&z[size_t(b * k + j) * C], C, beta);
      for (int c = 0; c < C; ++c) p[c] += s[j][c] / k, q[c] += t[j][c] / k;
    }
    if (round_q)
      for (double& v : q) v = double(float(v));
    const int y = pb.y[b];
    double cl = -std::log(p[y] + 1e-10);
    int c1 = 0;
    for (int c = 1; c < C; ++c)
      if (q[c] > q[c1]) c1 = c;  // first maximum: the lower class on ties
    int c2 = -1;
    for (int c = 0; c < C; ++c)
      if (c != c1 && (c2 < 0 || q[c] > q[c2])) c2 = c;
    double xi = c2 < 0 ? kInf : ref_inv_phi(q[c1]) - ref_inv_phi(q[c2]);
    bool active = c1 == y && std::isfinite(xi) && xi <= gamma;
    double rl = active ? sigma / 2 * (gamma - xi) : 0.0;
    r.cl.push_back(cl), r.rl.push_back(rl), r.active.push_back(active);
    r.c1.push_back(c1), r.c2.push_back(c2);
    r.q1.push_back(q[c1]), r.q2.push_back(c2 < 0 ? 0.0 : q[c2]);
    sum_cl += cl, sum_rl += rl;
    // Gradient: d/dz of -log(p_y + 1e-10) / B and of lambda sigma/2 (gamma - u1 + u2) / B.
    double dp = -1.0 / (B * (p[y] + 1e-10));
    double dq1 = 0, dq2 = 0;
    if (active) {
      auto inv_density = [](double u) { return std::sqrt(2 * 3.141592653589793) * std::exp(u * u / 2); };
      dq1 = -lambda * sigma / (2 * B) * inv_density(ref_inv_phi(q[c1]));
      dq2 = lambda * sigma / (2 * B) * inv_density(ref_inv_phi(q[c2]));
    }
    for (int j = 0; j < k; ++j)
      for (int c = 0; c < C; ++c) {
        // d s_y / d z_c = s_y ([c==y] - s_c);  d t_m / d z_c = beta t_m ([c==m] - t_c)
        double g = dp / k * s[j][y] * ((c == y) - s[j][c]);
        if (active)
          g += dq1 / k * beta * t[j][c1] * ((c == c1) - t[j][c]) +
               dq2 / k * beta * t[j][c2] * ((c == c2) - t[j][c]);
        r.dz[size_t(b * k + j) * C + c] = g;
      }
  }
  r.loss = (sum_cl + lambda * sum_rl) / B;
  return r;
}

std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// ---- the op under test, called directly ----------------------------------------------------

struct Out {
  float loss;
  std::vector<float> cl, rl, active, q1, q2, p_label, dz;
  std::vector<int32_t> c1, c2;
};

Out run_op(const Problem& pb, float dloss = 1.0f, float dz_init = 0.0f) {
  Out o;
  const size_t B = size_t(pb.B);
  o.cl.resize(B), o.rl.resize(B), o.active.resize(B), o.q1.resize(B), o.q2.resize(B);
  o.p_label.resize(B), o.c1.resize(B), o.c2.resize(B);
  o.dz.assign(pb.z.size(), dz_init);
  kernels::MacerSaved saved{o.p_label.data(), o.q1.data(), o.q2.data(), o.c1.data(), o.c2.data(),
                            o.active.data()};
  kernels::MacerLossParams p = pb.params();
  kernels::cpu::macer_loss_forward(p, pb.z.data(), pb.y.data(), &o.loss, o.cl.data(), o.rl.data(), saved);
  kernels::cpu::macer_loss_backward(p, pb.z.data(), pb.y.data(), saved, &dloss, o.dz.data());
  return o;
}

bool all_finite(const Out& o) {
  auto ok = [](const std::vector<float>& v) {
    return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
  };
  return std::isfinite(o.loss) && ok(o.cl) && ok(o.rl) && ok(o.dz);
}

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

// Forward and backward of the op against the double implementation. The op works in double
// and rounds p[y], q to float, so it agrees to a few float ulps: tolerances 1e-5 relative.
void check_against_ref(const Problem& pb) {
  Out o = run_op(pb);
  Ref r = ref_macer(pb, to_double(pb.z), true);
  REQUIRE(all_finite(o));
  CHECK(o.loss == Approx(r.loss).epsilon(1e-5).margin(1e-6));
  for (int b = 0; b < pb.B; ++b) {
    INFO("input " << b << " label " << pb.y[b] << " q1 " << r.q1[b] << " q2 " << r.q2[b]);
    CHECK(o.active[b] == float(r.active[b]));
    CHECK(o.c1[b] == r.c1[b]);
    CHECK(o.c2[b] == r.c2[b]);
    CHECK(double(o.q1[b]) == r.q1[b]);  // both are the float rounding of the same mean
    CHECK(double(o.q2[b]) == r.q2[b]);
    CHECK(o.cl[b] == Approx(r.cl[b]).epsilon(1e-5).margin(1e-6));
    CHECK(o.rl[b] == Approx(r.rl[b]).epsilon(1e-5).margin(1e-6));
  }
  double scale = max_abs(r.dz);
  for (size_t i = 0; i < o.dz.size(); ++i) {
    INFO("dlogits[" << i << "] (row " << i / pb.C << ")");
    CHECK(std::abs(o.dz[i] - r.dz[i]) <= 1e-5 * scale + 1e-7);
  }
}

std::mt19937 g_rng(20200101);

// Random logits: N(0, spread) per element plus `lean` on the label's column.
Problem random_problem(int B, int k, int C, MacerHyper h, float spread, float lean) {
  Problem pb{B, k, C, h, {}, {}};
  std::normal_distribution<float> n(0.0f, spread);
  std::uniform_int_distribution<int> cls(0, C - 1);
  for (int b = 0; b < B; ++b) pb.y.push_back(cls(g_rng));
  for (int r = 0; r < B * k; ++r)
    for (int c = 0; c < C; ++c) pb.z.push_back(n(g_rng) + (c == pb.y[r / k] ? lean : 0.0f));
  return pb;
}

// One input whose k copies all have the logits `row` (in beta space: divided by beta).
void add_input(Problem& pb, std::vector<float> row, int label) {
  for (int j = 0; j < pb.k; ++j)
    for (float v : row) pb.z.push_back(v / pb.h.beta);
  pb.y.push_back(label);
  ++pb.B;
}

}  // namespace

TEST_CASE("MACER forward and backward match a double implementation on random inputs", "[macer_loss]") {
  struct Setting { int B, k, C; MacerHyper h; float spread, lean; };
  for (Setting s : {Setting{5, 4, 10, {0.25f, 12.0f, 16.0f, 8.0f}, 0.3f, 0.4f},
                    Setting{7, 1, 10, {0.5f, 4.0f, 8.0f, 4.0f}, 0.5f, 0.5f},
                    Setting{3, 16, 10, {1.0f, 16.0f, 16.0f, 8.0f}, 0.3f, 0.3f},
                    Setting{6, 3, 2, {0.25f, 2.0f, 1.0f, 0.5f}, 1.0f, 0.5f},
                    Setting{4, 5, 100, {0.5f, 6.0f, 4.0f, 8.0f}, 1.0f, 2.0f},
                    Setting{9, 2, 7, {0.12f, 0.0f, 16.0f, 8.0f}, 0.3f, 0.3f}}) {
    INFO("B " << s.B << " k " << s.k << " C " << s.C << " beta " << s.h.beta << " gamma " << s.h.gamma);
    Problem pb = random_problem(s.B, s.k, s.C, s.h, s.spread, s.lean);
    check_against_ref(pb);
  }
}

TEST_CASE("the double implementation's gradient matches central differences", "[macer_loss]") {
  // In double, eps = 1e-6 leaves truncation ~ eps^2 |f'''| and rounding ~ 1e-16 / eps: both
  // below 1e-8 of the gradient's scale, while a dropped or mis-scaled term is of its order.
  for (MacerHyper h : {MacerHyper{0.25f, 12.0f, 16.0f, 8.0f}, MacerHyper{1.0f, 3.0f, 2.0f, 8.0f}}) {
    Problem pb = random_problem(4, 3, 6, h, 0.4f, 0.3f);
    std::vector<double> z = to_double(pb.z);
    Ref r = ref_macer(pb, z, false);
    REQUIRE(std::count(r.active.begin(), r.active.end(), 1) > 0);  // the RL term is exercised
    const double eps = 1e-6, scale = max_abs(r.dz);
    for (size_t i = 0; i < z.size(); ++i) {
      std::vector<double> zp = z, zm = z;
      zp[i] += eps, zm[i] -= eps;
      Ref rp = ref_macer(pb, zp, false), rm = ref_macer(pb, zm, false);
      REQUIRE(rp.active == r.active);  // no decision flips inside the step
      REQUIRE(rm.active == r.active);
      double fd = (rp.loss - rm.loss) / (2 * eps);
      INFO("element " << i);
      CHECK(std::abs(fd - r.dz[i]) <= 1e-7 * scale);
    }
  }
}

TEST_CASE("the float32 op's gradient matches central differences of its own forward", "[macer_loss]") {
  // Coarse but direct: eps = 1e-2 / beta on float logits, loss read in float. Truncation is
  // ~ (beta eps)^2 / 6 of the gradient's scale (~2e-5) and rounding ~ 6e-8 |L| / eps (~3e-4
  // of it here): 2e-3 of the largest gradient still fails on any missing term.
  Problem pb = random_problem(3, 4, 5, {0.5f, 4.0f, 2.0f, 8.0f}, 0.5f, 0.6f);
  Out o = run_op(pb);
  REQUIRE(std::count(o.active.begin(), o.active.end(), 1.0f) > 0);
  double scale = 0;
  for (float g : o.dz) scale = std::max(scale, double(std::abs(g)));
  const float eps = 1e-2f / pb.h.beta;
  for (size_t i = 0; i < pb.z.size(); ++i) {
    Problem pp = pb, pm = pb;
    pp.z[i] += eps, pm.z[i] -= eps;
    Out op = run_op(pp), om = run_op(pm);
    REQUIRE(op.active == o.active);
    REQUIRE(om.active == o.active);
    double fd = (double(op.loss) - double(om.loss)) / (double(pp.z[i]) - double(pm.z[i]));
    INFO("element " << i);
    CHECK(std::abs(fd - o.dz[i]) <= 2e-3 * scale);
  }
}

TEST_CASE("MACER special inputs: top class not the label, xi > gamma, q1 rounding to 1", "[macer_loss]") {
  Problem pb{0, 4, 10, {0.25f, 12.0f, 16.0f, 8.0f}, {}, {}};
  // beta-space rows: `rest` everywhere except the classes set
  auto row = [](float rest, std::initializer_list<std::pair<int, float>> set) {
    std::vector<float> r(10, rest);
    for (auto [c, v] : set) r[c] = v;
    return r;
  };
  add_input(pb, row(-3.0f, {{2, 0.0f}, {5, 1.5f}}), 2);     // 0: top class 5, label 2
  add_input(pb, row(-15.0f, {{1, 0.0f}, {4, -12.7f}}), 1);  // 1: q2 ~ 3e-6, xi ~ 8.9 > gamma = 8
  add_input(pb, row(-25.0f, {{3, 0.0f}}), 3);               // 2: 1 - q1 ~ 1e-10: q1 = 1.0f, xi = inf
  add_input(pb, row(-3.0f, {{6, 0.0f}, {0, -0.5f}}), 6);    // 3: active
  std::vector<float> far(10, -200.0f);
  far[8] = 0.0f;
  add_input(pb, far, 8);                                  // 4: q2 = 0 exactly
  Out o = run_op(pb);
  Ref r = ref_macer(pb, to_double(pb.z), true);
  REQUIRE(all_finite(o));
  CHECK(o.c1[0] == 5);
  CHECK(o.active[0] == 0.0f);
  CHECK(r.c1[1] == 1);
  CHECK(ref_inv_phi(r.q1[1]) - ref_inv_phi(r.q2[1]) > 8.5);
  CHECK(o.active[1] == 0.0f);
  CHECK(o.q1[2] == 1.0f);
  CHECK(o.q2[2] > 0.0f);
  CHECK(o.active[2] == 0.0f);
  CHECK(o.active[3] == 1.0f);
  CHECK(o.q2[4] == 0.0f);
  CHECK(o.active[4] == 0.0f);
  for (int b : {0, 1, 2, 4}) CHECK(o.rl[b] == 0.0f);
  check_against_ref(pb);

  SECTION("q1 rounding to 1 is inactive however large gamma is (not only by the hinge)") {
    Problem big{0, 2, 10, {0.25f, 12.0f, 16.0f, 1e6f}, {}, {}};
    add_input(big, row(-25.0f, {{3, 0.0f}}), 3);
    add_input(big, row(-15.0f, {{1, 0.0f}, {4, -12.7f}}), 1);  // xi ~ 8.9: active now
    Out ob = run_op(big);
    REQUIRE(all_finite(ob));
    CHECK(ob.q1[0] == 1.0f);
    CHECK(ob.active == std::vector<float>{0, 1});
    check_against_ref(big);
  }
}

TEST_CASE("MACER exact ties go to the lower class index", "[macer_loss]") {
  Problem pb{0, 3, 6, {0.5f, 4.0f, 16.0f, 8.0f}, {}, {}};
  add_input(pb, {0.0f, 1.0f, -1.0f, 1.0f, 0.0f, -2.0f}, 1);  // tie 1 = 3, label the lower: active, xi = 0
  add_input(pb, {0.0f, 1.0f, -1.0f, 1.0f, 0.0f, -2.0f}, 3);  // label the higher: not top, inactive
  add_input(pb, {2.0f, -1.0f, 0.5f, 0.5f, 0.5f, -2.0f}, 0);  // three-way tie for second: c2 = 2
  add_input(pb, {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f}, 0);    // all equal: c1 = 0, c2 = 1, xi = 0
  Out o = run_op(pb);
  CHECK(o.c1 == std::vector<int32_t>{1, 1, 0, 0});
  CHECK(o.c2 == std::vector<int32_t>{3, 3, 2, 1});
  CHECK(o.active == std::vector<float>{1, 0, 1, 1});
  CHECK(o.rl[0] == Approx(0.5 * 0.5 * 8.0));  // xi = 0: rl = sigma/2 * gamma
  CHECK(o.rl[3] == Approx(0.5 * 0.5 * 8.0));
  check_against_ref(pb);
}

TEST_CASE("MACER never lets NaN or Inf out", "[macer_loss]") {
  SECTION("extreme logits, beta z beyond float range") {
    Problem pb{2, 2, 4, {0.25f, 12.0f, 16.0f, 8.0f}, {}, {1, 0}};
    pb.z = {3e38f, -3e38f, 1e30f, 0.0f, 1e4f, -1e4f, 1e4f, 0.0f,  // input 0: p[y] = 0
            0.0f, 0.0f, 0.0f, 0.0f, 1e-30f, -1e-30f, 0.0f, 0.0f};   // input 1
    Out o = run_op(pb);
    CHECK(all_finite(o));
    CHECK(o.cl[0] == Approx(-std::log(1e-10)).epsilon(1e-5));  // p[y] = 0: the 1e-10 guard
  }
  SECTION("large gamma with a tiny q2 keeps an active input with huge 1/phi") {
    Problem pb{0, 2, 3, {1.0f, 100.0f, 1.0f, 1e6f}, {}, {}};
    add_input(pb, {0.0f, -17.0f, -18.0f}, 0);  // q2 ~ 4e-8, q1 < 1 in float
    Out o = run_op(pb);
    CHECK(o.active[0] == 1.0f);
    CHECK(all_finite(o));
    check_against_ref(pb);
  }
  SECTION("one class, one copy") {
    Problem pb{3, 1, 1, {0.25f, 12.0f, 16.0f, 8.0f}, {1.0f, -5.0f, 0.0f}, {0, 0, 0}};
    Out o = run_op(pb);
    CHECK(all_finite(o));
    CHECK(o.active == std::vector<float>{0, 0, 0});
  }
}

TEST_CASE("MACER backward accumulates dloss times the gradient", "[macer_loss]") {
  Problem pb = random_problem(4, 3, 5, {0.5f, 4.0f, 4.0f, 8.0f}, 0.5f, 0.5f);
  Out once = run_op(pb);
  Out scaled = run_op(pb, 2.5f, 0.75f);
  for (size_t i = 0; i < once.dz.size(); ++i)
    CHECK(scaled.dz[i] == Approx(0.75 + 2.5 * double(once.dz[i])).epsilon(1e-6).margin(1e-7));
}

TEST_CASE("MACER matches the PyTorch reference (tests/golden/macer_loss.golden.safetensors)", "[macer_loss][golden]") {
  // The fixture is float64 PyTorch (the official formulation) on float32 logits, with q rounded
  // to float32 as here: the op agrees to float rounding of p[y] and q, a few 1e-7 relative.
  SafetensorsFile f = load_safetensors(std::string(MACER_SOURCE_DIR) + "/tests/golden/macer_loss.golden.safetensors");
  auto get = [&](const std::string& name) -> const Tensor& {
    const Tensor* t = f.find(name);
    if (!t) throw Error("golden file lacks " + name);
    return *t;
  };
  auto f64 = [&](const std::string& name) {
    const Tensor& t = get(name);
    return std::vector<double>(t.data<double>(), t.data<double>() + t.numel());
  };
  const int cases = std::stoi(f.metadata.at("cases"));
  REQUIRE(cases >= 4);
  bool saw_k1 = false;
  for (int n = 0; n < cases; ++n) {
    const std::string p = "case" + std::to_string(n) + ".";
    std::vector<double> hyper = f64(p + "hyper");
    const Tensor& logits = get(p + "logits");
    const Tensor& labels = get(p + "labels");
    Problem pb{int(labels.numel()), int(hyper[4]), int(logits.dim(1)),
               {float(hyper[0]), float(hyper[1]), float(hyper[2]), float(hyper[3])},
               logits.to_vector(), labels.to_ints()};
    saw_k1 |= pb.k == 1;
    INFO("case " << n << " (" << f.metadata.at(p + "inputs") << ")");
    Out o = run_op(pb);
    REQUIRE(all_finite(o));
    CHECK(o.loss == Approx(f64(p + "loss")[0]).epsilon(2e-6));
    std::vector<double> cl = f64(p + "cl"), rl = f64(p + "rl"), q1 = f64(p + "q1"), q2 = f64(p + "q2");
    std::vector<float> active = get(p + "active").to_vector();
    std::vector<int32_t> c1 = get(p + "c1").to_ints(), c2 = get(p + "c2").to_ints();
    for (int b = 0; b < pb.B; ++b) {
      INFO("input " << b);
      CHECK(o.active[b] == active[b]);
      CHECK(o.c1[b] == c1[b]);
      CHECK(o.c2[b] == c2[b]);
      CHECK(double(o.q1[b]) == Approx(q1[b]).epsilon(3e-7));
      CHECK(double(o.q2[b]) == Approx(q2[b]).epsilon(3e-7).margin(1e-30));
      CHECK(o.cl[b] == Approx(cl[b]).epsilon(2e-6).margin(1e-6));
      CHECK(o.rl[b] == Approx(rl[b]).epsilon(2e-6).margin(1e-6));
    }
    std::vector<double> dz = f64(p + "dlogits");
    double scale = max_abs(dz);
    for (size_t i = 0; i < dz.size(); ++i) {
      INFO("dlogits[" << i << "] (row " << i / pb.C << ")");
      CHECK(std::abs(o.dz[i] - dz[i]) <= 2e-6 * scale);
    }
  }
  CHECK(saw_k1);
}

TEST_CASE("macer_loss records its backward on the tape", "[macer_loss][objectives]") {
  Problem pb = random_problem(5, 3, 10, {0.25f, 12.0f, 16.0f, 8.0f}, 0.3f, 0.4f);
  Var logits(Tensor::from_vector(pb.z, {pb.B * pb.k, pb.C}), true);
  Tensor labels = Tensor::from_ints(pb.y, {pb.B});
  MacerLossOutputs out = macer_loss(logits, labels, pb.k, pb.h);
  Out o = run_op(pb);
  REQUIRE(out.loss.requires_grad());
  CHECK(out.loss.value().item() == o.loss);
  CHECK(out.cl.shape() == Shape{pb.B});
  CHECK(out.cl.to_vector() == o.cl);
  CHECK(out.rl.to_vector() == o.rl);
  CHECK(out.active.to_vector() == o.active);
  backward(out.loss);
  CHECK(logits.grad().to_vector() == o.dz);
  CHECK(tape_size() == 0);

  SECTION("no recording without a gradient") {
    NoGradGuard guard;
    MacerLossOutputs again = macer_loss(logits, labels, pb.k, pb.h);
    CHECK_FALSE(again.loss.requires_grad());
    CHECK(tape_size() == 0);
  }
}

TEST_CASE("macer_loss and gaussian_loss reject bad arguments", "[macer_loss][objectives]") {
  Var logits(Tensor::zeros({6, 4}), true);
  Tensor labels = Tensor::from_ints({0, 1, 3}, {3});
  MacerHyper h{0.25f, 12.0f, 16.0f, 8.0f};
  CHECK_THROWS_WITH(macer_loss(logits, labels, 4, h), Catch::Contains("copies"));
  CHECK_THROWS_AS(macer_loss(logits, Tensor::from_ints({0, 1}, {2}), 2, h), Error);
  CHECK_THROWS_AS(macer_loss(logits, Tensor::zeros({3}), 2, h), Error);  // float labels
  CHECK_THROWS_WITH(macer_loss(logits, Tensor::from_ints({0, 4, 1}, {3}), 2, h), Catch::Contains("label 4"));
  CHECK_THROWS_WITH(macer_loss(logits, labels, 2, {-1.0f, 12.0f, 16.0f, 8.0f}), Catch::Contains("sigma"));
  CHECK_THROWS_AS(macer_loss(logits, labels, 2, {0.25f, 12.0f, 0.0f, 8.0f}), Error);
  CHECK_THROWS_AS(gaussian_loss(logits, labels, 4), Error);
  CHECK_THROWS_AS(gaussian_loss(logits, Tensor::from_ints({0, -1, 1}, {3}), 2), Error);
  clear_tape();
}

TEST_CASE("the Gaussian objective is cross-entropy over all noisy copies", "[objectives]") {
  Problem pb = random_problem(4, 3, 7, {}, 1.0f, 0.5f);
  Var logits(Tensor::from_vector(pb.z, {pb.B * pb.k, pb.C}), true);
  Tensor labels = Tensor::from_ints(pb.y, {pb.B});
  Var loss = gaussian_loss(logits, labels, pb.k);
  // L = mean over the B k rows of -log softmax(z_r)[y_{r/k}];  dL/dz_r = (s_r - e_y) / (B k)
  const int rows = pb.B * pb.k;
  double expect = 0;
  std::vector<double> dz(pb.z.size());
  std::vector<double> z = to_double(pb.z);
  for (int r = 0; r < rows; ++r) {
    std::vector<double> s = ref_softmax(&z[size_t(r) * pb.C], pb.C, 1.0);
    int y = pb.y[r / pb.k];
    expect -= std::log(s[y]) / rows;
    for (int c = 0; c < pb.C; ++c) dz[size_t(r) * pb.C + c] = (s[c] - (c == y)) / rows;
  }
  CHECK(loss.value().item() == Approx(expect).epsilon(1e-5));
  backward(loss);
  std::vector<float> g = logits.grad().to_vector();
  for (size_t i = 0; i < dz.size(); ++i) CHECK(std::abs(g[i] - dz[i]) <= 1e-6);
}

TEST_CASE("objectives are found by name", "[objectives]") {
  CHECK(objective_names() == std::vector<std::string>{"macer", "gaussian", "consistency"});
  CHECK_THROWS_WITH(objective_by_name("adversarial"),
                    Catch::Contains("adversarial") && Catch::Contains("macer") && Catch::Contains("gaussian"));
  Problem pb = random_problem(3, 2, 5, {0.5f, 4.0f, 8.0f, 8.0f}, 0.5f, 0.5f);
  Var logits(Tensor::from_vector(pb.z, {pb.B * pb.k, pb.C}));
  Tensor labels = Tensor::from_ints(pb.y, {pb.B});
  ObjectiveResult m = objective_by_name("macer")(logits, labels, pb.k, pb.h);
  CHECK(m.loss.value().item() == run_op(pb).loss);
  CHECK(m.active.defined());
  ObjectiveResult g = objective_by_name("gaussian")(logits, labels, pb.k, pb.h);
  CHECK(g.loss.value().item() == gaussian_loss(logits, labels, pb.k).value().item());
  CHECK_FALSE(g.cl.defined());
}

TEST_CASE("lambda schedules: constant and deferred", "[schedule]") {
  LambdaSchedule constant("constant", 12.0);
  CHECK(constant.at(0) == 12.0);
  CHECK(constant.at(439) == 12.0);
  LambdaSchedule deferred("deferred", 12.0, 200);
  CHECK(deferred.at(0) == 0.0);
  CHECK(deferred.at(199) == 0.0);
  CHECK(deferred.at(200) == 12.0);
  CHECK(deferred.at(439) == 12.0);
  CHECK(LambdaSchedule("deferred", 4.0, 0).at(0) == 4.0);
  CHECK_THROWS_WITH(LambdaSchedule("dynamic", 1.0), Catch::Contains("constant") && Catch::Contains("deferred"));
  CHECK_THROWS_AS(LambdaSchedule("constant", -1.0), Error);
  CHECK_THROWS_AS(LambdaSchedule("constant", std::nan("")), Error);
  CHECK_THROWS_AS(LambdaSchedule("deferred", 1.0, -3), Error);
  CHECK_THROWS_WITH(LambdaSchedule("constant", 1.0, 10), Catch::Contains("deferred"));
}

TEST_CASE("MultiStep learning rate: lr * factor^(milestones <= epoch)", "[schedule]") {
  MultiStepLr paper(0.01, {200, 400}, 0.1);
  CHECK(paper.at(0) == 0.01);
  CHECK(paper.at(199) == 0.01);
  CHECK(paper.at(200) == Approx(0.001));
  CHECK(paper.at(399) == Approx(0.001));
  CHECK(paper.at(400) == Approx(0.0001));
  CHECK(paper.at(439) == Approx(0.0001));
  MultiStepLr imagenet(0.1, {30, 60, 90}, 0.1);
  CHECK(imagenet.at(29) == 0.1);
  CHECK(imagenet.at(95) == Approx(1e-4));
  CHECK(MultiStepLr(0.5, {}, 0.1).at(1000) == 0.5);
  CHECK(MultiStepLr(0.5, {0}, 0.5).at(0) == 0.25);
  CHECK_THROWS_WITH(MultiStepLr(0.1, {60, 30}, 0.1), Catch::Contains("increase"));
  CHECK_THROWS_AS(MultiStepLr(0.1, {30, 30}, 0.1), Error);
  CHECK_THROWS_AS(MultiStepLr(0.1, {-1}, 0.1), Error);
  CHECK_THROWS_AS(MultiStepLr(0.0, {}, 0.1), Error);
  CHECK_THROWS_AS(MultiStepLr(0.1, {}, 0.0), Error);
}
