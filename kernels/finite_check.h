// A device-side guard against divergence: marks, without a host synchronisation, the first
// step (or any tag) at which a buffer held a NaN or an infinity; read back once per epoch.
#pragma once
#include <cstdint>

namespace macer::kernels {

// first_bad_tag: if any of x[0..n) is NaN or +-inf, *first = min(*first, tag). Start *first at
// INT64_MAX ("nothing seen yet"); the smallest tag among the bad calls survives, whatever the
// order in which they ran.
#define MACER_FINITE_CHECK_API \
  void first_bad_tag(int64_t n, const float* x, int64_t tag, int64_t* first);

namespace cpu { MACER_FINITE_CHECK_API }
namespace cuda { MACER_FINITE_CHECK_API }
#undef MACER_FINITE_CHECK_API

}  // namespace macer::kernels
