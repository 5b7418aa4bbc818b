// CUDA kernels for the losses (cross-entropy, the fused MACER objective), noisy copies and the
// randomized-smoothing reductions. The math is SPEC.md's; kernels/*.h name the terms.
#include <cmath>
#include <cstdint>

#include "kernels/philox.h"
#include "kernels/cross_entropy.h"
#include "kernels/cuda/context.h"
#include "kernels/macer_loss.h"
#include "kernels/noisy_copies.h"
#include "kernels/smoothing.h"

namespace macer::kernels::cuda {

namespace {

constexpr int kThreads = 256;  // 8 warps
constexpr int kWarps = kThreads / 32;
constexpr size_t kMaxShared = 48 * 1024;  // dynamic shared memory without opting in

__device__ __forceinline__ float warp_max(float v) {
  for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}
__device__ __forceinline__ float warp_sum(float v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}
__device__ __forceinline__ double warp_sum(double v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

// Row statistics by one warp: max of scale*z and 1 / sum exp(scale*z - max), in every lane.
__device__ __forceinline__ float2 warp_softmax_stats(const float* row, int classes, float scale) {
  float m = -INFINITY;
  for (int c = threadIdx.x & 31; c < classes; c += 32) m = fmaxf(m, scale * row[c]);
  m = warp_max(m);
  float s = 0.0f;
  for (int c = threadIdx.x & 31; c < classes; c += 32) s += expf(scale * row[c] - m);
  return make_float2(m, 1.0f / warp_sum(s));
}

// Argmax of a row by one warp (ties: the lowest class; NaN never wins), in every lane.
__device__ __forceinline__ int warp_argmax(const float* row, int classes) {
  float best = -INFINITY;
  int at = -1;
  for (int c = threadIdx.x & 31; c < classes; c += 32) {
    float v = row[c];
    if (v > best) {  // a lane sees its classes in increasing order, so > keeps the lowest
      best = v;
      at = c;
    }
  }
  for (int off = 16; off > 0; off >>= 1) {
    float ob = __shfl_xor_sync(0xffffffffu, best, off);
    int oa = __shfl_xor_sync(0xffffffffu, at, off);
    if (oa >= 0 && (at < 0 || ob > best || (ob == best && oa < at))) {
      best = ob;
      at = oa;
    }
  }
  return at < 0 ? 0 : at;  // every entry -inf or NaN: class 0
}

// Sum of a double over the block (blockDim.x = kThreads); valid in thread 0.
__device__ double block_sum(double v) {
  __shared__ double warp_sums[kWarps];
  v = warp_sum(v);
  if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x >> 5] = v;
  __syncthreads();
  double total = 0.0;
  if (threadIdx.x == 0)
    for (int w = 0; w < kWarps; ++w) total += warp_sums[w];
  return total;
}

// Phi^-1(q) = sqrt(2) erfinv(2q - 1) in double (exact 2q - 1 for a float q: erfinv is steep
// near 0 and 1); -inf at q <= 0 and +inf at q >= 1, as the CPU twin.
__device__ __forceinline__ double inv_phi(float q) {
  if (!(q > 0.0f)) return -INFINITY;
  if (q >= 1.0f) return INFINITY;
  return 1.4142135623730951 * erfinv(2.0 * double(q) - 1.0);
}

// ---- cross-entropy ----------------------------------------------------------------------------

// One block; warp w takes rows w, w + 32, ...: loss_r = logsumexp(z_r) - z_r[label]. The sum
// runs in a fixed order, so the result is deterministic.
__global__ void ce_forward_kernel(int rows, int classes, int group, const float* logits,
                                  const int32_t* labels, float* loss) {
  double mine = 0.0;  // lane 0's rows
  for (int r = threadIdx.x >> 5; r < rows; r += blockDim.x >> 5) {
    const float* row = logits + int64_t(r) * classes;
    float2 st = warp_softmax_stats(row, classes, 1.0f);
    mine += double(st.x) - log(double(st.y)) - double(row[labels[r / group]]);
  }
  __shared__ double warp_loss[32];
  if ((threadIdx.x & 31) == 0) warp_loss[threadIdx.x >> 5] = mine;
  __syncthreads();
  if (threadIdx.x == 0) {
    double total = 0.0;
    for (int w = 0; w < int(blockDim.x >> 5); ++w) total += warp_loss[w];
    loss[0] = float(total / rows);
  }
}

// dlogits[r,c] += dloss / rows * (softmax(z_r)[c] - [c == label_r]); one warp per row.
__global__ void ce_backward_kernel(int rows, int classes, int group, const float* logits,
                                   const int32_t* labels, const float* dloss, float* dlogits) {
  int r = blockIdx.x * kWarps + (threadIdx.x >> 5);
  if (r >= rows) return;
  const float* row = logits + int64_t(r) * classes;
  float* drow = dlogits + int64_t(r) * classes;
  float2 st = warp_softmax_stats(row, classes, 1.0f);
  float g = dloss[0] / float(rows);
  int label = labels[r / group];
  for (int c = threadIdx.x & 31; c < classes; c += 32)
    drow[c] += g * (expf(row[c] - st.x) * st.y - (c == label ? 1.0f : 0.0f));
}

// ---- MACER objective ---------------------------------------------------------------------------
// One block per input b over its k rows z[b,j,:]. Shared memory: per-row softmax statistics
// (k float4: max z, 1/sum, max beta z, 1/sum) and then q[b,:] (C floats) or per-row values.

__device__ void row_stats(const float* z, int k, int classes, float beta, float4* stat) {
  for (int j = threadIdx.x >> 5; j < k; j += kWarps) {
    const float* row = z + int64_t(j) * classes;
    float2 s = warp_softmax_stats(row, classes, 1.0f);
    float2 t = warp_softmax_stats(row, classes, beta);
    if ((threadIdx.x & 31) == 0) stat[j] = make_float4(s.x, s.y, t.x, t.y);
  }
}

__global__ void macer_forward_kernel(MacerLossParams p, const float* logits, const int32_t* labels,
                                     float* cl, float* rl, MacerSaved saved) {
  extern __shared__ float4 smem[];
  float4* stat = smem;                                   // (k)
  float* q = reinterpret_cast<float*>(smem + p.copies);  // (C)
  __shared__ float p_label;
  const int b = blockIdx.x, k = p.copies, C = p.classes, y = labels[b];
  const float* z = logits + int64_t(b) * k * C;
  row_stats(z, k, C, p.beta, stat);
  __syncthreads();
  // q[c] = mean_j softmax(beta z_j)[c];  p[y] = mean_j softmax(z_j)[y]
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    float qc = 0.0f;
    for (int j = 0; j < k; ++j) qc += expf(p.beta * z[j * C + c] - stat[j].z) * stat[j].w;
    q[c] = qc / float(k);
    if (c == y) {
      float pc = 0.0f;
      for (int j = 0; j < k; ++j) pc += expf(z[j * C + c] - stat[j].x) * stat[j].y;
      p_label = pc / float(k);
    }
  }
  __syncthreads();
  if (threadIdx.x != 0) return;
  // The two largest entries of q (ties: the lower class first, by the strict comparisons).
  float q1 = -INFINITY, q2 = -INFINITY;
  int c1 = -1, c2 = -1;
  for (int c = 0; c < C; ++c) {
    float v = q[c];
    if (c1 < 0 || v > q1) {
      q2 = q1, c2 = c1;
      q1 = v, c1 = c;
    } else if (c2 < 0 || v > q2) {
      q2 = v, c2 = c;
    }
  }
  // xi = Phi^-1(q1) - Phi^-1(q2); inactive unless c1 == y, xi finite and xi <= gamma.
  double xi = c2 >= 0 ? inv_phi(q1) - inv_phi(q2) : double(NAN);
  bool active = c1 == y && isfinite(xi) && xi <= double(p.gamma);
  cl[b] = float(-log(double(p_label) + 1e-10));
  rl[b] = active ? float(0.5 * double(p.sigma) * (double(p.gamma) - xi)) : 0.0f;
  saved.p_label[b] = p_label;
  saved.q1[b] = q1;
  saved.q2[b] = c2 >= 0 ? q2 : 0.0f;
  saved.c1[b] = c1;
  saved.c2[b] = c2;
  saved.active[b] = active ? 1.0f : 0.0f;
}

// loss = (sum_b cl + lambda sum_b rl) / B, in a fixed order.
__global__ void macer_total_kernel(int batch, float lambda, const float* cl, const float* rl,
                                   float* loss) {
  double s_cl = 0.0, s_rl = 0.0;
  for (int b = threadIdx.x; b < batch; b += blockDim.x) {
    s_cl += cl[b];
    s_rl += rl[b];
  }
  double t_cl = block_sum(s_cl);
  __syncthreads();  // block_sum's shared array is reused
  double t_rl = block_sum(s_rl);
  if (threadIdx.x == 0) loss[0] = float((t_cl + double(lambda) * t_rl) / batch);
}

__global__ void macer_backward_kernel(MacerLossParams p, const float* logits, const int32_t* labels,
                                      MacerSaved saved, const float* dloss, float* dlogits) {
  extern __shared__ float4 smem[];
  float4* stat = smem;             // (k) softmax statistics
  float4* pick = smem + p.copies;  // (k) s[j,y], t[j,c1], t[j,c2]
  __shared__ float g_y, a1, a2;
  const int b = blockIdx.x, k = p.copies, C = p.classes, y = labels[b];
  const int c1 = saved.c1[b], c2 = saved.c2[b];
  const bool active = saved.active[b] != 0.0f;
  const float* z = logits + int64_t(b) * k * C;
  float* dz = dlogits + int64_t(b) * k * C;
  row_stats(z, k, C, p.beta, stat);
  if (threadIdx.x == 0) {
    const double B = p.batch;
    // term CL: g_y = -1 / (B k (p[b,y] + 1e-10))
    g_y = float(-1.0 / (B * k * (double(saved.p_label[b]) + 1e-10)));
    // term RL: a1 = -(lambda sigma / 2B) / phi(Phi^-1(q1)), a2 = +(...) / phi(Phi^-1(q2)),
    // with 1/phi(u) = sqrt(2 pi) exp(u^2 / 2)
    double coef = double(p.lambda) * p.sigma / (2.0 * B) * 2.5066282746310002;
    double u1 = inv_phi(saved.q1[b]), u2 = inv_phi(saved.q2[b]);
    a1 = active ? float(-coef * exp(0.5 * u1 * u1)) : 0.0f;
    a2 = active ? float(coef * exp(0.5 * u2 * u2)) : 0.0f;
  }
  __syncthreads();
  for (int j = threadIdx.x; j < k; j += blockDim.x) {
    const float* row = z + int64_t(j) * C;
    float4 st = stat[j];
    float sy = expf(row[y] - st.x) * st.y;
    float t1 = active ? expf(p.beta * row[c1] - st.z) * st.w : 0.0f;
    float t2 = active ? expf(p.beta * row[c2] - st.z) * st.w : 0.0f;
    pick[j] = make_float4(sy, t1, t2, 0.0f);
  }
  __syncthreads();
  const float G = dloss[0];
  const float beta_k = p.beta / float(k);
  for (int i = threadIdx.x; i < k * C; i += blockDim.x) {
    int j = i / C, c = i - j * C;
    float4 st = stat[j], pk = pick[j];
    float zc = z[i];
    float s = expf(zc - st.x) * st.y;
    // term CL: g_y s[c] ([c == y] - s[y])
    float g = g_y * s * ((c == y ? 1.0f : 0.0f) - pk.x);
    if (active) {
      // term RL: (beta / k) t[c] (h[c] - (a1 t[c1] + a2 t[c2]))
      float t = expf(p.beta * zc - st.z) * st.w;
      float h = (c == c1 ? a1 : 0.0f) + (c == c2 ? a2 : 0.0f);
      g += beta_k * t * (h - (a1 * pk.y + a2 * pk.z));
    }
    dz[i] += G * g;
  }
}

// ---- noisy copies ------------------------------------------------------------------------------

// Thread t makes the output elements of global quad q = offset/4 + t: global elements 4q .. 4q+3,
// local i = 4q + e - offset, from normals4(seed, counter, q); element i = (b*k + j)*D + f copies
// x[b*D + f].
__global__ void noisy_copies_kernel(int64_t total, int64_t offset, int64_t per_input, int64_t features,
                                    const float* x, float sigma, uint64_t seed, uint64_t counter,
                                    float* y) {
  const int64_t q0 = offset / 4, quads = (offset + total + 3) / 4 - q0;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < quads;
       t += int64_t(gridDim.x) * blockDim.x) {
    philox::F32x4 n = philox::normals4(seed, counter, uint64_t(q0 + t));
    int64_t i = 4 * (q0 + t) - offset;
    // (b, r, f) of the quad's first local element (the first quad may start before it), then
    // stepped: r = i mod k*D, f = i mod D.
    int64_t i0 = i < 0 ? 0 : i, b = i0 / per_input, r = i0 - b * per_input, f = r % features;
#pragma unroll
    for (int e = 0; e < 4; ++e, ++i) {
      if (i < 0 || i >= total) continue;
      // separate multiply and add (no FMA contraction), as the CPU computes it
      y[i] = __fadd_rn(x[b * features + f], __fmul_rn(sigma, n.v[e]));
      if (++f == features) f = 0;
      if (++r == per_input) r = 0, ++b;
    }
  }
}

