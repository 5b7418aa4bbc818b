// Boost.Math behind the certification statistics of macer/bounds.h; no special function is
// written by hand here, only the argument checks and the edge cases that Boost refuses.
#include "macer/certify/bounds.h"

#include <algorithm>
#include <boost/math/distributions/binomial.hpp>
#include <boost/math/distributions/normal.hpp>
#include <boost/math/special_functions/beta.hpp>
#include <cmath>
#include <limits>

#include "kernels/check.h"

namespace macer {

double clopper_pearson_lower(int64_t successes, int64_t trials, double alpha) {
  MACER_CHECK(trials >= 1 && successes >= 0 && successes <= trials,
              "clopper_pearson_lower: " << successes << " successes in " << trials << " trials");
  MACER_CHECK(alpha > 0 && alpha < 1, "clopper_pearson_lower: alpha " << alpha << " not in (0, 1)");
  if (successes == 0) return 0.0;
  // The lower end p_lo solves P(Bin(n, p_lo) >= nA) = alpha, i.e. I_{p_lo}(nA, n - nA + 1) = alpha:
  // the alpha quantile of Beta(nA, n - nA + 1), the inverse regularized incomplete beta.
  double a = static_cast<double>(successes);
  double b = static_cast<double>(trials - successes + 1);
  return boost::math::ibeta_inv(a, b, alpha);
}

double binomial_test_half(int64_t successes, int64_t trials) {
  MACER_CHECK(trials >= 0 && successes >= 0 && successes <= trials,
              "binomial_test_half: " << successes << " successes in " << trials << " trials");
  if (trials == 0) return 1.0;
  // At p = 0.5 the distribution is symmetric, so the exact two-sided p-value (the sum of the
  // probabilities of all outcomes no likelier than the observed one) is twice the smaller
  // tail: min(1, 2 * min(P(X <= k), P(X >= k))).
  boost::math::binomial_distribution<double> bin(static_cast<double>(trials), 0.5);
  double k = static_cast<double>(successes);
  double lower = boost::math::cdf(bin, k);                                         // P(X <= k)
  double upper = successes == 0 ? 1.0 : boost::math::cdf(boost::math::complement(bin, k - 1));  // P(X >= k)
  return std::min(1.0, 2.0 * std::min(lower, upper));
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
  double nd = static_cast<double>(n);
  double var = std::max(0.0, (sum_sq - sum * sum / nd) / (nd - 1));  // sample variance
  double t = std::log(2.0 / alpha);
  return sum / nd - std::sqrt(2.0 * var * t / nd) - 7.0 * t / (3.0 * (nd - 1));
}

}  // namespace macer
