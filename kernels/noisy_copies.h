// Noisy copies for randomized smoothing: (B, D) -> (B*k, D), copy j of input b at row b*k + j,
// y = x[b] + sigma * n with n drawn inside the kernel from Philox(seed, counter) (kernels/philox.h).
#pragma once
#include <cstdint>

namespace macer::kernels {

struct NoisyCopiesShape {
  int batch, copies;
  int64_t features;         // D = C*H*W per input
  int64_t first_input = 0;  // global number of input 0 (data-parallel ranks hold slices of a batch)
};

// Output element i = (b*k + j)*D + e is global element g = first_input*k*D + i, and uses
// philox::normals4(seed, counter, g / 4).v[g % 4]: the noise of a sample depends on its place in
// the global batch, not on which rank draws it, and the CPU and CUDA versions draw the same bits
// and agree to float rounding.
#define MACER_NOISY_COPIES_API                                                          \
  void noisy_copies(const NoisyCopiesShape& s, const float* x, float sigma, uint64_t seed, \
                    uint64_t counter, float* y);

namespace cpu { MACER_NOISY_COPIES_API }
namespace cuda { MACER_NOISY_COPIES_API }
#undef MACER_NOISY_COPIES_API

}  // namespace macer::kernels
