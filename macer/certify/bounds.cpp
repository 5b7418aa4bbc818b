// Boost.Math behind the certification statistics of macer/bounds.h: the regularized incomplete
// beta and binomial tails come from Boost; the Beta quantile is found here by bisection on them.
#include "macer/certify/bounds.h"

#include <algorithm>
#include <boost/math/distributions/normal.hpp>
#include <boost/math/policies/policy.hpp>
#include <boost/math/special_functions/beta.hpp>
#include <boost/multiprecision/cpp_bin_float.hpp>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/check.h"

namespace macer {

namespace {

using Quad = boost::multiprecision::cpp_bin_float_quad;

// Boost's default policy throws on underflow-free overflow and on failed internal iterations;
// every caller here only compares the result with alpha, so errors become values instead
// (overflow: inf, underflow: 0, evaluation errors: the best estimate), and nothing throws.
// Doubles are still promoted to long double inside (Boost's default): without it I_x loses
// 5 digits at a = 992, b = 9, I ~ 1e-300.
using NoThrow = boost::math::policies::policy<
    boost::math::policies::domain_error<boost::math::policies::errno_on_error>,
    boost::math::policies::overflow_error<boost::math::policies::ignore_error>,
    boost::math::policies::underflow_error<boost::math::policies::ignore_error>,
    boost::math::policies::evaluation_error<boost::math::policies::ignore_error>,
    boost::math::policies::pole_error<boost::math::policies::errno_on_error>>;

// The bits of a non-negative double, ordered as the doubles are: bisection on them finds a
// root to one ulp at every magnitude, subnormals included, in at most 64 steps.
uint64_t bits(double x) {
  uint64_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
double from_bits(uint64_t u) {
  double x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

// I_x(a, b) = P(Bin(a + b - 1, x) >= a) for integer a, b >= 1: the upper binomial tail, which
// Boost computes to full relative precision down to the smallest doubles.
double beta_cdf(double a, double b, double x) {
  if (x <= 0) return 0.0;
  if (x >= 1) return 1.0;
  return boost::math::ibeta(a, b, x, NoThrow());
}

}  // namespace

double clopper_pearson_lower(int64_t successes, int64_t trials, double alpha) {
  MACER_CHECK(trials >= 1 && successes >= 0 && successes <= trials,
              "clopper_pearson_lower: " << successes << " successes in " << trials << " trials");
  MACER_CHECK(alpha > 0 && alpha < 1, "clopper_pearson_lower: alpha " << alpha << " not in (0, 1)");
  if (successes == 0) return 0.0;
  const double n = static_cast<double>(trials);
  // The lower end p_lo solves P(Bin(n, p_lo) >= nA) = alpha, i.e. I_{p_lo}(nA, n - nA + 1) = alpha:
  // the alpha quantile of Beta(nA, n - nA + 1). Two ends have closed forms:
  //   nA = n:  I_x(n, 1) = x^n           ->  x = alpha^(1/n)
  //   nA = 1:  I_x(1, n) = 1 - (1 - x)^n  ->  x = 1 - (1 - alpha)^(1/n) = -expm1(log1p(-alpha) / n)
  if (successes == trials) return std::exp(std::log(alpha) / n);
  if (successes == 1) return -std::expm1(std::log1p(-alpha) / n);
  // Elsewhere: the smallest double x with I_x(a, b) >= alpha, by bisection on the ordered bits
  // of x in [0, 1]. Boost's ibeta_inv is not used: at tiny alpha (1e-100 and below) it throws
  // on part of the grid. I_x is increasing in x, and decreasing in a at fixed x (so the bound
  // is monotone in nA as long as Boost's I_x is).
  const double a = static_cast<double>(successes);
  const double b = n - a + 1;
  uint64_t lo = bits(0.0), hi = bits(1.0);  // I_lo < alpha <= I_hi
  while (hi - lo > 1) {
    uint64_t mid = lo + (hi - lo) / 2;
    if (beta_cdf(a, b, from_bits(mid)) >= alpha)
      hi = mid;
    else
      lo = mid;
  }
  return from_bits(hi);
}

double binomial_test_half(int64_t successes, int64_t trials) {
  MACER_CHECK(trials >= 0 && successes >= 0 && successes <= trials,
              "binomial_test_half: " << successes << " successes in " << trials << " trials");
  if (trials == 0) return 1.0;
  // At p = 0.5 the distribution is symmetric, so the exact two-sided p-value (the sum of the
  // probabilities of all outcomes no likelier than the observed one) is twice the smaller
  // tail: min(1, 2 P(X >= m)) with m = max(k, n - k), and P(X >= m) = I_{1/2}(m, n - m + 1).
  // In 113-bit floating point: at n = 2^40 Boost's I_x in long double is off by 1.5e-8
  // relative (its exponent terms are ~1e11 in size), in quad by far less than 1e-9.
  const int64_t m = std::max(successes, trials - successes);
  if (2 * m <= trials + 1) return 1.0;  // m is a median: P(X >= m) >= 1/2
  const Quad tail = boost::math::ibeta(Quad(static_cast<double>(m)), Quad(static_cast<double>(trials - m + 1)),
                                       Quad(0.5), NoThrow());
  return std::min(1.0, 2.0 * static_cast<double>(tail));
}

double normal_quantile(double p) {
  MACER_CHECK(!std::isnan(p), "normal_quantile: p is NaN");
  if (p <= 0) return -std::numeric_limits<double>::infinity();
  if (p >= 1) return std::numeric_limits<double>::infinity();
  boost::math::normal_distribution<double> normal;
  // Upper half through the complement, so that 1 - 1e-10 keeps its digits: Phi^-1(p) =
  // -Phi^-1(1 - p), and 1 - p is exact in double for p in [0.5, 1).
  if (p > 0.5) return -boost::math::quantile(normal, 1.0 - p);
  return boost::math::quantile(normal, p);
}

double normal_cdf(double x) {
  if (std::isinf(x)) return x > 0 ? 1.0 : 0.0;
  return boost::math::cdf(boost::math::normal_distribution<double>(), x);
}

double bernstein_lower(double sum, double sum_sq, int64_t n, double alpha) {
  MACER_CHECK(alpha > 0 && alpha < 1, "bernstein_lower: alpha " << alpha << " not in (0, 1)");
  if (n < 2) return 0.0;
  // In 113-bit floating point (Boost.Multiprecision's quad): S2 - S^2 / n cancels almost
  // entirely when the draws are nearly constant, and at n = 2^40 S^2 alone needs 80+ bits.
  const Quad S = sum, S2 = sum_sq, N = static_cast<double>(n);
  Quad var = (S2 - S * S / N) / (N - 1);  // sample variance
  if (var < 0) var = 0;                  // rounding in the sums can make it slightly negative
  const Quad t = -boost::multiprecision::log(Quad(alpha) / 2);                      // ln(2 / alpha)
  const Quad p = S / N - boost::multiprecision::sqrt(2 * var * t / N) - 7 * t / (3 * (N - 1));
  return static_cast<double>(p);
}

}  // namespace macer
