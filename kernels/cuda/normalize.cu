// CUDA input normalization (kernels/normalize.h): one grid-stride loop per direction, the
// channel of flat index i being (i / HW) mod C; launches go on cuda::stream().
#include <algorithm>
#include <cstdint>

#include "kernels/cuda/context.h"
#include "kernels/normalize.h"

namespace macer::kernels::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 4096;  // grid-stride: enough blocks to fill an H100 many times

unsigned blocks_for(int64_t n) {
  return unsigned(std::max<int64_t>(1, std::min<int64_t>((n + kThreads - 1) / kThreads, kMaxBlocks)));
}

// Same arithmetic as the CPU reference: a subtraction then a true division, so both agree
// to the last bit.
__global__ void normalize_forward_kernel(NormalizeShape s, int64_t total, const float* x, float* y) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int c = int((i / s.hw) % s.c);
    y[i] = __fdiv_rn(x[i] - s.mean[c], s.std[c]);
  }
}

__global__ void normalize_backward_kernel(NormalizeShape s, int64_t total, const float* dy, float* dx) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int c = int((i / s.hw) % s.c);
    dx[i] += __fdiv_rn(dy[i], s.std[c]);
  }
}

}  // namespace

void normalize_forward(const NormalizeShape& s, const float* x, float* y) {
  const int64_t total = s.n * s.c * s.hw;
  if (total <= 0) return;
  normalize_forward_kernel<<<blocks_for(total), kThreads, 0, stream()>>>(s, total, x, y);
  MACER_LAUNCH_CHECK();
}

void normalize_backward(const NormalizeShape& s, const float* dy, float* dx) {
  const int64_t total = s.n * s.c * s.hw;
  if (total <= 0) return;
  normalize_backward_kernel<<<blocks_for(total), kThreads, 0, stream()>>>(s, total, dy, dx);
  MACER_LAUNCH_CHECK();
}

}  // namespace macer::kernels::cuda
