// Tests of macer/bounds: Clopper-Pearson, the binomial test, Phi^-1 and the Bernstein bound
// against reference values from scipy 1.10.1 (the Python expression is beside each number).
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <algorithm>

#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/check.h"
#include "macer/certify/bounds.h"

using namespace macer;

namespace {
// Relative agreement to ~1e-10: Boost and scipy (cephes/boost) differ in the last digits.
Approx rel(double x) { return Approx(x).epsilon(1e-10).margin(1e-300); }
}  // namespace

TEST_CASE("Clopper-Pearson lower bound matches scipy beta.ppf", "[bounds]") {
  // import scipy.stats as st; st.beta.ppf(alpha, nA, n - nA + 1)   (0.0 when nA = 0)
  CHECK(clopper_pearson_lower(0, 100, 0.001) == 0.0);                           // nA = 0
  CHECK(clopper_pearson_lower(100, 100, 0.001) == rel(0.933254300796991));      // nA = n: alpha^(1/n)
  CHECK(clopper_pearson_lower(1, 1, 0.001) == rel(0.001));                      // n = 1
  CHECK(clopper_pearson_lower(1, 1, 0.05) == rel(0.05));
  CHECK(clopper_pearson_lower(0, 1, 0.05) == 0.0);
  CHECK(clopper_pearson_lower(99000, 100000, 0.001) == rel(0.9889893403774748));
  CHECK(clopper_pearson_lower(100000, 100000, 0.001) == rel(0.9999309248330094));
  CHECK(clopper_pearson_lower(1, 100000, 0.001) == rel(1.0005003285785289e-08));
  CHECK(clopper_pearson_lower(50, 100, 0.001) == rel(0.3447980064253177));
  CHECK(clopper_pearson_lower(73, 100, 0.05) == rel(0.6473846839831676));
  CHECK(clopper_pearson_lower(500, 1000, 0.01) == rel(0.4627780667609976));
  // nA = n has the closed form alpha^(1/n): the quantile of Beta(n, 1).
  CHECK(clopper_pearson_lower(100000, 100000, 0.001) == rel(std::pow(0.001, 1e-5)));
}

TEST_CASE("Clopper-Pearson refuses impossible counts", "[bounds]") {
  CHECK_THROWS_AS(clopper_pearson_lower(5, 4, 0.001), Error);
  CHECK_THROWS_AS(clopper_pearson_lower(-1, 4, 0.001), Error);
  CHECK_THROWS_AS(clopper_pearson_lower(0, 0, 0.001), Error);
  CHECK_THROWS_AS(clopper_pearson_lower(2, 4, 0.0), Error);
  CHECK_THROWS_AS(clopper_pearson_lower(2, 4, 1.0), Error);
}

TEST_CASE("two-sided binomial test at 1/2 matches scipy binomtest", "[bounds]") {
  // st.binomtest(k, n, 0.5).pvalue
  CHECK(binomial_test_half(0, 0) == 1.0);  // no trials: nothing against the null
  CHECK(binomial_test_half(5, 10) == rel(1.0));
  CHECK(binomial_test_half(0, 10) == rel(0.001953125));
  CHECK(binomial_test_half(10, 10) == rel(0.001953125));
  CHECK(binomial_test_half(7, 10) == rel(0.34375));
  CHECK(binomial_test_half(3, 10) == rel(0.34375));
  CHECK(binomial_test_half(6, 9) == rel(0.5078125));
  CHECK(binomial_test_half(60, 100) == rel(0.05688793364098088));
  CHECK(binomial_test_half(40, 100) == rel(0.05688793364098088));
  CHECK(binomial_test_half(0, 1) == rel(1.0));  // n = 1
  CHECK(binomial_test_half(1, 1) == rel(1.0));
  CHECK(binomial_test_half(520, 1000) == rel(0.2174482932041409));
  CHECK(binomial_test_half(50100, 100000) == rel(0.5291572940801981));
  CHECK(binomial_test_half(51000, 100000) == Approx(2.588716038346895e-10).epsilon(1e-8));
  CHECK_THROWS_AS(binomial_test_half(3, 2), Error);
}

