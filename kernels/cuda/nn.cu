// CUDA kernels for the layer ops: elementwise (relu, add, accumulate, fill, scale), batch
// normalisation, max/avg pooling and the fused SGD step. All launches go on cuda::stream().
#include <algorithm>
#include <cstdint>

#include "kernels/batchnorm.h"
#include "kernels/cuda/context.h"
#include "kernels/elementwise.h"
#include "kernels/pool.h"
#include "kernels/sgd.h"

namespace macer::kernels::cuda {

namespace {

constexpr int kThreads = 256;  // every kernel here runs 256-thread blocks (8 warps)

int sm_count() {
  static const int count = [] {
    int dev = 0, n = 0;
    MACER_CUDA_CHECK(cudaGetDevice(&dev));
    MACER_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev));
    return n;
  }();
  return count;
}

// Blocks for a grid-stride loop over n items: enough to fill the GPU, never more than needed.
unsigned blocks_for(int64_t n) {
  int64_t want = (n + kThreads - 1) / kThreads;
  int64_t cap = int64_t(sm_count()) * 16;
  return unsigned(std::max<int64_t>(1, std::min(want, cap)));
}

__device__ __forceinline__ int64_t global_thread() {
  return int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_threads() { return int64_t(gridDim.x) * blockDim.x; }

// ---- elementwise ----------------------------------------------------------------------

__global__ void relu_forward_kernel(int64_t n, const float* x, float* y) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) y[i] = fmaxf(x[i], 0.0f);
}

__global__ void relu_backward_kernel(int64_t n, const float* y, const float* dy, float* dx) {
  for (int64_t i = global_thread(); i < n; i += grid_threads())
    if (y[i] > 0.0f) dx[i] += dy[i];
}

__global__ void add_kernel(int64_t n, const float* a, const float* b, float* y) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) y[i] = a[i] + b[i];
}

__global__ void accumulate_kernel(int64_t n, const float* src, float* dst) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) dst[i] += src[i];
}

__global__ void fill_kernel(int64_t n, float value, float* dst) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) dst[i] = value;
}

__global__ void scale_kernel(int64_t n, float alpha, float* dst) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) dst[i] *= alpha;
}

// ---- batch normalisation ----------------------------------------------------------------
// x is (N, C, HW); channel ch's M = N*HW values sit in N runs of HW. Statistics are reduced in
// two deterministic steps: a grid (slices, C) of blocks writes double partial sums to the
// workspace, then one thread per channel adds its slices in order.

// Sum of a double2 over the block (blockDim.x = kThreads); the result is valid in thread 0.
__device__ double2 block_sum(double2 v) {
  __shared__ double2 warp_sums[kThreads / 32];
  for (int off = 16; off > 0; off >>= 1) {
    v.x += __shfl_down_sync(0xffffffffu, v.x, off);
    v.y += __shfl_down_sync(0xffffffffu, v.y, off);
  }
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < kThreads / 32 ? warp_sums[lane] : make_double2(0.0, 0.0);
    for (int off = 16; off > 0; off >>= 1) {
      v.x += __shfl_down_sync(0xffffffffu, v.x, off);
      v.y += __shfl_down_sync(0xffffffffu, v.y, off);
    }
  }
  return v;
}

// Forward: partial = (sum x, sum x^2). Backward: partial = (sum dy, sum dy * xhat),
// xhat = (x - mean) * invstd. M < 2^31 (checked on the host), so 32-bit index arithmetic.
template <bool kBackward>
__global__ void bn_partial_kernel(int c, int hw, int slices, int chunk, int m_total, const float* x,
                                  const float* dy, const float* mean, const float* invstd,
                                  double2* partial) {
  const int ch = blockIdx.y;
  const int begin = blockIdx.x * chunk;
  const int end = min(m_total, begin + chunk);
  const float mu = kBackward ? mean[ch] : 0.0f;
  const float is = kBackward ? invstd[ch] : 0.0f;
  double a = 0.0, b = 0.0;
  for (int m = begin + threadIdx.x; m < end; m += blockDim.x) {
    int img = m / hw, pos = m - img * hw;
    int64_t idx = (int64_t(img) * c + ch) * hw + pos;
    if (kBackward) {
      float g = dy[idx];
      a += g;
      b += double(g) * double((x[idx] - mu) * is);
    } else {
      float v = x[idx];
      a += v;
      b += double(v) * v;
    }
  }
  double2 s = block_sum(make_double2(a, b));
  if (threadIdx.x == 0) partial[int64_t(ch) * slices + blockIdx.x] = s;
}