// ---- smoothing reductions ----------------------------------------------------------------------
// A block keeps its partial histogram in shared memory and adds it to the global one once; when
// the classes do not fit, lanes add straight into global memory.

__global__ void argmax_histogram_kernel(int rows, int classes, bool in_shared, const float* logits,
                                        unsigned long long* counts) {
  extern __shared__ unsigned int hist[];
  if (in_shared) {
    for (int c = threadIdx.x; c < classes; c += blockDim.x) hist[c] = 0;
    __syncthreads();
  }
  for (int r = blockIdx.x * kWarps + (threadIdx.x >> 5); r < rows; r += gridDim.x * kWarps) {
    int c = warp_argmax(logits + int64_t(r) * classes, classes);
    if ((threadIdx.x & 31) == 0) {
      if (in_shared)
        atomicAdd(&hist[c], 1u);
      else
        atomicAdd(&counts[c], 1ull);
    }
  }
  if (!in_shared) return;
  __syncthreads();
  for (int c = threadIdx.x; c < classes; c += blockDim.x)
    if (hist[c]) atomicAdd(&counts[c], (unsigned long long)hist[c]);
}

// sums[c] += t[c], sumsq[c] += t[c]^2 with t = softmax(beta z_r); double atomics.
__global__ void soft_histogram_kernel(int rows, int classes, float beta, bool in_shared,
                                      const float* logits, double* sums, double* sumsq) {
  extern __shared__ double acc[];  // (2, C) when in_shared
  double* s_sum = in_shared ? acc : sums;
  double* s_sq = in_shared ? acc + classes : sumsq;
  if (in_shared) {
    for (int c = threadIdx.x; c < 2 * classes; c += blockDim.x) acc[c] = 0.0;
    __syncthreads();
  }
  for (int r = blockIdx.x * kWarps + (threadIdx.x >> 5); r < rows; r += gridDim.x * kWarps) {
    const float* row = logits + int64_t(r) * classes;
    float2 st = warp_softmax_stats(row, classes, beta);
    for (int c = threadIdx.x & 31; c < classes; c += 32) {
      double t = double(expf(beta * row[c] - st.x) * st.y);
      atomicAdd(&s_sum[c], t);
      atomicAdd(&s_sq[c], t * t);
    }
  }
  if (!in_shared) return;
  __syncthreads();
  for (int c = threadIdx.x; c < classes; c += blockDim.x) {
    atomicAdd(&sums[c], acc[c]);
    atomicAdd(&sumsq[c], acc[classes + c]);
  }
}

