// CPU 2-d convolution entry points (kernels/conv2d.h): each call goes to the oneDNN fast path
// (kernels/cpu/conv2d_dnnl.cpp) when built with it, otherwise to the reference cpu::ref (in bf16
// on operands rounded to bfloat16: the same products, accumulated in float32).
#include "kernels/conv2d.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/check.h"
#include "kernels/cpu/conv2d_dnnl.h"
#include "kernels/cpu/conv2d_unfold.h"
#include "kernels/cpu/parallel.h"
#include "kernels/memory_format.h"

namespace macer::kernels::cpu {

namespace {
bool reference_from_env() {
  const char* v = std::getenv("MACER_CPU_CONV");
  return v && std::strcmp(v, "reference") == 0;
}
std::atomic<bool> g_reference{reference_from_env() || !dnnl_conv::built()};
// Which fast kernel a shape takes, chosen by measurement (bench/RESULTS.md, 2026-11-26): oneDNN's
// direct kernels work on blocks of 16 channels, so counts like LeNet's 20 and 50 are padded and
// run at a fraction of the rate the unfolding (im2col + one sgemm per group) reaches there. Inputs
// of at most 4 channels (the stems) have their own direct kernel and stay on oneDNN.
// In bf16 too (its products through oneDNN's bf16 matmul, kernels/cpu/gemm_bf16.h): LeNet's bf16
// step ran slower through oneDNN's padded direct kernels than through the unfolding (bench/RESULTS.md,
// 2026-11-30 second entry).
bool use_unfold(const Conv2dShape& sh) { return !(sh.k % 16 == 0 && (sh.c % 16 == 0 || sh.c <= 4)); }

// An operand as the reference sees it: in bf16 a copy rounded to bfloat16, else the data itself.
struct Operand {
  std::vector<float> rounded;
  const float* p;
  Operand(const Conv2dShape& sh, const float* data, int64_t count) : p(data) {
    if (sh.precision != Precision::BF16 || !data) return;
    rounded.resize(size_t(count));
    parallel_for(count, 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) rounded[size_t(i)] = round_to_bf16(data[i]);
    });
    p = rounded.data();
  }
};
int64_t x_count(const Conv2dShape& sh) { return int64_t(sh.n) * sh.c * sh.h * sh.w; }
int64_t w_count(const Conv2dShape& sh) { return int64_t(sh.k) * sh.c * sh.r * sh.s; }
int64_t y_count(const Conv2dShape& sh) { return int64_t(sh.n) * sh.k * sh.out_h() * sh.out_w(); }

// The reference and the unfolding take (N,C,H,W) only: channels-last operands reach them as
// reordered copies (Staged), and their results go back through a reordered copy.
bool oneDnn(const Conv2dShape& sh) { return !g_reference && sh.n != 0 && !use_unfold(sh); }
bool staged(const Conv2dShape& sh) { return (sh.x_channels_last || sh.y_channels_last) && !oneDnn(sh); }
Conv2dShape contiguous(Conv2dShape sh) {
  sh.x_channels_last = sh.y_channels_last = false;
  return sh;
}
// One operand of (n, c, hw) in (N,C,H,W) for a contiguous-only kernel. For an input, `p` is the
// data or a contiguous copy; for an output, `p` is the data or a scratch copy (zeros when the
// kernel accumulates) that finish() reorders into the data (added when accumulating).
struct Staged {
  bool copy;
  int64_t n, c, hw;
  float* data;
  std::vector<float> buf;
  float* p;
  Staged(bool channels_last, int64_t n_, int64_t c_, int64_t hw_, const float* d, bool output)
      : copy(channels_last && d), n(n_), c(c_), hw(hw_), data(const_cast<float*>(d)), p(data) {
    if (!copy) return;
    buf.assign(size_t(n * c * hw), 0.0f);
    p = buf.data();
    if (!output) to_contiguous(n, c, hw, d, p);
  }
  void finish(bool accumulate) {
    if (copy) to_channels_last(n, c, hw, p, data, accumulate);
  }
};
// The paths that honour dx_overwrite themselves: oneDNN, and the unfolding on (N,C,H,W) operands;
// the reference and the staged copies accumulate, so dx is zeroed for them first.
bool writes_dx(const Conv2dShape& sh) { return !g_reference && sh.n != 0 && (oneDnn(sh) || !staged(sh)); }
int64_t hw_in(const Conv2dShape& sh) { return int64_t(sh.h) * sh.w; }
int64_t hw_out(const Conv2dShape& sh) { return int64_t(sh.out_h()) * sh.out_w(); }

