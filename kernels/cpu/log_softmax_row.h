// One row's log-softmax in double for the CPU loss kernels (attack, Consistency, SmoothMix):
// lp[c] = z[c] - logsumexp(z), max-subtracted, so it stays finite where softmax underflows.
#pragma once
#include <algorithm>
#include <cmath>
#include <limits>

namespace macer::kernels::cpu {

// Fills lp (C) and returns logsumexp(z) over the C >= 1 entries of z.
inline double log_softmax_row(const float* z, int C, double* lp) {
  double m = -std::numeric_limits<double>::infinity();
  for (int c = 0; c < C; ++c) m = std::max(m, double(z[c]));
  double sum = 0.0;
  for (int c = 0; c < C; ++c) sum += std::exp(double(z[c]) - m);
  const double lse = m + std::log(sum);
  for (int c = 0; c < C; ++c) lp[c] = double(z[c]) - lse;
  return lse;
}

// logsumexp of n values (n >= 1), max-subtracted; -inf when every value is -inf.
inline double logsumexp(const double* v, int n) {
  double m = -std::numeric_limits<double>::infinity();
  for (int i = 0; i < n; ++i) m = std::max(m, v[i]);
  if (!std::isfinite(m)) return m;
  double sum = 0.0;
  for (int i = 0; i < n; ++i) sum += std::exp(v[i] - m);
  return m + std::log(sum);
}

}  // namespace macer::kernels::cpu