// One block per input b: votes over its k copies, then correct += [most voted == label].
__global__ void vote_correct_kernel(int copies, int classes, const float* logits,
                                    const int32_t* labels, float* correct) {
  extern __shared__ int votes[];  // (C)
  const int b = blockIdx.x;
  for (int c = threadIdx.x; c < classes; c += blockDim.x) votes[c] = 0;
  __syncthreads();
  for (int j = threadIdx.x >> 5; j < copies; j += kWarps) {
    int c = warp_argmax(logits + (int64_t(b) * copies + j) * classes, classes);
    if ((threadIdx.x & 31) == 0) atomicAdd(&votes[c], 1);
  }
  __syncthreads();
  if (threadIdx.x != 0) return;
  int best = 0;
  for (int c = 1; c < classes; ++c)
    if (votes[c] > votes[best]) best = c;
  if (best == labels[b]) atomicAdd(correct, 1.0f);  // integer-valued: exact in any order
}

unsigned reduction_blocks(int rows) {
  static const int sms = [] {
    int dev = 0, n = 0;
    MACER_CUDA_CHECK(cudaGetDevice(&dev));
    MACER_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev));
    return n;
  }();
  int want = (rows + kWarps - 1) / kWarps;
  return unsigned(want < 2 * sms ? (want < 1 ? 1 : want) : 2 * sms);
}

}  // namespace

