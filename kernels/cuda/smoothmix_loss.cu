// CUDA SmoothMix loss (kernels/smoothmix_loss.h): one block per image; warps for the row
// statistics of both logit sets, a thread per class for pbar and t, then the (k, C) gradients.
#include <cmath>

#include "kernels/cuda/context.h"
#include "kernels/cuda/warp_reduce.cuh"
#include "kernels/smoothmix_loss.h"

namespace macer::kernels::cuda {

namespace {

// lsec[i], lsem[i] = logsumexp of clean and mixed row i, by warps; ends synchronised.
__device__ void rows_lse(const float* zc, const float* zm, int k, int C, float* lsec, float* lsem) {
  for (int r = threadIdx.x >> 5; r < 2 * k; r += kLossWarps) {
    const int i = r < k ? r : r - k;
    const float l = warp_logsumexp((r < k ? zc : zm) + int64_t(i) * C, C);
    if ((threadIdx.x & 31) == 0) (r < k ? lsec : lsem)[i] = l;
  }
  __syncthreads();
}

// Column c: log pbar_c (term LPB), mlq_c (term MLQ), t_c (term T) and log t_c.
struct Column {
  float log_pbar, mlq, t, log_t;
};
__device__ __forceinline__ Column column_stats(const float* zc, const float* zm, const float* lsec, const float* lsem,
                                               int k, int C, int c, float lam) {
  float m = -INFINITY, sum = 0.0f;
  for (int i = 0; i < k; ++i) {
    m = fmaxf(m, zc[int64_t(i) * C + c] - lsec[i]);
    sum += zm[int64_t(i) * C + c] - lsem[i];
  }
  float e = 0.0f;
  for (int i = 0; i < k; ++i) e += expf(zc[int64_t(i) * C + c] - lsec[i] - m);
  Column col;
  col.log_pbar = m + logf(e) - logf(float(k));
  col.mlq = sum / float(k);
  col.t = (1.0f - lam) * expf(col.log_pbar) + lam / float(C);
  col.log_t = lam > 0.0f ? logf(col.t) : col.log_pbar;
  return col;
}

__global__ void smoothmix_forward_kernel(SmoothMixLossParams p, const float* clean, const float* mixed,
                                         const int32_t* labels, const float* lam, float* ce, float* mix,
                                         float* correct) {
  extern __shared__ float smem[];
  const int b = blockIdx.x, k = p.copies, C = p.classes, y = labels[b];
  float* lsec = smem;          // (k)
  float* lsem = lsec + k;      // (k)
  float* log_pbar = lsem + k;  // (C)
  __shared__ int ind;
  const float* zc = clean + int64_t(b) * k * C;
  const float* zm = mixed + int64_t(b) * k * C;
  const float l = lam[b];
  rows_lse(zc, zm, k, C, lsec, lsem);
  for (int c = threadIdx.x; c < C; c += blockDim.x) log_pbar[c] = column_stats(zc, zm, lsec, lsem, k, C, c, l).log_pbar;
  __syncthreads();
  if (threadIdx.x == 0) {  // term IND: argmax of pbar, the lowest class on ties
    int top = 0;
    for (int c = 1; c < C; ++c)
      if (log_pbar[c] > log_pbar[top]) top = c;
    ind = top == y;
  }
  __syncthreads();
  double kl = 0.0, ce_sum = 0.0;
  if (ind)
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
      const Column col = column_stats(zc, zm, lsec, lsem, k, C, c, l);
      if (col.t > 0.0f) kl += double(col.t) * double(col.log_t - col.mlq);  // term KL
    }
  for (int i = threadIdx.x; i < k; i += blockDim.x) ce_sum += double(lsec[i]) - double(zc[int64_t(i) * C + y]);
  const double t_kl = block_sum_d(kl), t_ce = block_sum_d(ce_sum);
  if (threadIdx.x == 0) {
    ce[b] = float(t_ce / k);  // term CE
    mix[b] = float(t_kl);
    correct[b] = ind ? 1.0f : 0.0f;
  }
}

__global__ void smoothmix_backward_kernel(SmoothMixLossParams p, const float* clean, const float* mixed,
                                          const int32_t* labels, const float* lam, const float* correct,
                                          const float* dloss, float* dclean, float* dmixed) {
  extern __shared__ float smem[];
  const int b = blockIdx.x, k = p.copies, C = p.classes, y = labels[b];
  float* lsec = smem;      // (k)
  float* lsem = lsec + k;  // (k)
  float* gp = lsem + k;    // (k) term GP
  float* g = gp + k;       // (C) term G
  float* t = g + C;        // (C) term T
  const float* zc = clean + int64_t(b) * k * C;
  const float* zm = mixed + int64_t(b) * k * C;
  float* dzc = dclean + int64_t(b) * k * C;
  float* dzm = dmixed + int64_t(b) * k * C;
  const float l = lam[b];
  const bool ind = correct[b] != 0.0f;
  const float G = dloss[0];
  rows_lse(zc, zm, k, C, lsec, lsem);
  if (ind) {
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
      const Column col = column_stats(zc, zm, lsec, lsem, k, C, c, l);
      t[c] = col.t;
      // term G (without G), 0 where t_c = 0
      g[c] = col.t > 0.0f ? p.eta_w / float(p.batch) * (col.log_t + 1.0f - col.mlq) : 0.0f;
    }
    __syncthreads();
    for (int i = threadIdx.x >> 5; i < k; i += kLossWarps) {
      const float* row = zc + int64_t(i) * C;
      float s = 0.0f;
      for (int c = threadIdx.x & 31; c < C; c += 32) s += g[c] * expf(row[c] - lsec[i]);
      s = warp_sum_f(s);
      if ((threadIdx.x & 31) == 0) gp[i] = s;  // term GP: <g, pc_i>
    }
    __syncthreads();
  }
  const float s = G / (float(p.batch) * float(k));
  const float dt = G * (1.0f - l) / float(k);
  for (int e = threadIdx.x; e < k * C; e += blockDim.x) {
    const int i = e / C, a = e - i * C;
    const float pa = expf(zc[e] - lsec[i]);
    float dc = s * (pa - (a == y ? 1.0f : 0.0f));  // term DCE
    if (ind) {
      dc += dt * pa * (g[a] - gp[i]);                          // term DT
      dzm[e] += s * p.eta_w * (expf(zm[e] - lsem[i]) - t[a]);  // term DM
    }
    dzc[e] += dc;
  }
}

}  // namespace

