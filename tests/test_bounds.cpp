// Tests of macer/bounds: Clopper-Pearson, the binomial test, Phi^-1 and the Bernstein bound
// against reference values from scipy 1.10.1 (the Python expression is beside each number).
#include <catch2/catch.hpp>

#include <cmath>

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