// mean = sum/M, var = sum2/M - mean^2 (biased, used to normalise); the running variance gets
// the unbiased var * M/(M-1), as PyTorch.
__global__ void bn_finalize_train_kernel(int c, int slices, double count, float eps, float momentum,
                                         const double2* partial, float* running_mean,
                                         float* running_var, float* save_mean, float* save_invstd) {
  int ch = blockIdx.x * blockDim.x + threadIdx.x;
  if (ch >= c) return;
  double s = 0.0, sq = 0.0;
  for (int i = 0; i < slices; ++i) {
    double2 p = partial[int64_t(ch) * slices + i];
    s += p.x;
    sq += p.y;
  }
  double mean = s / count;
  double var = fmax(sq / count - mean * mean, 0.0);
  save_mean[ch] = float(mean);
  save_invstd[ch] = float(1.0 / sqrt(var + double(eps)));
  double unbiased = count > 1.0 ? var * count / (count - 1.0) : var;
  if (running_mean)
    running_mean[ch] = float((1.0 - momentum) * running_mean[ch] + double(momentum) * mean);
  if (running_var)
    running_var[ch] = float((1.0 - momentum) * running_var[ch] + double(momentum) * unbiased);
}

// Backward: dbeta += sum dy; dgamma += sum dy*xhat; coef = (sum dy / M, sum dy*xhat / M).
__global__ void bn_finalize_backward_kernel(int c, int slices, double count, const double2* partial,
                                            float2* coef, float* dgamma, float* dbeta) {
  int ch = blockIdx.x * blockDim.x + threadIdx.x;
  if (ch >= c) return;
  double s = 0.0, sx = 0.0;
  for (int i = 0; i < slices; ++i) {
    double2 p = partial[int64_t(ch) * slices + i];
    s += p.x;
    sx += p.y;
  }
  if (dbeta) dbeta[ch] += float(s);
  if (dgamma) dgamma[ch] += float(sx);
  coef[ch] = make_float2(float(s / count), float(sx / count));
}

// y = (x - mean) * invstd * gamma + beta, with (mean, invstd) the batch's or the running ones.
// Index is uint32_t when the tensor has fewer than 2^31 elements (cheaper division), else int64_t.
template <bool kRunning, typename Index>
__global__ void bn_normalize_kernel(Index total, int c, int hw, const float* x, const float* mean,
                                    const float* stat, const float* gamma, const float* beta,
                                    float eps, float* y) {
  const Index stride = Index(gridDim.x) * blockDim.x;
  for (Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    int ch = int((i / Index(hw)) % Index(c));
    float is = kRunning ? rsqrtf(stat[ch] + eps) : stat[ch];
    float g = gamma ? gamma[ch] : 1.0f, b = beta ? beta[ch] : 0.0f;
    y[i] = (x[i] - mean[ch]) * is * g + b;
  }
}

// dx += gamma * invstd * (dy - sum dy / M - xhat * sum dy*xhat / M)
template <typename Index>
__global__ void bn_dx_kernel(Index total, int c, int hw, const float* dy, const float* x,
                             const float* gamma, const float* mean, const float* invstd,
                             const float2* coef, float* dx) {
  const Index stride = Index(gridDim.x) * blockDim.x;
  for (Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    int ch = int((i / Index(hw)) % Index(c));
    float is = invstd[ch], g = gamma ? gamma[ch] : 1.0f;
    float xhat = (x[i] - mean[ch]) * is;
    float2 k = coef[ch];
    dx[i] += g * is * (dy[i] - k.x - xhat * k.y);
  }
}