void smoothmix_loss_forward(const SmoothMixLossParams& p, const float* clean, const float* mixed, const int32_t* labels,
                            const float* lam, float* loss, float* ce, float* mix, float* correct) {
  if (p.batch <= 0) return;
  const size_t shared = sizeof(float) * (2 * size_t(p.copies) + size_t(p.classes));
  MACER_CHECK(shared <= kLossMaxShared,
              "SmoothMix loss: " << p.copies << " copies of " << p.classes << " classes exceed shared memory");
  smoothmix_forward_kernel<<<p.batch, kLossThreads, shared, stream()>>>(p, clean, mixed, labels, lam, ce, mix, correct);
  MACER_LAUNCH_CHECK();
  mean_terms_kernel<<<1, kLossThreads, 0, stream()>>>(p.batch, p.eta_w, ce, mix, loss);
  MACER_LAUNCH_CHECK();
}

void smoothmix_loss_backward(const SmoothMixLossParams& p, const float* clean, const float* mixed,
                             const int32_t* labels, const float* lam, const float* correct, const float* dloss,
                             float* dclean, float* dmixed) {
  if (p.batch <= 0) return;
  const size_t shared = sizeof(float) * (3 * size_t(p.copies) + 2 * size_t(p.classes));
  MACER_CHECK(shared <= kLossMaxShared,
              "SmoothMix loss: " << p.copies << " copies of " << p.classes << " classes exceed shared memory");
  smoothmix_backward_kernel<<<p.batch, kLossThreads, shared, stream()>>>(p, clean, mixed, labels, lam, correct, dloss,
                                                                         dclean, dmixed);
  MACER_LAUNCH_CHECK();
}

}  // namespace macer::kernels::cuda
