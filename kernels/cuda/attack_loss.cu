// CUDA attack loss (kernels/attack_loss.h): one block per image, a warp per row for the row
// statistics, then every thread on the (k, C) seed. In float, through logs, as the CPU twin.
#include <cmath>

#include "kernels/attack_loss.h"
#include "kernels/cuda/context.h"
#include "kernels/cuda/warp_reduce.cuh"

namespace macer::kernels::cuda {

namespace {

__global__ void attack_loss_kernel(AttackLossParams p, const float* logits, const int32_t* labels, float* loss,
                                   float* dlogits) {
  extern __shared__ float smem[];
  float* lse = smem;             // (k) logsumexp of each row
  float* lpy = smem + p.copies;  // (k) term LP
  __shared__ float lse_y, w_scale;
  const int b = blockIdx.x, k = p.copies, C = p.classes, y = labels[b];
  const float* z = logits + int64_t(b) * k * C;
  float* dz = dlogits + int64_t(b) * k * C;
  for (int i = threadIdx.x >> 5; i < k; i += kLossWarps) {
    const float l = warp_logsumexp(z + int64_t(i) * C, C);
    if ((threadIdx.x & 31) == 0) {
      lse[i] = l;
      lpy[i] = z[int64_t(i) * C + y] - l;  // term LP: lp_i = log p_{i,y}
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    const float l = serial_logsumexp(lpy, k);
    const double log_q = double(l) - log(double(k));  // term LQ
    const double log_clamp = log(kAttackClamp);
    const bool clamped = !(log_q >= log_clamp);
    loss[b] = float(-(clamped ? log_clamp : log_q));  // term LOSS
    lse_y = l;
    w_scale = clamped ? 0.0f : p.scale;
  }
  __syncthreads();
  for (int e = threadIdx.x; e < k * C; e += blockDim.x) {
    const int i = e / C, c = e - i * C;
    const float w = w_scale * expf(lpy[i] - lse_y);  // term W (times scale)
    const float pc = expf(z[e] - lse[i]);
    dz[e] = -w * ((c == y ? 1.0f : 0.0f) - pc);  // term SEED
  }
}

}  // namespace

void attack_loss(const AttackLossParams& p, const float* logits, const int32_t* labels, float* loss, float* dlogits) {
  if (p.batch <= 0) return;
  const size_t shared = 2 * sizeof(float) * size_t(p.copies);
  MACER_CHECK(shared <= kLossMaxShared, "attack loss: " << p.copies << " copies exceed shared memory");
  attack_loss_kernel<<<p.batch, kLossThreads, shared, stream()>>>(p, logits, labels, loss, dlogits);
  MACER_LAUNCH_CHECK();
}

}  // namespace macer::kernels::cuda