// sums[k] += sum over (n, i) of v[n][k][i] (N, K, PQ), only where mask >= 0 when given: one
// thread per block of channels, each channel summed in double in eight interleaved partial sums
// (so the adds pipeline) that are combined in a fixed order: the result does not depend on the threads.
void channel_sums(int64_t K, int64_t N, int64_t PQ, const float* v, float* sums, const int32_t* mask = nullptr) {
  parallel_for(K, N * PQ, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      double part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (int64_t n = 0; n < N; ++n) {
        const float* d = v + (n * K + k) * PQ;
        if (mask) {
          const int32_t* m = mask + (n * K + k) * PQ;
          for (int64_t i = 0; i < PQ; ++i) part[i % 8] += m[i] >= 0 ? d[i] : 0.0f;
          continue;
        }
        int64_t i = 0;
        for (; i + 8 <= PQ; i += 8)
          for (int l = 0; l < 8; ++l) part[l] += d[i + l];
        for (; i < PQ; ++i) part[i % 8] += d[i];
      }
      sums[k] += float(((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7])));
    }
  });
}

}  // namespace

bool conv2d_fast_path_built() { return dnnl_conv::built(); }
// oneDNN with whole blocks of 16 output channels (the ResNets): LeNet's 20 and 50 channels, on
// oneDNN in bf16, measured slower channels-last (its pooling reorders back; bench/RESULTS.md).
bool conv2d_prefers_channels_last(const Conv2dShape& sh) { return oneDnn(sh) && sh.k % 16 == 0; }
void conv2d_use_reference(bool on) { g_reference = on || !dnnl_conv::built(); }
bool conv2d_using_reference() { return g_reference; }
const char* conv2d_path() { return g_reference ? "reference" : "onednn+unfold"; }

void conv2d_forward(const Conv2dShape& sh, const float* x, const float* weight, const float* bias, float* y) {
  if (staged(sh)) {
    Staged xs(sh.x_channels_last, sh.n, sh.c, hw_in(sh), x, false), ys(sh.y_channels_last, sh.n, sh.k, hw_out(sh), y, true);
    conv2d_forward(contiguous(sh), xs.p, weight, bias, ys.p);
    return ys.finish(false);
  }
  if (g_reference || sh.n == 0)
    return ref::conv2d_forward(sh, Operand(sh, x, x_count(sh)).p, Operand(sh, weight, w_count(sh)).p, bias, y);
  if (use_unfold(sh)) return unfold_conv::forward(sh, x, weight, bias, y);
  dnnl_conv::forward(sh, x, weight, bias, y);
}

size_t conv2d_kept_bytes(const Conv2dShape& sh, bool bias) {
  return oneDnn(sh) && sh.precision == Precision::BF16 ? dnnl_conv::kept_input_bytes(sh, bias) : 0;
}

bool conv2d_takes_bf16(const Conv2dShape& sh) {
  return oneDnn(sh) && sh.precision == Precision::BF16 && sh.y_channels_last;
}

namespace {
// Whether x or y is bf16 (then oneDNN takes them: checked; a bf16 x is channels-last).
bool bf16_operands(const Conv2dShape& sh) {
  if (!sh.x_bf16 && !sh.y_bf16) return false;
  MACER_CHECK(conv2d_takes_bf16(sh) && (!sh.x_bf16 || sh.x_channels_last),
              "conv2d: bf16 activations on a path that takes float32 (conv2d_takes_bf16)");
  return true;
}
}  // namespace

void conv2d_forward(const Conv2dShape& sh, const void* x, const float* weight, const float* bias, void* y,
                    void* keep) {
  if (!keep && !bf16_operands(sh))
    return conv2d_forward(sh, static_cast<const float*>(x), weight, bias, static_cast<float*>(y));
  MACER_CHECK(!keep || conv2d_kept_bytes(sh, bias != nullptr) > 0, "conv2d_forward: this path keeps no copy of x");
  dnnl_conv::forward(sh, x, weight, bias, y, keep);
}

void conv2d_backward_data(const Conv2dShape& sh, const float* dy, const float* weight, float* dx) {
  if (sh.dx_overwrite && !writes_dx(sh)) {  // the path accumulates: onto zeros
    std::memset(dx, 0, sizeof(float) * size_t(x_count(sh)));
    Conv2dShape acc = sh;
    acc.dx_overwrite = false;
    return conv2d_backward_data(acc, dy, weight, dx);
  }
  if (staged(sh)) {
    Staged dys(sh.y_channels_last, sh.n, sh.k, hw_out(sh), dy, false), dxs(sh.x_channels_last, sh.n, sh.c, hw_in(sh), dx, true);
    conv2d_backward_data(contiguous(sh), dys.p, weight, dxs.p);
    return dxs.finish(true);
  }
  if (g_reference || sh.n == 0)
    return ref::conv2d_backward_data(sh, Operand(sh, dy, y_count(sh)).p, Operand(sh, weight, w_count(sh)).p, dx);
  if (use_unfold(sh)) return unfold_conv::backward_data(sh, dy, weight, dx);
  dnnl_conv::backward_data(sh, dy, weight, dx);
}

