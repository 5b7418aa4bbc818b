// Reductions for randomized smoothing on the device: the histogram of argmax classes (hard
// counts), the sums of softmax(beta z) and of their squares (soft certification), and votes.
#pragma once
#include <cstdint>

namespace macer::kernels {

struct LogitsShape {
  int rows, classes;
};

// argmax here: ties go to the lowest class, NaN never wins, a row of NaN and -inf gives 0.
// argmax_histogram: counts[argmax_c logits[r]] += 1 for every row (ties: lowest class)
// soft_histogram:   sums[c] += softmax(beta logits[r])[c]; sumsq[c] += its square (double)
// vote_correct:     rows = B*k viewed as (B, k); correct[0] += number of b whose most voted
//                   class (argmax counts over its k copies, ties: lowest) equals labels[b]
#define MACER_SMOOTHING_API                                                                  \
  void argmax_histogram(const LogitsShape& s, const float* logits, int64_t* counts);        \
  void soft_histogram(const LogitsShape& s, float beta, const float* logits, double* sums,   \
                      double* sumsq);                                                        \
  void vote_correct(const LogitsShape& s, int copies, const float* logits,                   \
                    const int32_t* labels, float* correct);

namespace cpu { MACER_SMOOTHING_API }
namespace cuda { MACER_SMOOTHING_API }
#undef MACER_SMOOTHING_API

}  // namespace macer::kernels