// dx += dy * gamma / sqrt(running_var + eps): eval mode, the input gradient only
template <typename Index>
__global__ void bn_eval_dx_kernel(Index total, int c, int hw, const float* dy, const float* gamma,
                                  const float* running_var, float eps, float* dx) {
  const Index stride = Index(gridDim.x) * blockDim.x;
  for (Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    int ch = int((i / Index(hw)) % Index(c));
    dx[i] += dy[i] * gamma[ch] * rsqrtf(running_var[ch] + eps);
  }
}

template <bool kRunning>
void bn_normalize(int64_t total, const BatchNormShape& s, const float* x, const float* mean,
                  const float* stat, const float* gamma, const float* beta, float* y) {
  if (total < (int64_t(1) << 31))
    bn_normalize_kernel<kRunning, uint32_t><<<blocks_for(total), kThreads, 0, stream()>>>(
        uint32_t(total), s.c, s.hw, x, mean, stat, gamma, beta, s.eps, y);
  else
    bn_normalize_kernel<kRunning, int64_t><<<blocks_for(total), kThreads, 0, stream()>>>(
        total, s.c, s.hw, x, mean, stat, gamma, beta, s.eps, y);
  MACER_LAUNCH_CHECK();
}

// How the M values of a channel are split among blocks: about four blocks per SM in all,
// each with at least 4096 values.
struct BnSplit {
  int slices, chunk, m;
};
BnSplit bn_split(const BatchNormShape& s) {
  int64_t m = int64_t(s.n) * s.hw;
  MACER_CHECK(m < (int64_t(1) << 30),
              "batch norm over " << m << " values per channel (at most 2^30)");
  int64_t by_sm = (int64_t(sm_count()) * 4 + s.c - 1) / s.c;
  int64_t by_size = std::max<int64_t>(1, m / 4096);
  int slices = int(std::max<int64_t>(1, std::min<int64_t>({by_sm, by_size, 1024})));
  int chunk = int((m + slices - 1) / slices);
  return {slices, chunk, int(m)};
}

// ---- pooling ------------------------------------------------------------------------------
// One thread per output (forward) or per input (backward: gathers from the windows that
// cover it, so overlapping windows need no atomics and the result is deterministic).

struct PoolDims {
  int c, h, w, p, q, kernel, stride, pad;
};

__global__ void maxpool_forward_kernel(int64_t total, PoolDims d, const float* x, float* y,
                                       int32_t* argmax) {
  for (int64_t i = global_thread(); i < total; i += grid_threads()) {
    int oq = int(i % d.q), op = int((i / d.q) % d.p);
    int64_t plane = i / (int64_t(d.p) * d.q);
    const float* xp = x + plane * d.h * d.w;
    int h0 = op * d.stride - d.pad, w0 = oq * d.stride - d.pad;
    float best = 0.0f;
    int at = -1;
    for (int kh = 0; kh < d.kernel; ++kh) {
      int hh = h0 + kh;
      if (hh < 0 || hh >= d.h) continue;
      for (int kw = 0; kw < d.kernel; ++kw) {
        int ww = w0 + kw;
        if (ww < 0 || ww >= d.w) continue;
        float v = xp[hh * d.w + ww];
        if (at < 0 || v > best) {  // first maximum in window order; padding never wins
          best = v;
          at = hh * d.w + ww;
        }
      }
    }
    y[i] = best;
    argmax[i] = at;
  }
}

// Output rows whose window covers input row hh: ceil((hh + pad - kernel + 1) / stride) ..
// floor((hh + pad) / stride), clipped to [0, P).
__device__ __forceinline__ void covering(int hh, int pad, int kernel, int stride, int out,
                                         int* first, int* last) {
  int t = hh + pad;
  *first = t < kernel ? 0 : (t - kernel) / stride + 1;
  *last = min(t / stride, out - 1);
}

