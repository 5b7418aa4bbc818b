// CPU reference of softmax cross-entropy (kernels/cross_entropy.h): log-softmax with the row
// maximum subtracted, accumulated in double; row r takes label labels[r / group].
#include "kernels/cross_entropy.h"

#include <algorithm>
#include <cmath>

namespace macer::kernels::cpu {

namespace {
// log sum_c exp(z_c), stable.
double log_sum_exp(const float* z, int classes) {
  float m = *std::max_element(z, z + classes);
  double sum = 0;
  for (int c = 0; c < classes; ++c) sum += std::exp(double(z[c]) - m);
  return m + std::log(sum);
}
}  // namespace

void cross_entropy_forward(const CrossEntropyShape& s, const float* logits, const int32_t* labels, float* loss) {
  double total = 0;
  for (int r = 0; r < s.rows; ++r) {
    const float* z = logits + int64_t(r) * s.classes;
    total += log_sum_exp(z, s.classes) - z[labels[r / s.group]];
  }
  loss[0] = float(total / s.rows);
}

void cross_entropy_backward(const CrossEntropyShape& s, const float* logits, const int32_t* labels,
                            const float* dloss, float* dlogits) {
  const double g = double(dloss[0]) / s.rows;
  for (int r = 0; r < s.rows; ++r) {
    const float* z = logits + int64_t(r) * s.classes;
    float* dz = dlogits + int64_t(r) * s.classes;
    double lse = log_sum_exp(z, s.classes);
    int y = labels[r / s.group];
    for (int c = 0; c < s.classes; ++c) dz[c] += float(g * (std::exp(double(z[c]) - lse) - (c == y ? 1.0 : 0.0)));
  }
}

}  // namespace macer::kernels::cpu
