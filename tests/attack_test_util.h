// A seed for the attack tests (macer/objectives/attacks.h): the gradient of the Gaussian loss
// (mean cross-entropy over the B*k rows) at the logits, computed plainly on the host in double.
#pragma once
#include <cmath>
#include <vector>

#include "engine/tensor.h"

namespace macer::testing {

// d/dz of (1/(B k)) sum_r CE(z_r, y_{r/k}) = (softmax(z_r) - onehot(y)) / (B k), on the logits' device.
inline Tensor gaussian_seed(const Tensor& logits, const Tensor& labels, int copies) {
  Tensor z = logits.to(Device::CPU), y = labels.to(Device::CPU);
  const int64_t rows = z.dim(0), c = z.dim(1);
  Tensor d = Tensor::empty(z.shape());
  for (int64_t r = 0; r < rows; ++r) {
    const float* zr = z.data() + r * c;
    double m = zr[0], sum = 0;
    for (int64_t j = 1; j < c; ++j) m = std::max(m, double(zr[j]));
    for (int64_t j = 0; j < c; ++j) sum += std::exp(zr[j] - m);
    for (int64_t j = 0; j < c; ++j) {
      const double p = std::exp(zr[j] - m) / sum;
      d.data()[r * c + j] = float((p - (j == y.data<int32_t>()[r / copies] ? 1.0 : 0.0)) / double(rows));
    }
  }
  return d.to(logits.device());
}

}  // namespace macer::testing
