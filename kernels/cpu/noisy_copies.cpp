// CPU noisy copies (kernels/noisy_copies.h): the same Philox draws as the CUDA kernel, global
// element g taking normals4(seed, counter, g / 4).v[g % 4]. Each block of four is drawn alone
// from its counter, so the split over threads (or ranks) changes no bit.
#include "kernels/noisy_copies.h"

#include <algorithm>
#include <cmath>

#include "kernels/philox.h"
#include "kernels/cpu/parallel.h"

namespace macer::kernels::cpu {

void noisy_copies(const NoisyCopiesShape& s, const float* x, float sigma, uint64_t seed, uint64_t counter,
                  float* y) {
  const int64_t d = s.features;
  const int64_t total = int64_t(s.batch) * s.copies * d;
  if (total <= 0) return;
  // Global quads [4q, 4q + 4) overlapping the local elements, which start at global `offset`.
  const int64_t offset = s.first_input * s.copies * d;
  const int64_t q0 = offset / 4, quads = (offset + total + 3) / 4 - q0;
  // ~40 flops per value (ten Philox rounds, log, sqrt, sin, cos per pair)
  parallel_for(quads, 64, [&](int64_t first, int64_t last) {
    int64_t i = std::max<int64_t>(0, (q0 + first) * 4 - offset);  // this chunk's first local element
    int64_t e = i % d, src = (i / d / s.copies) * d;  // copy j of input b sits at row b*k + j
    int64_t row_left = d - e;                          // elements left in this output row
    int64_t j_left = s.copies - (i / d) % s.copies;    // copies left of this input (this one too)
    for (int64_t q = q0 + first; q < q0 + last; ++q) {
      philox::F32x4 n = philox::normals4(seed, counter, uint64_t(q));
      for (int lane = 0; lane < 4; ++lane) {
        if (q * 4 + lane < offset || i >= total) continue;  // lanes of the neighbouring slices
        y[i] = x[src + e] + sigma * n.v[lane];
        ++i, ++e;
        if (--row_left == 0) {  // next output row: the next copy, or the next input's first
          e = 0, row_left = d;
          if (--j_left == 0) src += d, j_left = s.copies;
        }
      }
    }
  });
}

}  // namespace macer::kernels::cpu
