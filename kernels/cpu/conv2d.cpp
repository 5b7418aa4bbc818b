// CPU 2-d convolution entry points (kernels/conv2d.h): each call goes to the oneDNN fast path
// (kernels/cpu/conv2d_dnnl.cpp) when built with it, otherwise to the reference cpu::ref.
#include "kernels/conv2d.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "kernels/cpu/conv2d_dnnl.h"
#include "kernels/cpu/conv2d_unfold.h"
#include "kernels/cpu/parallel.h"

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
bool use_unfold(const Conv2dShape& sh) {
  const bool blocks = sh.k % 16 == 0 && (sh.c % 16 == 0 || sh.c <= 4);
  return !blocks;
}

}  // namespace

bool conv2d_fast_path_built() { return dnnl_conv::built(); }
void conv2d_use_reference(bool on) { g_reference = on || !dnnl_conv::built(); }
bool conv2d_using_reference() { return g_reference; }
const char* conv2d_path() { return g_reference ? "reference" : "onednn+unfold"; }

void conv2d_forward(const Conv2dShape& sh, const float* x, const float* weight, const float* bias, float* y) {
  if (g_reference || sh.n == 0) return ref::conv2d_forward(sh, x, weight, bias, y);
  if (use_unfold(sh)) return unfold_conv::forward(sh, x, weight, bias, y);
  dnnl_conv::forward(sh, x, weight, bias, y);
}

void conv2d_backward_data(const Conv2dShape& sh, const float* dy, const float* weight, float* dx) {
  if (g_reference || sh.n == 0) return ref::conv2d_backward_data(sh, dy, weight, dx);
  if (use_unfold(sh)) return unfold_conv::backward_data(sh, dy, weight, dx);
  dnnl_conv::backward_data(sh, dy, weight, dx);
}

void conv2d_backward_weight(const Conv2dShape& sh, const float* x, const float* dy, float* dweight) {
  if (g_reference || sh.n == 0) return ref::conv2d_backward_weight(sh, x, dy, dweight);
  if (use_unfold(sh)) return unfold_conv::backward_weight(sh, x, dy, dweight);
  dnnl_conv::backward_weight(sh, x, dy, dweight);
}

void conv2d_backward(const Conv2dShape& sh, const float* x, const float* dy, const float* weight, float* dx,
                     float* dweight, float* dbias) {
  if (g_reference || sh.n == 0) return ref::conv2d_backward(sh, x, dy, weight, dx, dweight, dbias);
  if (use_unfold(sh)) {
    if (dx) unfold_conv::backward_data(sh, dy, weight, dx);
    if (dweight) unfold_conv::backward_weight(sh, x, dy, dweight);
  } else if (dx || dweight) {
    dnnl_conv::backward(sh, x, dy, weight, dx, dweight);
  }
  if (dbias) conv2d_backward_bias(sh, dy, dbias);
}

// dbias[k] += sum over (n, p, q) of dy[n][k][p][q]: one thread per block of channels, each
// channel summed in double in eight interleaved partial sums (so the adds pipeline) that are
// combined in a fixed order: the result does not depend on the threads.
void conv2d_backward_bias(const Conv2dShape& sh, const float* dy, float* dbias) {
  if (g_reference) return ref::conv2d_backward_bias(sh, dy, dbias);
  const int64_t PQ = int64_t(sh.out_h()) * sh.out_w();
  parallel_for(sh.k, int64_t(sh.n) * PQ, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      double part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (int n = 0; n < sh.n; ++n) {
        const float* d = dy + (int64_t(n) * sh.k + k) * PQ;
        int64_t i = 0;
        for (; i + 8 <= PQ; i += 8)
          for (int l = 0; l < 8; ++l) part[l] += d[i + l];
        for (; i < PQ; ++i) part[i % 8] += d[i];
      }
      dbias[k] += float(((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7])));
    }
  });
}

}  // namespace macer::kernels::cpu
