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
  const int64_t offset = s.first_input * s.copies * d;  // global number of local element 0
  if (total <= 0) return;
  // Quads of global elements [4q, 4q + 4) that overlap [offset, offset + total).
  for (int64_t q = offset / 4; q * 4 < offset + total; ++q) {
    philox::F32x4 n = philox::normals4(seed, counter, uint64_t(q));
    for (int lane = 0; lane < 4; ++lane) {
      int64_t i = q * 4 + lane - offset;  // local element
      if (i < 0 || i >= total) continue;
      int64_t row = i / d, e = i % d;
      int64_t b = row / s.copies;  // copy j of input b sits at row b*k + j
      y[i] = x[b * d + e] + sigma * n.v[lane];
    }
  }
}

}  // namespace macer::kernels::cpu
