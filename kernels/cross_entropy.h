// Softmax cross-entropy averaged over rows. With group = k, row r takes label labels[r / k]:
// group 1 is plain classification, group k the Gaussian-augmentation objective over B*k copies.
#pragma once
#include <cstdint>

namespace macer::kernels {

struct CrossEntropyShape {
  int rows, classes;
  int group = 1;  // rows per label
};

// forward:  loss[0] = (1/rows) sum_r -log softmax(logits[r])[labels[r / group]]
// backward: dlogits[r,c] += dloss[0] / rows * (softmax(logits[r])[c] - [c == label_r])
//           (dloss is a one-element buffer on the same device: no host round trip)
#define MACER_CROSS_ENTROPY_API                                                              \
  void cross_entropy_forward(const CrossEntropyShape& s, const float* logits,               \
                             const int32_t* labels, float* loss);                           \
  void cross_entropy_backward(const CrossEntropyShape& s, const float* logits,              \
                              const int32_t* labels, const float* dloss, float* dlogits);

namespace cpu { MACER_CROSS_ENTROPY_API }
namespace cuda { MACER_CROSS_ENTROPY_API }
#undef MACER_CROSS_ENTROPY_API

}  // namespace macer::kernels
