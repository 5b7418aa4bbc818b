// CPU attack arithmetic (kernels/attack.h): one image per task, norms accumulated in double.
// The reference the CUDA kernels are checked against.
#include "kernels/attack.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/parallel.h"

namespace macer::kernels::cpu {

namespace {
double norm2(const float* v, int64_t d) {
  double s = 0;
  for (int64_t e = 0; e < d; ++e) s += double(v[e]) * v[e];
  return std::sqrt(s);
}
float clip01(float v) { return std::min(1.0f, std::max(0.0f, v)); }
}  // namespace

void attack_sum_copies(const AttackShape& s, const float* dnoisy, float* g) {
  const int64_t d = s.features;
  parallel_for(s.batch, int64_t(s.copies) * d, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      float* gb = g + b * d;
      std::fill(gb, gb + d, 0.0f);
      for (int j = 0; j < s.copies; ++j) {
        const float* src = dnoisy + (b * s.copies + j) * d;
        for (int64_t e = 0; e < d; ++e) gb[e] += src[e];
      }
    }
  });
}

void pgd_step(const AttackShape& s, const float* x, const float* g, float step, float eps, uint64_t seed,
              uint64_t counter, float* delta, float* x_adv) {
  const int64_t d = s.features;
  parallel_for(s.batch, 8 * d, [&](int64_t b0, int64_t b1) {
    std::vector<float> r;
    for (int64_t b = b0; b < b1; ++b) {
      const float* xb = x + b * d;
      const float* gb = g + b * d;
      float* db = delta + b * d;
      const double gnorm = norm2(gb, d);
      const float* u = gb;
      double unorm = gnorm;
      if (gnorm == 0) {  // no gradient: a random unit direction
        r.resize(size_t(d));
        const uint64_t first = uint64_t(s.first_input + b) * uint64_t(d);
        for (int64_t e = 0; e < d; ++e) r[size_t(e)] = attack_normal(seed, counter, first + uint64_t(e));
        u = r.data(), unorm = norm2(r.data(), d);
      }
      const float scale = unorm > 0 ? float(step / unorm) : 0.0f;
      for (int64_t e = 0; e < d; ++e) db[e] = clip01(xb[e] + (db[e] + scale * u[e])) - xb[e];
      const double dnorm = norm2(db, d);
      const float shrink = dnorm > eps ? float(eps / dnorm) : 1.0f;
      for (int64_t e = 0; e < d; ++e) {
        db[e] *= shrink;
        x_adv[b * d + e] = xb[e] + db[e];
      }
    }
  });
}

void smoothmix_step(const AttackShape& s, const float* x_prev, const float* g, float alpha, float* x_next) {
  const int64_t d = s.features;
  parallel_for(s.batch, 4 * d, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const float scale = float(alpha / (norm2(g + b * d, d) + 1e-8));
      for (int64_t e = 0; e < d; ++e) x_next[b * d + e] = clip01(x_prev[b * d + e] + scale * g[b * d + e]);
    }
  });
}

void project_ball(const AttackShape& s, const float* x0, const float* x, float max_norm, float* y) {
  const int64_t d = s.features;
  parallel_for(s.batch, 4 * d, [&](int64_t b0, int64_t b1) {
    std::vector<float> diff(static_cast<size_t>(d));
    for (int64_t b = b0; b < b1; ++b) {
      for (int64_t e = 0; e < d; ++e) diff[size_t(e)] = x[b * d + e] - x0[b * d + e];
      const double n = norm2(diff.data(), d);
      const float shrink = n > max_norm ? float(max_norm / n) : 1.0f;
      for (int64_t e = 0; e < d; ++e) y[b * d + e] = clip01(x0[b * d + e] + diff[size_t(e)] * shrink);
    }
  });
}

void mix_inputs(const AttackShape& s, const float* x0, const float* x1, uint64_t seed, uint64_t counter, float* lam,
                float* y) {
  const int64_t d = s.features;
  parallel_for(s.batch, 2 * d, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const float l = mix_lambda(seed, counter, uint64_t(s.first_input + b));
      lam[b] = l;
      for (int64_t e = 0; e < d; ++e) y[b * d + e] = (1.0f - l) * x0[b * d + e] + l * x1[b * d + e];
    }
  });
}

}  // namespace macer::kernels::cpu
