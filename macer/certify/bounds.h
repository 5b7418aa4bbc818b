// Confidence bounds and tests for randomized-smoothing certification (SPEC.md, "Certification"):
// Clopper-Pearson, the two-sided binomial test, Phi^-1 and the empirical Bernstein bound.
#pragma once
#include <cstdint>

namespace macer {

// One-sided (1 - alpha) Clopper-Pearson lower bound on p from `successes` of `trials`: the
// alpha quantile of Beta(nA, n - nA + 1), and 0 when nA = 0. Equals Cohen's
// statsmodels proportion_confint(nA, n, alpha=2*alpha, method="beta")[0]. Exact to 1e-9
// relative wherever it is a normal double (n up to 2^40, alpha down to 1e-300; tested against
// mpmath), monotone in nA; throws only on impossible counts or alpha outside (0, 1).
double clopper_pearson_lower(int64_t successes, int64_t trials, double alpha);

// Exact two-sided p-value of the binomial test of `successes` in `trials` at p = 0.5
// (scipy.stats.binomtest(...).pvalue, statsmodels binom_test). 1 when trials = 0. Computed in
// 113-bit floating point: exact to 1e-9 relative up to n = 2^40.
double binomial_test_half(int64_t successes, int64_t trials);

// Phi^-1(p), the standard normal quantile; -inf at p <= 0 and +inf at p >= 1.
double normal_quantile(double p);
// Phi(x), the standard normal CDF.
double normal_cdf(double x);

// MACER's soft lower bound on E[softmax(beta z)_cA] from n draws whose sum is `sum` and sum of
// squares `sum_sq` (empirical Bernstein, Maurer & Pontil 2009):
//   var = max(0, (S2 - S^2/n) / (n - 1)),  t = ln(2/alpha),
//   pA  = S/n - sqrt(2 var t / n) - 7 t / (3 (n - 1)).
// Needs n >= 2; returns 0 for smaller n (nothing can be certified). Evaluated in 113-bit
// floating point (S2 - S^2/n cancels when the draws are nearly constant).
double bernstein_lower(double sum, double sum_sq, int64_t n, double alpha);

}  // namespace macer
