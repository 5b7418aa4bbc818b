// CUDA twin of kernels/finite_check.h: a grid-stride pass; a thread that meets a non-finite
// value lowers the flag with atomicMin, so the common (all finite) case writes nothing.
#include "kernels/cuda/context.h"
#include "kernels/finite_check.h"

namespace macer::kernels::cuda {

namespace {
__global__ void first_bad_tag_kernel(int64_t n, const float* x, long long tag, long long* first) {
  bool bad = false;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    bad |= !isfinite(x[i]);
  if (bad) atomicMin(first, tag);
}
}  // namespace

void first_bad_tag(int64_t n, const float* x, int64_t tag, int64_t* first) {
  if (n <= 0) return;
  constexpr int kThreads = 256;
  int64_t want = (n + kThreads - 1) / kThreads;
  unsigned blocks = unsigned(want < 1024 ? want : 1024);
  first_bad_tag_kernel<<<blocks, kThreads, 0, stream()>>>(n, x, static_cast<long long>(tag),
                                                          reinterpret_cast<long long*>(first));
  MACER_LAUNCH_CHECK();
}

}  // namespace macer::kernels::cuda
