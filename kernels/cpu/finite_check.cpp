// CPU reference of kernels/finite_check.h: one pass that stops at the first non-finite value.
#include "kernels/finite_check.h"

#include <cmath>

namespace macer::kernels::cpu {

void first_bad_tag(int64_t n, const float* x, int64_t tag, int64_t* first) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) {
      if (tag < *first) *first = tag;
      return;
    }
}

}  // namespace macer::kernels::cpu
