// CPU reference of the smoothing reductions (kernels/smoothing.h): argmax histogram, soft
// sums of softmax(beta z) and their squares, and majority-vote correctness over k copies.
#include "kernels/smoothing.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace macer::kernels::cpu {

namespace {
// Ties go to the lowest class and NaN never wins; a row of only NaN and -inf gives class 0.
// The CUDA warp_argmax follows the same rule, so both devices vote alike on any row.
int argmax_row(const float* z, int classes) {
  int at = 0;
  float best = -INFINITY;
  for (int c = 0; c < classes; ++c)
    if (z[c] > best) best = z[c], at = c;
  return at;
}
}  // namespace

void argmax_histogram(const LogitsShape& s, const float* logits, int64_t* counts) {
  for (int r = 0; r < s.rows; ++r) ++counts[argmax_row(logits + int64_t(r) * s.classes, s.classes)];
}

void soft_histogram(const LogitsShape& s, float beta, const float* logits, double* sums, double* sumsq) {
  std::vector<double> p(s.classes);
  for (int r = 0; r < s.rows; ++r) {
    const float* z = logits + int64_t(r) * s.classes;
    float m = *std::max_element(z, z + s.classes);
    double total = 0;
    for (int c = 0; c < s.classes; ++c) total += p[c] = std::exp(double(beta) * (double(z[c]) - m));
    for (int c = 0; c < s.classes; ++c) {
      double q = p[c] / total;
      sums[c] += q;
      sumsq[c] += q * q;
    }
  }
}

void vote_correct(const LogitsShape& s, int copies, const float* logits, const int32_t* labels, float* correct) {
  std::vector<int> votes(s.classes);
  int inputs = s.rows / copies;
  for (int b = 0; b < inputs; ++b) {
    std::fill(votes.begin(), votes.end(), 0);
    for (int j = 0; j < copies; ++j)
      ++votes[argmax_row(logits + (int64_t(b) * copies + j) * s.classes, s.classes)];
    int winner = int(std::max_element(votes.begin(), votes.end()) - votes.begin());
    if (winner == labels[b]) correct[0] += 1.0f;
  }
}

}  // namespace macer::kernels::cpu