void cross_entropy_forward(const CrossEntropyShape& s, const float* logits, const int32_t* labels,
                           float* loss) {
  if (s.rows <= 0) return;
  ce_forward_kernel<<<1, 1024, 0, stream()>>>(s.rows, s.classes, s.group, logits, labels, loss);
  MACER_LAUNCH_CHECK();
}

void cross_entropy_backward(const CrossEntropyShape& s, const float* logits, const int32_t* labels,
                            const float* dloss, float* dlogits) {
  if (s.rows <= 0) return;
  ce_backward_kernel<<<(s.rows + kWarps - 1) / kWarps, kThreads, 0, stream()>>>(
      s.rows, s.classes, s.group, logits, labels, dloss, dlogits);
  MACER_LAUNCH_CHECK();
}

void macer_loss_forward(const MacerLossParams& p, const float* logits, const int32_t* labels,
                        float* loss, float* cl, float* rl, const MacerSaved& saved) {
  if (p.batch <= 0) return;
  size_t shared = sizeof(float4) * p.copies + sizeof(float) * p.classes;
  MACER_CHECK(shared <= kMaxShared, "MACER loss: " << p.copies << " copies of " << p.classes
                                                   << " classes exceed shared memory");
  macer_forward_kernel<<<p.batch, kThreads, shared, stream()>>>(p, logits, labels, cl, rl, saved);
  MACER_LAUNCH_CHECK();
  macer_total_kernel<<<1, kThreads, 0, stream()>>>(p.batch, p.lambda, cl, rl, loss);
  MACER_LAUNCH_CHECK();
}

