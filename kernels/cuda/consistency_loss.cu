// CUDA Consistency objective (kernels/consistency_loss.h): one block per image; a warp per row for
// the row statistics, a thread per class for pbar, then every thread on the (k, C) gradient.
#include <cmath>

#include "kernels/consistency_loss.h"
#include "kernels/cuda/context.h"
#include "kernels/cuda/warp_reduce.cuh"

namespace macer::kernels::cuda {

namespace {

// lse[i] = logsumexp(z_i) for the image's k rows, by warps; ends synchronised.
__device__ void row_lse(const float* z, int k, int C, float* lse) {
  for (int i = threadIdx.x >> 5; i < k; i += kLossWarps) {
    const float l = warp_logsumexp(z + int64_t(i) * C, C);
    if ((threadIdx.x & 31) == 0) lse[i] = l;
  }
  __syncthreads();
}

// Column c: log pbar_c (term LPB) and mlp_c (term MLP) from z and the row lse.
__device__ __forceinline__ void column_stats(const float* z, const float* lse, int k, int C, int c, float* log_pbar,
                                             float* mlp) {
  float m = -INFINITY, sum = 0.0f;
  for (int i = 0; i < k; ++i) {
    const float l = z[int64_t(i) * C + c] - lse[i];
    m = fmaxf(m, l);
    sum += l;
  }
  float e = 0.0f;
  for (int i = 0; i < k; ++i) e += expf(z[int64_t(i) * C + c] - lse[i] - m);
  *log_pbar = m + logf(e) - logf(float(k));
  *mlp = sum / float(k);
}

__global__ void consistency_forward_kernel(ConsistencyLossParams p, const float* logits, const int32_t* labels,
                                           float* ce, float* reg) {
  extern __shared__ float smem[];
  float* lse = smem;  // (k)
  const int b = blockIdx.x, k = p.copies, C = p.classes, y = labels[b];
  const float* z = logits + int64_t(b) * k * C;
  row_lse(z, k, C, lse);
  const float log_clamp = logf(float(kEntropyClamp));
  double kl = 0.0, ent = 0.0, ce_sum = 0.0;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    float lpb, mlp;
    column_stats(z, lse, k, C, c, &lpb, &mlp);
    const float pbar = expf(lpb);
    kl += double(pbar) * double(lpb - mlp);                            // term KL
    ent -= double(pbar) * double(lpb >= log_clamp ? lpb : log_clamp);  // term ENT
  }
  for (int i = threadIdx.x; i < k; i += blockDim.x) ce_sum += double(lse[i]) - double(z[int64_t(i) * C + y]);
  const double t_kl = block_sum_d(kl), t_ent = block_sum_d(ent), t_ce = block_sum_d(ce_sum);
  if (threadIdx.x == 0) {
    ce[b] = float(t_ce / k);  // term CE
    reg[b] = float(double(p.lambda) * t_kl + double(p.eta) * t_ent);
  }
}

__global__ void consistency_backward_kernel(ConsistencyLossParams p, const float* logits, const int32_t* labels,
                                            const float* dloss, float* dlogits) {
  extern __shared__ float smem[];
  const int b = blockIdx.x, k = p.copies, C = p.classes, y = labels[b];
  float* lse = smem;    // (k)
  float* gp = lse + k;  // (k) term GP
  float* g = gp + k;    // (C) term G
  float* pbar = g + C;  // (C)
  const float* z = logits + int64_t(b) * k * C;
  float* dz = dlogits + int64_t(b) * k * C;
  row_lse(z, k, C, lse);
  const float log_clamp = logf(float(kEntropyClamp));
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    float lpb, mlp;
    column_stats(z, lse, k, C, c, &lpb, &mlp);
    pbar[c] = expf(lpb);
    // term G: lambda (log pbar_c + 1) - lambda mlp_c - eta (log pbar_c + 1, or log 1e-20 clamped)
    g[c] = p.lambda * (lpb + 1.0f) - p.lambda * mlp - p.eta * (lpb >= log_clamp ? lpb + 1.0f : log_clamp);
  }
  __syncthreads();
  for (int i = threadIdx.x >> 5; i < k; i += kLossWarps) {
    const float* row = z + int64_t(i) * C;
    float s = 0.0f;
    for (int c = threadIdx.x & 31; c < C; c += 32) s += g[c] * expf(row[c] - lse[i]);
    s = warp_sum_f(s);
    if ((threadIdx.x & 31) == 0) gp[i] = s;  // term GP: <g, p_i>
  }
  __syncthreads();
  const float scale = dloss[0] / (float(p.batch) * float(k));
  for (int e = threadIdx.x; e < k * C; e += blockDim.x) {
    const int i = e / C, a = e - i * C;
    const float pa = expf(z[e] - lse[i]);
    const float d = pa * (g[a] - gp[i])               // term PBAR
                    - p.lambda * (pbar[a] - pa)       // term LOGP
                    + (pa - (a == y ? 1.0f : 0.0f));  // term CE
    dz[e] += scale * d;
  }
}

}  // namespace

void consistency_loss_forward(const ConsistencyLossParams& p, const float* logits, const int32_t* labels, float* loss,
                              float* ce, float* reg) {
  if (p.batch <= 0) return;
  const size_t shared = sizeof(float) * size_t(p.copies);
  MACER_CHECK(shared <= kLossMaxShared, "Consistency loss: " << p.copies << " copies exceed shared memory");
  consistency_forward_kernel<<<p.batch, kLossThreads, shared, stream()>>>(p, logits, labels, ce, reg);
  MACER_LAUNCH_CHECK();
  mean_terms_kernel<<<1, kLossThreads, 0, stream()>>>(p.batch, 1.0f, ce, reg, loss);
  MACER_LAUNCH_CHECK();
}

void consistency_loss_backward(const ConsistencyLossParams& p, const float* logits, const int32_t* labels,
                               const float* dloss, float* dlogits) {
  if (p.batch <= 0) return;
  const size_t shared = sizeof(float) * (2 * size_t(p.copies) + 2 * size_t(p.classes));
  MACER_CHECK(shared <= kLossMaxShared,
              "Consistency loss: " << p.copies << " copies of " << p.classes << " classes exceed shared memory");
  consistency_backward_kernel<<<p.batch, kLossThreads, shared, stream()>>>(p, logits, labels, dloss, dlogits);
  MACER_LAUNCH_CHECK();
}

}  // namespace macer::kernels::cuda