TEST_CASE("normal quantile matches scipy norm.ppf, tails included", "[bounds]") {
  // st.norm.ppf(p)
  CHECK(normal_quantile(1e-10) == rel(-6.361340902404056));
  // 1 - 1e-10 is not exact in double; norm.ppf(1 - 1e-10) sees the same double.
  CHECK(normal_quantile(1 - 1e-10) == Approx(6.361340889697422).epsilon(1e-9));
  CHECK(normal_quantile(0.5) == 0.0);
  CHECK(normal_quantile(0.975) == rel(1.959963984540054));
  CHECK(normal_quantile(0.001) == rel(-3.090232306167813));
  CHECK(normal_quantile(0.999) == rel(3.090232306167813));
  CHECK(normal_quantile(1e-300) == rel(-37.0470962993612));
  CHECK(std::isinf(normal_quantile(0.0)));
  CHECK(normal_quantile(0.0) < 0);
  CHECK(std::isinf(normal_quantile(1.0)));
  CHECK(normal_quantile(1.0) > 0);
  // st.norm.cdf(x)
  CHECK(normal_cdf(1.0) == rel(0.8413447460685429));
  CHECK(normal_cdf(-3.0) == rel(0.0013498980316300933));
  CHECK(normal_cdf(6.0) == rel(0.9999999990134123));
  for (double p : {1e-12, 0.01, 0.3, 0.7, 0.99, 1 - 1e-12}) CHECK(normal_cdf(normal_quantile(p)) == Approx(p).epsilon(1e-9));
}

TEST_CASE("empirical Bernstein lower bound follows MACER's formula", "[bounds]") {
  // import math
  // def b(S, S2, n, a):
  //   var = max(0, (S2 - S*S/n)/(n-1)); t = math.log(2/a)
  //   return S/n - math.sqrt(2*var*t/n) - 7*t/(3*(n-1))
  CHECK(bernstein_lower(90000.0, 85000.0, 100000, 0.001) == rel(0.8973567195109521));
  CHECK(bernstein_lower(100000.0, 100000.0, 100000, 0.001) == rel(0.9998226438357157));  // var = 0
  CHECK(bernstein_lower(60.0, 45.0, 100, 0.05) == rel(0.4311601103858913));
  // Rounding can make S2 - S^2/n slightly negative: the variance is clamped at 0.
  CHECK(bernstein_lower(10.0, 10.0 - 1e-12, 10, 0.05) == Approx(1.0 - 7 * std::log(40.0) / 27).epsilon(1e-12));
  CHECK(bernstein_lower(1.0, 1.0, 1, 0.05) == 0.0);  // n = 1 certifies nothing
}

// ---- The extremes, judged at test time in arbitrary precision (tests/bounds_reference.py,
// python3-mpmath): n up to 2^40, alpha down to 1e-300. ----

namespace {

std::string hex(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", x);
  return buf;
}

// Sends the lines to tests/bounds_reference.py and returns its verdict for each.
std::vector<std::string> judge(const std::vector<std::string>& lines) {
  std::string in = std::string(MACER_BINARY_DIR) + "/tests/bounds_reference_in.txt";
  std::string out = std::string(MACER_BINARY_DIR) + "/tests/bounds_reference_out.txt";
  {
    std::ofstream f(in);
    for (const auto& l : lines) f << l << "\n";
  }
  std::string cmd = "python3 " + std::string(MACER_SOURCE_DIR) + "/tests/bounds_reference.py < " + in + " > " + out;
  int st = std::system(cmd.c_str());
  INFO("needs python3 with mpmath (Debian: python3-mpmath; scripts/test.sh installs it)");
  REQUIRE(WIFEXITED(st));
  REQUIRE(WEXITSTATUS(st) == 0);
  std::vector<std::string> verdicts;
  std::ifstream f(out);
  for (std::string l; std::getline(f, l);) verdicts.push_back(l);
  REQUIRE(verdicts.size() == lines.size());
  return verdicts;
}

void check_all(const std::vector<std::string>& lines) {
  auto verdicts = judge(lines);
  int bad = 0;
  for (size_t i = 0; i < lines.size(); ++i)
    if (verdicts[i] != "ok") {
      ++bad;
      UNSCOPED_INFO(lines[i] << "  ->  " << verdicts[i]);
    }
  CHECK(bad == 0);
}

const std::vector<int64_t> kTrials = {1, 2, 3, 5, 10, 11, 20, 100, 1000, 100000, int64_t(1) << 20,
                                      int64_t(1) << 30, int64_t(1) << 40};
const std::vector<double> kAlphas = {0.05, 1e-3, 1e-10, 1e-50, 1e-100, 1e-200, 1e-300};

// nA values that reach both ends and the middle of [0, n].
std::vector<int64_t> counts_for(int64_t n) {
  std::vector<int64_t> ks;
  for (int64_t k = 0; k <= 10; ++k) ks.push_back(k);
  for (int64_t d = 0; d <= 10; ++d) ks.push_back(n - d);
  for (double f : {0.5, 0.9, 0.99, 0.999}) ks.push_back(static_cast<int64_t>(f * static_cast<double>(n)));
  std::vector<int64_t> out;
  for (int64_t k : ks)
    if (k >= 0 && k <= n && std::find(out.begin(), out.end(), k) == out.end()) out.push_back(k);
  return out;
}

}  // namespace