__global__ void maxpool_backward_kernel(int64_t total, PoolDims d, const float* dy,
                                        const int32_t* argmax, float* dx) {
  for (int64_t i = global_thread(); i < total; i += grid_threads()) {
    int ww = int(i % d.w), hh = int((i / d.w) % d.h);
    int64_t plane = i / (int64_t(d.h) * d.w);
    int p0, p1, q0, q1;
    covering(hh, d.pad, d.kernel, d.stride, d.p, &p0, &p1);
    covering(ww, d.pad, d.kernel, d.stride, d.q, &q0, &q1);
    const int32_t* ap = argmax + plane * d.p * d.q;
    const float* gp = dy + plane * d.p * d.q;
    int self = hh * d.w + ww;
    float g = 0.0f;
    for (int op = p0; op <= p1; ++op)
      for (int oq = q0; oq <= q1; ++oq)
        if (ap[op * d.q + oq] == self) g += gp[op * d.q + oq];
    if (p0 <= p1 && q0 <= q1) dx[i] += g;
  }
}

// count_include_pad: the divisor is always kernel*kernel.
__global__ void avgpool_forward_kernel(int64_t total, PoolDims d, const float* x, float* y) {
  const float inv = 1.0f / float(d.kernel * d.kernel);
  for (int64_t i = global_thread(); i < total; i += grid_threads()) {
    int oq = int(i % d.q), op = int((i / d.q) % d.p);
    int64_t plane = i / (int64_t(d.p) * d.q);
    const float* xp = x + plane * d.h * d.w;
    int h0 = op * d.stride - d.pad, w0 = oq * d.stride - d.pad;
    float sum = 0.0f;
    for (int kh = 0; kh < d.kernel; ++kh) {
      int hh = h0 + kh;
      if (hh < 0 || hh >= d.h) continue;
      for (int kw = 0; kw < d.kernel; ++kw) {
        int ww = w0 + kw;
        if (ww >= 0 && ww < d.w) sum += xp[hh * d.w + ww];
      }
    }
    y[i] = sum * inv;
  }
}

__global__ void avgpool_backward_kernel(int64_t total, PoolDims d, const float* dy, float* dx) {
  const float inv = 1.0f / float(d.kernel * d.kernel);
  for (int64_t i = global_thread(); i < total; i += grid_threads()) {
    int ww = int(i % d.w), hh = int((i / d.w) % d.h);
    int64_t plane = i / (int64_t(d.h) * d.w);
    int p0, p1, q0, q1;
    covering(hh, d.pad, d.kernel, d.stride, d.p, &p0, &p1);
    covering(ww, d.pad, d.kernel, d.stride, d.q, &q0, &q1);
    const float* gp = dy + plane * d.p * d.q;
    float g = 0.0f;
    for (int op = p0; op <= p1; ++op)
      for (int oq = q0; oq <= q1; ++oq) g += gp[op * d.q + oq];
    if (p0 <= p1 && q0 <= q1) dx[i] += g * inv;
  }
}

PoolDims pool_dims(const Pool2dShape& s) {
  return {s.c, s.h, s.w, s.out_h(), s.out_w(), s.kernel, s.stride, s.pad};
}

// ---- SGD ------------------------------------------------------------------------------------

// torch.optim.SGD, dampening 0: d = g + wd p; buf = m buf + d; d = nesterov ? d + m buf : buf;
// p -= lr d
__global__ void sgd_kernel(int64_t n, float lr, float momentum, float wd, bool nesterov,
                           float* param, const float* grad, float* buf) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    float p = param[i];
    float d = grad[i] + wd * p;
    float b = momentum * buf[i] + d;
    buf[i] = b;
    d = nesterov ? d + momentum * b : b;
    param[i] = p - lr * d;
  }
}

}  // namespace

// ---- elementwise entry points --------------------------------------------------------------

void relu_forward(int64_t n, const float* x, float* y) {
  if (n <= 0) return;
  relu_forward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(n, x, y);
  MACER_LAUNCH_CHECK();
}