void macer_loss_backward(const MacerLossParams& p, const float* logits, const int32_t* labels,
                         const MacerSaved& saved, const float* dloss, float* dlogits) {
  if (p.batch <= 0) return;
  size_t shared = 2 * sizeof(float4) * p.copies;
  MACER_CHECK(shared <= kMaxShared, "MACER loss: " << p.copies << " copies exceed shared memory");
  macer_backward_kernel<<<p.batch, kThreads, shared, stream()>>>(p, logits, labels, saved, dloss,
                                                                 dlogits);
  MACER_LAUNCH_CHECK();
}

void noisy_copies(const NoisyCopiesShape& s, const float* x, float sigma, uint64_t seed,
                  uint64_t counter, float* y) {
  int64_t per_input = int64_t(s.copies) * s.features;
  int64_t total = int64_t(s.batch) * per_input;
  if (total <= 0) return;
  int64_t offset = s.first_input * per_input;
  int64_t quads = (offset + total + 3) / 4 - offset / 4;
  unsigned blocks = unsigned(quads / kThreads + 1 < 65536 ? quads / kThreads + 1 : 65536);
  noisy_copies_kernel<<<blocks, kThreads, 0, stream()>>>(total, offset, per_input, s.features, x, sigma,
                                                         seed, counter, y);
  MACER_LAUNCH_CHECK();
}

void argmax_histogram(const LogitsShape& s, const float* logits, int64_t* counts) {
  if (s.rows <= 0) return;
  size_t shared = sizeof(unsigned int) * s.classes;
  bool in_shared = shared <= kMaxShared;
  argmax_histogram_kernel<<<reduction_blocks(s.rows), kThreads, in_shared ? shared : 0, stream()>>>(
      s.rows, s.classes, in_shared, logits, reinterpret_cast<unsigned long long*>(counts));
  MACER_LAUNCH_CHECK();
}

void soft_histogram(const LogitsShape& s, float beta, const float* logits, double* sums,
                    double* sumsq) {
  if (s.rows <= 0) return;
  size_t shared = 2 * sizeof(double) * s.classes;
  bool in_shared = shared <= kMaxShared;
  soft_histogram_kernel<<<reduction_blocks(s.rows), kThreads, in_shared ? shared : 0, stream()>>>(
      s.rows, s.classes, beta, in_shared, logits, sums, sumsq);
  MACER_LAUNCH_CHECK();
}

void vote_correct(const LogitsShape& s, int copies, const float* logits, const int32_t* labels,
                  float* correct) {
  if (copies <= 0 || s.rows / copies <= 0) return;
  size_t shared = sizeof(int) * s.classes;
  MACER_CHECK(shared <= kMaxShared, "vote_correct: too many classes (" << s.classes << ")");
  vote_correct_kernel<<<s.rows / copies, kThreads, shared, stream()>>>(copies, s.classes, logits,
                                                                       labels, correct);
  MACER_LAUNCH_CHECK();
}

}  // namespace macer::kernels::cuda
