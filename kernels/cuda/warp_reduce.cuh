// Warp and block reductions shared by the CUDA loss kernels of the training methods
// (attack_loss.cu, consistency_loss.cu, smoothmix_loss.cu): one warp per row, one block per image.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace macer::kernels::cuda {

constexpr int kLossThreads = 256;  // 8 warps per block
constexpr int kLossWarps = kLossThreads / 32;
constexpr size_t kLossMaxShared = 48 * 1024;  // dynamic shared memory without opting in

__device__ __forceinline__ float warp_max_f(float v) {
  for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}
__device__ __forceinline__ float warp_sum_f(float v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}
__device__ __forceinline__ double warp_sum_d(double v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

// logsumexp of one row of `classes` logits by one warp, max-subtracted; in every lane.
__device__ __forceinline__ float warp_logsumexp(const float* row, int classes) {
  float m = -INFINITY;
  for (int c = threadIdx.x & 31; c < classes; c += 32) m = fmaxf(m, row[c]);
  m = warp_max_f(m);
  float s = 0.0f;
  for (int c = threadIdx.x & 31; c < classes; c += 32) s += expf(row[c] - m);
  return m + logf(warp_sum_f(s));
}

// Sum of a double over a block of kLossThreads threads; valid in thread 0. Call it from every
// thread; it synchronises, and a second call may follow directly.
__device__ __forceinline__ double block_sum_d(double v) {
  __shared__ double warp_sums[kLossWarps];
  v = warp_sum_d(v);
  __syncthreads();  // a previous call's readers are done with warp_sums
  if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x >> 5] = v;
  __syncthreads();
  double total = 0.0;
  if (threadIdx.x == 0)
    for (int w = 0; w < kLossWarps; ++w) total += warp_sums[w];
  return total;
}

// logsumexp of n floats in shared or global memory, by one thread (n is k, small).
__device__ __forceinline__ float serial_logsumexp(const float* v, int n) {
  float m = -INFINITY;
  for (int i = 0; i < n; ++i) m = fmaxf(m, v[i]);
  if (!isfinite(m)) return m;
  float s = 0.0f;
  for (int i = 0; i < n; ++i) s += expf(v[i] - m);
  return m + logf(s);
}

namespace {
// loss[0] = (1/B) sum_b (a[b] + w r[b]), summed in double in a fixed order; one block of
// kLossThreads threads (an image's terms come from the per-image kernels).
__global__ void mean_terms_kernel(int batch, float w, const float* a, const float* r, float* loss) {
  double s = 0.0;
  for (int b = threadIdx.x; b < batch; b += blockDim.x) s += double(a[b]) + double(w) * double(r[b]);
  const double total = block_sum_d(s);
  if (threadIdx.x == 0) loss[0] = float(total / batch);
}
}  // namespace

}  // namespace macer::kernels::cuda