void relu_backward(int64_t n, const float* y, const float* dy, float* dx) {
  if (n <= 0) return;
  relu_backward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(n, y, dy, dx);
  MACER_LAUNCH_CHECK();
}

void add_forward(int64_t n, const float* a, const float* b, float* y) {
  if (n <= 0) return;
  add_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(n, a, b, y);
  MACER_LAUNCH_CHECK();
}

void accumulate(int64_t n, const float* src, float* dst) {
  if (n <= 0) return;
  accumulate_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(n, src, dst);
  MACER_LAUNCH_CHECK();
}

void fill(int64_t n, float value, float* dst) {
  if (n <= 0) return;
  fill_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(n, value, dst);
  MACER_LAUNCH_CHECK();
}

void scale(int64_t n, float alpha, float* dst) {
  if (n <= 0) return;
  scale_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(n, alpha, dst);
  MACER_LAUNCH_CHECK();
}

// ---- batch norm entry points ---------------------------------------------------------------

void batchnorm_forward_train(const BatchNormShape& s, const float* x, const float* gamma,
                             const float* beta, float* running_mean, float* running_var, float* y,
                             float* save_mean, float* save_invstd) {
  MACER_CHECK(!s.channels_last && !s.dx_overwrite, "batch norm: channels-last tensors and dx_overwrite are the CPU's");
  if (s.c <= 0 || s.n <= 0 || s.hw <= 0) return;
  BnSplit sp = bn_split(s);
  auto* partial = static_cast<double2*>(workspace(sizeof(double2) * size_t(s.c) * sp.slices));
  bn_partial_kernel<false><<<dim3(sp.slices, s.c), kThreads, 0, stream()>>>(
      s.c, s.hw, sp.slices, sp.chunk, sp.m, x, nullptr, nullptr, nullptr, partial);
  MACER_LAUNCH_CHECK();
  bn_finalize_train_kernel<<<(s.c + kThreads - 1) / kThreads, kThreads, 0, stream()>>>(
      s.c, sp.slices, double(sp.m), s.eps, s.momentum, partial, running_mean, running_var,
      save_mean, save_invstd);
  MACER_LAUNCH_CHECK();
  bn_normalize<false>(int64_t(s.n) * s.c * s.hw, s, x, save_mean, save_invstd, gamma, beta, y);
}

void batchnorm_forward_eval(const BatchNormShape& s, const float* x, const float* gamma,
                            const float* beta, const float* running_mean, const float* running_var,
                            float* y) {
  MACER_CHECK(!s.channels_last && !s.dx_overwrite, "batch norm: channels-last tensors and dx_overwrite are the CPU's");
  int64_t total = int64_t(s.n) * s.c * s.hw;
  if (total <= 0) return;
  bn_normalize<true>(total, s, x, running_mean, running_var, gamma, beta, y);
}

void batchnorm_backward_eval_data(const BatchNormShape& s, const float* dy, const float* /*y*/,
                                  const float* gamma, const float* running_var, float* dx) {
  MACER_CHECK(!s.channels_last && !s.dx_overwrite, "batch norm: channels-last tensors and dx_overwrite are the CPU's");
  MACER_CHECK(!s.relu, "batchnorm_backward_eval_data: the CUDA kernels do not fuse the ReLU");
  int64_t total = int64_t(s.n) * s.c * s.hw;
  if (total <= 0) return;
  if (total < (int64_t(1) << 31))
    bn_eval_dx_kernel<uint32_t><<<blocks_for(total), kThreads, 0, stream()>>>(
        uint32_t(total), s.c, s.hw, dy, gamma, running_var, s.eps, dx);
  else
    bn_eval_dx_kernel<int64_t><<<blocks_for(total), kThreads, 0, stream()>>>(
        total, s.c, s.hw, dy, gamma, running_var, s.eps, dx);
  MACER_LAUNCH_CHECK();
}

