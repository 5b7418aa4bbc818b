// CPU reference of noisy copies (kernels/noisy_copies.h): the same Philox draws as the CUDA
// kernel, element i of the output taking normals4(seed, counter, i / 4).v[i % 4].
#include "kernels/noisy_copies.h"

#include <cmath>

#include "engine/philox.h"

namespace macer::kernels::cpu {

void noisy_copies(const NoisyCopiesShape& s, const float* x, float sigma, uint64_t seed, uint64_t counter,
                  float* y) {
  const int64_t d = s.features;
  const int64_t total = int64_t(s.batch) * s.copies * d;
  for (int64_t block = 0; block * 4 < total; ++block) {
    philox::F32x4 n = philox::normals4(seed, counter, uint64_t(block));
    for (int lane = 0; lane < 4; ++lane) {
      int64_t i = block * 4 + lane;
      if (i >= total) break;
      int64_t row = i / d, e = i % d;
      int64_t b = row / s.copies;  // copy j of input b sits at row b*k + j
      y[i] = x[b * d + e] + sigma * n.v[lane];
    }
  }
}

}  // namespace macer::kernels::cpu
