// CUDA attack arithmetic (kernels/attack.h): one 256-thread block per image for the normalised
// steps (block reductions of the norms, in double like the CPU reference), grid-stride loops
// elsewhere; launches go on cuda::stream().
#include <algorithm>
#include <cstdint>

#include "kernels/attack.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/context.h"

namespace macer::kernels::cuda {

namespace {

constexpr int kThreads = 256;

// Sum of v over the block; every thread gets the result.
__device__ double block_sum(double v) {
  __shared__ double part[kThreads / 32];
  __shared__ double total;
  for (int off = 16; off > 0; off /= 2) v += __shfl_down_sync(0xffffffffu, v, off);
  if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    double s = 0;
    for (int w = 0; w < kThreads / 32; ++w) s += part[w];
    total = s;
  }
  __syncthreads();
  double out = total;
  __syncthreads();  // part and total are reused by the next call
  return out;
}

__device__ double block_norm(const float* v, int64_t d) {
  double s = 0;
  for (int64_t e = threadIdx.x; e < d; e += kThreads) s += double(v[e]) * v[e];
  return sqrt(block_sum(s));
}

__device__ float clip01(float v) { return fminf(1.0f, fmaxf(0.0f, v)); }

__global__ void sum_copies_kernel(AttackShape s, int64_t total, const float* dnoisy, float* g) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = i / s.features, e = i % s.features;
    float acc = 0.0f;
    for (int j = 0; j < s.copies; ++j) acc += dnoisy[(b * s.copies + j) * s.features + e];
    g[i] = acc;
  }
}

__global__ void pgd_step_kernel(AttackShape s, const float* x, const float* g, float step, float eps, uint64_t seed,
                                uint64_t counter, float* delta, float* x_adv) {
  const int64_t d = s.features, b = blockIdx.x;
  const float* xb = x + b * d;
  const float* gb = g + b * d;
  float* db = delta + b * d;
  const uint64_t first = uint64_t(s.first_input + b) * uint64_t(d);
  const double gnorm = block_norm(gb, d);
  const bool random = gnorm == 0;  // the same for the whole block
  double unorm = gnorm;
  if (random) {
    double acc = 0;
    for (int64_t e = threadIdx.x; e < d; e += kThreads) {
      const float r = attack_normal(seed, counter, first + uint64_t(e));
      acc += double(r) * r;
    }
    unorm = sqrt(block_sum(acc));
  }
  const float scale = unorm > 0 ? float(step / unorm) : 0.0f;
  double acc = 0;
  for (int64_t e = threadIdx.x; e < d; e += kThreads) {
    const float u = random ? attack_normal(seed, counter, first + uint64_t(e)) : gb[e];
    const float v = clip01(xb[e] + (db[e] + scale * u)) - xb[e];
    db[e] = v;
    acc += double(v) * v;
  }
  const double dnorm = sqrt(block_sum(acc));
  const float shrink = dnorm > eps ? float(eps / dnorm) : 1.0f;
  for (int64_t e = threadIdx.x; e < d; e += kThreads) {
    db[e] *= shrink;
    x_adv[b * d + e] = xb[e] + db[e];
  }
}

__global__ void smoothmix_step_kernel(AttackShape s, const float* x_prev, const float* g, float alpha, float* x_next) {
  const int64_t d = s.features, b = blockIdx.x;
  const float scale = float(alpha / (block_norm(g + b * d, d) + 1e-8));
  for (int64_t e = threadIdx.x; e < d; e += kThreads) x_next[b * d + e] = clip01(x_prev[b * d + e] + scale * g[b * d + e]);
}

__global__ void project_ball_kernel(AttackShape s, const float* x0, const float* x, float max_norm, float* y) {
  const int64_t d = s.features, b = blockIdx.x;
  double acc = 0;
  for (int64_t e = threadIdx.x; e < d; e += kThreads) {
    const float v = x[b * d + e] - x0[b * d + e];
    acc += double(v) * v;
  }
  const double n = sqrt(block_sum(acc));
  const float shrink = n > max_norm ? float(max_norm / n) : 1.0f;
  for (int64_t e = threadIdx.x; e < d; e += kThreads)
    y[b * d + e] = clip01(x0[b * d + e] + (x[b * d + e] - x0[b * d + e]) * shrink);
}

__global__ void mix_kernel(AttackShape s, const float* x0, const float* x1, uint64_t seed, uint64_t counter, float* lam,
                           float* y) {
  const int64_t d = s.features, b = blockIdx.x;
  const float l = mix_lambda(seed, counter, uint64_t(s.first_input + b));
  if (threadIdx.x == 0) lam[b] = l;
  for (int64_t e = threadIdx.x; e < d; e += kThreads) y[b * d + e] = (1.0f - l) * x0[b * d + e] + l * x1[b * d + e];
}

}  // namespace

void attack_sum_copies(const AttackShape& s, const float* dnoisy, float* g) {
  const int64_t total = int64_t(s.batch) * s.features;
  if (total <= 0) return;
  const unsigned blocks = unsigned(std::min<int64_t>((total + kThreads - 1) / kThreads, 4096));
  sum_copies_kernel<<<blocks, kThreads, 0, stream()>>>(s, total, dnoisy, g);
  MACER_LAUNCH_CHECK();
}

void pgd_step(const AttackShape& s, const float* x, const float* g, float step, float eps, uint64_t seed,
              uint64_t counter, float* delta, float* x_adv) {
  if (s.batch <= 0 || s.features <= 0) return;
  pgd_step_kernel<<<s.batch, kThreads, 0, stream()>>>(s, x, g, step, eps, seed, counter, delta, x_adv);
  MACER_LAUNCH_CHECK();
}

void smoothmix_step(const AttackShape& s, const float* x_prev, const float* g, float alpha, float* x_next) {
  if (s.batch <= 0 || s.features <= 0) return;
  smoothmix_step_kernel<<<s.batch, kThreads, 0, stream()>>>(s, x_prev, g, alpha, x_next);
  MACER_LAUNCH_CHECK();
}

void project_ball(const AttackShape& s, const float* x0, const float* x, float max_norm, float* y) {
  if (s.batch <= 0 || s.features <= 0) return;
  project_ball_kernel<<<s.batch, kThreads, 0, stream()>>>(s, x0, x, max_norm, y);
  MACER_LAUNCH_CHECK();
}

void mix_inputs(const AttackShape& s, const float* x0, const float* x1, uint64_t seed, uint64_t counter, float* lam,
                float* y) {
  if (s.batch <= 0 || s.features <= 0) return;
  mix_kernel<<<s.batch, kThreads, 0, stream()>>>(s, x0, x1, seed, counter, lam, y);
  MACER_LAUNCH_CHECK();
}

}  // namespace macer::kernels::cuda