void batchnorm_backward(const BatchNormShape& s, const float* dy, const float* x,
                        const float* gamma, const float* save_mean, const float* save_invstd,
                        float* dx, float* dgamma, float* dbeta) {
  MACER_CHECK(!s.channels_last && !s.dx_overwrite, "batch norm: channels-last tensors and dx_overwrite are the CPU's");
  if (s.c <= 0 || s.n <= 0 || s.hw <= 0) return;
  BnSplit sp = bn_split(s);
  size_t partial_bytes = sizeof(double2) * size_t(s.c) * sp.slices;  // a multiple of 16
  char* ws = static_cast<char*>(workspace(partial_bytes + sizeof(float2) * size_t(s.c)));
  auto* partial = reinterpret_cast<double2*>(ws);
  auto* coef = reinterpret_cast<float2*>(ws + partial_bytes);
  bn_partial_kernel<true><<<dim3(sp.slices, s.c), kThreads, 0, stream()>>>(
      s.c, s.hw, sp.slices, sp.chunk, sp.m, x, dy, save_mean, save_invstd, partial);
  MACER_LAUNCH_CHECK();
  bn_finalize_backward_kernel<<<(s.c + kThreads - 1) / kThreads, kThreads, 0, stream()>>>(
      s.c, sp.slices, double(sp.m), partial, coef, dgamma, dbeta);
  MACER_LAUNCH_CHECK();
  if (!dx) return;
  int64_t total = int64_t(s.n) * s.c * s.hw;
  if (total < (int64_t(1) << 31))
    bn_dx_kernel<uint32_t><<<blocks_for(total), kThreads, 0, stream()>>>(
        uint32_t(total), s.c, s.hw, dy, x, gamma, save_mean, save_invstd, coef, dx);
  else
    bn_dx_kernel<int64_t><<<blocks_for(total), kThreads, 0, stream()>>>(
        total, s.c, s.hw, dy, x, gamma, save_mean, save_invstd, coef, dx);
  MACER_LAUNCH_CHECK();
}

// ---- pooling entry points ------------------------------------------------------------------

void maxpool_forward(const Pool2dShape& s, const float* x, float* y, int32_t* argmax) {
  int64_t total = int64_t(s.n) * s.c * s.out_h() * s.out_w();
  if (total <= 0) return;
  maxpool_forward_kernel<<<blocks_for(total), kThreads, 0, stream()>>>(total, pool_dims(s), x, y,
                                                                       argmax);
  MACER_LAUNCH_CHECK();
}

void maxpool_backward(const Pool2dShape& s, const float* dy, const int32_t* argmax, float* dx) {
  int64_t total = int64_t(s.n) * s.c * s.h * s.w;
  if (total <= 0 || s.out_h() <= 0 || s.out_w() <= 0) return;
  maxpool_backward_kernel<<<blocks_for(total), kThreads, 0, stream()>>>(total, pool_dims(s), dy,
                                                                        argmax, dx);
  MACER_LAUNCH_CHECK();
}

void avgpool_forward(const Pool2dShape& s, const float* x, float* y) {
  int64_t total = int64_t(s.n) * s.c * s.out_h() * s.out_w();
  if (total <= 0) return;
  avgpool_forward_kernel<<<blocks_for(total), kThreads, 0, stream()>>>(total, pool_dims(s), x, y);
  MACER_LAUNCH_CHECK();
}

void avgpool_backward(const Pool2dShape& s, const float* dy, float* dx) {
  int64_t total = int64_t(s.n) * s.c * s.h * s.w;
  if (total <= 0 || s.out_h() <= 0 || s.out_w() <= 0) return;
  avgpool_backward_kernel<<<blocks_for(total), kThreads, 0, stream()>>>(total, pool_dims(s), dy,
                                                                        dx);
  MACER_LAUNCH_CHECK();
}

// ---- SGD entry point -----------------------------------------------------------------------

void sgd_step(const SgdParams& p, int64_t n, float* param, const float* grad, float* momentum_buf) {
  if (n <= 0) return;
  sgd_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(n, p.lr, p.momentum, p.weight_decay,
                                                       p.nesterov, param, grad, momentum_buf);
  MACER_LAUNCH_CHECK();
}

}  // namespace macer::kernels::cuda