TEST_CASE("Clopper-Pearson is the exact Beta quantile to 1e-9 from n = 1 to 2^40, alpha to 1e-300", "[bounds]") {
  std::vector<std::string> lines;
  for (int64_t n : kTrials)
    for (double alpha : kAlphas)
      for (int64_t k : counts_for(n)) {
        double x = 0;
        REQUIRE_NOTHROW(x = clopper_pearson_lower(k, n, alpha));
        std::ostringstream l;
        l << "cp " << k << " " << n << " " << hex(alpha) << " " << hex(x);
        lines.push_back(l.str());
      }
  check_all(lines);
}

TEST_CASE("Clopper-Pearson never throws and is monotone in nA at the extremes", "[bounds]") {
  for (int64_t n : kTrials)
    for (double alpha : kAlphas) {
      // Every nA for small n; windows of adjacent counts around the grid's points for large n.
      std::vector<int64_t> ks;
      if (n <= 1000) {
        for (int64_t k = 0; k <= n; ++k) ks.push_back(k);
      } else {
        for (int64_t c : counts_for(n))
          for (int64_t d = -3; d <= 3; ++d)
            if (c + d >= 0 && c + d <= n) ks.push_back(c + d);
        std::sort(ks.begin(), ks.end());
        ks.erase(std::unique(ks.begin(), ks.end()), ks.end());
      }
      double prev = -1;
      int64_t prev_k = -1;
      for (int64_t k : ks) {
        double x = 0;
        REQUIRE_NOTHROW(x = clopper_pearson_lower(k, n, alpha));
        INFO("n " << n << " alpha " << alpha << " nA " << prev_k << " -> " << k);
        REQUIRE(x >= prev);
        REQUIRE(x <= 1.0);
        prev = x;
        prev_k = k;
      }
    }
}

TEST_CASE("Clopper-Pearson at n = 11, alpha = 1e-300 (a run that used to abort)", "[bounds]") {
  // 10 of 11 at alpha 1e-300: the exact bound is 7.87e-31 (mpmath), far below 1/2: abstain.
  CHECK(clopper_pearson_lower(10, 11, 1e-300) == Approx(7.87e-31).epsilon(1e-3));
  for (int64_t k = 0; k <= 11; ++k) CHECK(clopper_pearson_lower(k, 11, 1e-300) < 0.5);
}

TEST_CASE("binomial test p-values are exact to 1e-9 from n = 1 to 2^40", "[bounds]") {
  std::vector<std::string> lines;
  for (int64_t n : kTrials)
    for (int64_t k : counts_for(n)) {
      // n/2 + c sqrt(n): the p-values a PREDICT run meets, from 1 down to the far tail.
      for (int64_t kk : {k, n / 2 + static_cast<int64_t>(3 * std::sqrt(static_cast<double>(n))),
                         n / 2 + static_cast<int64_t>(10 * std::sqrt(static_cast<double>(n)))}) {
        if (kk < 0 || kk > n) continue;
        double p = 0;
        REQUIRE_NOTHROW(p = binomial_test_half(kk, n));
        std::ostringstream l;
        l << "binom " << kk << " " << n << " " << hex(p);
        lines.push_back(l.str());
      }
    }
  check_all(lines);
}

TEST_CASE("empirical Bernstein bound is exact to 1e-9 from n = 2 to 2^40, alpha to 1e-300", "[bounds]") {
  std::vector<std::string> lines;
  for (int64_t n : kTrials) {
    if (n < 2) continue;
    double nd = static_cast<double>(n);
    for (double alpha : kAlphas)
      // Draws all 1 (variance 0), all 0.9 up to rounding, and a spread of 0.7 +- 0.2.
      for (auto [S, S2] : {std::pair<double, double>{nd, nd}, {0.9 * nd, 0.81 * nd},
                           {0.7 * nd, (0.49 + 0.04) * nd}, {0.999 * nd, 0.998001 * nd * (1 + 1e-9)}}) {
        double x = bernstein_lower(S, S2, n, alpha);
        std::ostringstream l;
        l << "bern " << hex(S) << " " << hex(S2) << " " << n << " " << hex(alpha) << " " << hex(x);
        lines.push_back(l.str());
      }
  }
  check_all(lines);
}