void conv2d_backward_weight(const Conv2dShape& sh, const float* x, const float* dy, float* dweight) {
  if (staged(sh)) {
    Staged xs(sh.x_channels_last, sh.n, sh.c, hw_in(sh), x, false), dys(sh.y_channels_last, sh.n, sh.k, hw_out(sh), dy, false);
    return conv2d_backward_weight(contiguous(sh), xs.p, dys.p, dweight);
  }
  if (g_reference || sh.n == 0)
    return ref::conv2d_backward_weight(sh, Operand(sh, x, x_count(sh)).p, Operand(sh, dy, y_count(sh)).p, dweight);
  if (use_unfold(sh)) return unfold_conv::backward_weight(sh, x, dy, dweight);
  dnnl_conv::backward_weight(sh, x, dy, dweight);
}

void conv2d_backward(const Conv2dShape& sh, const float* x, const float* dy, const float* weight, float* dx,
                     float* dweight, float* dbias) {
  if (sh.dx_overwrite && !writes_dx(sh) && dx) {  // the path accumulates: onto zeros
    std::memset(dx, 0, sizeof(float) * size_t(x_count(sh)));
    Conv2dShape acc = sh;
    acc.dx_overwrite = false;
    return conv2d_backward(acc, x, dy, weight, dx, dweight, dbias);
  }
  if (staged(sh)) {
    if (dbias) conv2d_backward_bias(sh, dy, dbias);
    if (dx) conv2d_backward_data(sh, dy, weight, dx);
    if (dweight) conv2d_backward_weight(sh, x, dy, dweight);
    return;
  }
  if (g_reference || sh.n == 0) {
    if (dbias) ref::conv2d_backward_bias(sh, dy, dbias);  // a plain sum: float32 in either precision
    if (dx) conv2d_backward_data(sh, dy, weight, dx);
    if (dweight) conv2d_backward_weight(sh, x, dy, dweight);
    return;
  }
  if (use_unfold(sh)) {
    unfold_conv::backward(sh, x, dy, weight, dx, dweight);
  } else if (dx || dweight) {
    dnnl_conv::backward(sh, x, dy, weight, dx, dweight);
  }
  if (dbias) conv2d_backward_bias(sh, dy, dbias);
}

void conv2d_backward(const Conv2dShape& sh, const void* x, const float* dy, const float* weight, float* dx,
                     float* dweight, float* dbias, const void* kept) {
  if (!bf16_operands(sh) && (!kept || !oneDnn(sh)))
    return conv2d_backward(sh, static_cast<const float*>(x), dy, weight, dx, dweight, dbias);
  dnnl_conv::backward(sh, x, dy, weight, dx, dweight, kept);
  if (dbias) conv2d_backward_bias(sh, dy, dbias);
}

bool conv2d_max_pool2d_fused(const Conv2dShape& cs, const Pool2dShape& ps) {
  return !g_reference && cs.n != 0 && use_unfold(cs) && !cs.x_channels_last && !cs.y_channels_last &&
         ps.n == cs.n && ps.c == cs.k && ps.h == cs.out_h() && ps.w == cs.out_w();
}

void conv2d_max_pool2d_forward(const Conv2dShape& cs, const Pool2dShape& ps, const float* x, const float* weight,
                               const float* bias, float* y, int32_t* argmax, bool relu) {
  MACER_CHECK(conv2d_max_pool2d_fused(cs, ps), "conv2d_max_pool2d: this shape runs as two ops");
  unfold_conv::Pooled pool;
  pool.shape = &ps, pool.argmax_out = argmax, pool.relu = relu;
  unfold_conv::forward(cs, x, weight, bias, y, pool);
}

void conv2d_max_pool2d_backward(const Conv2dShape& cs, const Pool2dShape& ps, const float* x, const float* dy,
                                const int32_t* argmax, const float* weight, float* dx, float* dweight, float* dbias) {
  MACER_CHECK(conv2d_max_pool2d_fused(cs, ps), "conv2d_max_pool2d: this shape runs as two ops");
  unfold_conv::Pooled pool;
  pool.shape = &ps, pool.argmax = argmax;
  unfold_conv::backward(cs, x, dy, weight, dx, dweight, pool);
  // The convolution's bias gradient sums its dy, which holds each pooled gradient that reaches it
  // once (at its argmax; -1 where a fused ReLU stopped it): the pooled dy summed per channel.
  if (dbias) channel_sums(cs.k, ps.n, int64_t(ps.out_h()) * ps.out_w(), dy, dbias, argmax);
}

// dbias[k] += sum over (n, p, q) of dy[n][k][p][q] (channel_sums).
// Channels-last dy: the same sums over (n, p, q) with dy[(n PQ + i) K + k].
void conv2d_backward_bias(const Conv2dShape& sh, const float* dy, float* dbias) {
  const int64_t PQ = int64_t(sh.out_h()) * sh.out_w();
  if (sh.y_channels_last) {
    const int64_t rows = int64_t(sh.n) * PQ;
    parallel_for(sh.k, rows, [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k) {
        double part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int64_t i = 0; i < rows; ++i) part[i % 8] += dy[i * sh.k + k];
        dbias[k] += float(((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7])));
      }
    });
    return;
  }
  if (g_reference) return ref::conv2d_backward_bias(sh, dy, dbias);
  channel_sums(sh.k, sh.n, PQ, dy, dbias);
}

}  // namespace macer::kernels::cpu
