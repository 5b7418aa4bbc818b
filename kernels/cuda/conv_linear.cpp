// CUDA convolution (cuDNN legacy API) and linear layer (cuBLAS sgemm; bias via cuDNN tensor ops).
// Library calls only, so g++ compiles this file; custom kernels live in nn.cu and losses.cu.
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "kernels/conv2d.h"
#include "kernels/cuda/context.h"
#include "kernels/linear.h"

namespace macer::kernels::cuda {

namespace {

// Algorithms needing more scratch than this are passed over (cuDNN's Find may suggest FFT
// variants with gigabytes of workspace for large batches).
constexpr size_t kMaxWorkspaceBytes = size_t(1) << 30;

// TF32 tensor cores for convolutions are off by default, so CUDA agrees with the CPU to float
// rounding; MACER_CONV_TF32=1 allows them (PyTorch's default for convolutions) for speed.
bool allow_tf32() {
  static const bool allow = [] {
    const char* v = std::getenv("MACER_CONV_TF32");
    return v != nullptr && v[0] == '1';
  }();
  return allow;
}

bool math_allowed(cudnnMathType_t m) {
  return allow_tf32() || m == CUDNN_FMA_MATH || m == CUDNN_DEFAULT_MATH;
}

cudnnTensorDescriptor_t make_tensor(int n, int c, int h, int w) {
  cudnnTensorDescriptor_t d;
  MACER_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d));
  MACER_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, w));
  return d;
}

// One convolution shape: its descriptors and, found lazily per direction, the algorithm to use.
// The descriptors live as long as the process (the cache is never emptied).
struct ConvPlan {
  cudnnTensorDescriptor_t x, y, bias;  // (N,C,H,W), (N,K,P,Q), (1,K,1,1)
  cudnnFilterDescriptor_t w;           // (K,C,R,S)
  // One convolution descriptor per direction: each carries the math type of its algorithm.
  cudnnConvolutionDescriptor_t conv_fwd, conv_bwd_data, conv_bwd_filter;
  bool has_fwd = false, has_bwd_data = false, has_bwd_filter = false;
  cudnnConvolutionFwdAlgo_t fwd{};
  cudnnConvolutionBwdDataAlgo_t bwd_data{};
  cudnnConvolutionBwdFilterAlgo_t bwd_filter{};
  size_t fwd_bytes = 0, bwd_data_bytes = 0, bwd_filter_bytes = 0;
};

cudnnConvolutionDescriptor_t make_conv(const Conv2dShape& s) {
  cudnnConvolutionDescriptor_t d;
  MACER_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&d));
  MACER_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(d, s.pad, s.pad, s.stride, s.stride, 1, 1,
                                                    CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  MACER_CUDNN_CHECK(
      cudnnSetConvolutionMathType(d, allow_tf32() ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
  return d;
}

ConvPlan make_plan(const Conv2dShape& s) {
  ConvPlan p;
  p.x = make_tensor(s.n, s.c, s.h, s.w);
  p.y = make_tensor(s.n, s.k, s.out_h(), s.out_w());
  p.bias = make_tensor(1, s.k, 1, 1);
  MACER_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p.w));
  MACER_CUDNN_CHECK(
      cudnnSetFilter4dDescriptor(p.w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, s.k, s.c, s.r, s.s));
  p.conv_fwd = make_conv(s);
  p.conv_bwd_data = make_conv(s);
  p.conv_bwd_filter = make_conv(s);
  int n = 0, k = 0, oh = 0, ow = 0;
  MACER_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p.conv_fwd, p.x, p.w, &n, &k, &oh, &ow));
  MACER_CHECK(n == s.n && k == s.k && oh == s.out_h() && ow == s.out_w(),
              "cuDNN output shape " << n << "x" << k << "x" << oh << "x" << ow
                                    << " differs from the engine's");
  return p;
}

// Picks the first (fastest) usable result: finished, small enough, of an allowed math type;
// sets that math type on the direction's descriptor. Returns false when none qualifies.
template <typename Perf, typename Algo>
bool choose(const Perf* perf, int count, cudnnConvolutionDescriptor_t conv, Algo* algo,
            size_t* bytes) {
  for (int i = 0; i < count; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > kMaxWorkspaceBytes) continue;
    if (!math_allowed(perf[i].mathType)) continue;
    cudnnMathType_t math = perf[i].mathType;
    if (!allow_tf32() && math == CUDNN_DEFAULT_MATH) math = CUDNN_FMA_MATH;
    MACER_CUDNN_CHECK(cudnnSetConvolutionMathType(conv, math));
    *algo = perf[i].algo;
    *bytes = perf[i].memory;
    return true;
  }
  return false;
}

constexpr int kMaxAlgos = 16;

// Find (timed, runs once per shape and direction; cuDNN allocates its own scratch for it),
// and the heuristic _v7 query when Find fails or offers nothing usable.
void find_fwd(ConvPlan& p) {
  cudnnConvolutionFwdAlgoPerf_t perf[kMaxAlgos];
  int count = 0;
  cudnnStatus_t st = cudnnFindConvolutionForwardAlgorithm(cudnn(), p.x, p.w, p.conv_fwd, p.y,
                                                          kMaxAlgos, &count, perf);
  if (st != CUDNN_STATUS_SUCCESS) cudaGetLastError();  // a failed cudaMalloc inside Find
  if (st != CUDNN_STATUS_SUCCESS || !choose(perf, count, p.conv_fwd, &p.fwd, &p.fwd_bytes)) {
    MACER_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(cudnn(), p.x, p.w, p.conv_fwd, p.y,
                                                             kMaxAlgos, &count, perf));
    MACER_CHECK(choose(perf, count, p.conv_fwd, &p.fwd, &p.fwd_bytes),
                "cuDNN offers no forward convolution algorithm for this shape");
  }
  MACER_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(cudnn(), p.x, p.w, p.conv_fwd, p.y,
                                                            p.fwd, &p.fwd_bytes));
  p.has_fwd = true;
}

void find_bwd_data(ConvPlan& p) {
  cudnnConvolutionBwdDataAlgoPerf_t perf[kMaxAlgos];
  int count = 0;
  cudnnStatus_t st = cudnnFindConvolutionBackwardDataAlgorithm(cudnn(), p.w, p.y, p.conv_bwd_data,
                                                               p.x, kMaxAlgos, &count, perf);
  if (st != CUDNN_STATUS_SUCCESS) cudaGetLastError();
  if (st != CUDNN_STATUS_SUCCESS ||
      !choose(perf, count, p.conv_bwd_data, &p.bwd_data, &p.bwd_data_bytes)) {
    MACER_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
        cudnn(), p.w, p.y, p.conv_bwd_data, p.x, kMaxAlgos, &count, perf));
    MACER_CHECK(choose(perf, count, p.conv_bwd_data, &p.bwd_data, &p.bwd_data_bytes),
                "cuDNN offers no backward-data convolution algorithm for this shape");
  }
  MACER_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(
      cudnn(), p.w, p.y, p.conv_bwd_data, p.x, p.bwd_data, &p.bwd_data_bytes));
  p.has_bwd_data = true;
}

void find_bwd_filter(ConvPlan& p) {
  cudnnConvolutionBwdFilterAlgoPerf_t perf[kMaxAlgos];
  int count = 0;
  cudnnStatus_t st = cudnnFindConvolutionBackwardFilterAlgorithm(
      cudnn(), p.x, p.y, p.conv_bwd_filter, p.w, kMaxAlgos, &count, perf);
  if (st != CUDNN_STATUS_SUCCESS) cudaGetLastError();
  if (st != CUDNN_STATUS_SUCCESS ||
      !choose(perf, count, p.conv_bwd_filter, &p.bwd_filter, &p.bwd_filter_bytes)) {
    MACER_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
        cudnn(), p.x, p.y, p.conv_bwd_filter, p.w, kMaxAlgos, &count, perf));
    MACER_CHECK(choose(perf, count, p.conv_bwd_filter, &p.bwd_filter, &p.bwd_filter_bytes),
                "cuDNN offers no backward-filter convolution algorithm for this shape");
  }
  MACER_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(
      cudnn(), p.x, p.y, p.conv_bwd_filter, p.w, p.bwd_filter, &p.bwd_filter_bytes));
  p.has_bwd_filter = true;
}

enum class Direction { Forward, BackwardData, BackwardFilter, Bias };

// The plan for shape s with the algorithm of direction d chosen. Plans are never erased, so
// the returned reference stays valid; the lock covers lookup and the one-time Find.
ConvPlan& plan(const Conv2dShape& s, Direction d) {
  using Key = std::tuple<int, int, int, int, int, int, int, int, int>;
  static std::mutex mutex;
  static std::map<Key, std::unique_ptr<ConvPlan>> plans;
  std::lock_guard<std::mutex> lock(mutex);
  auto& slot = plans[Key{s.n, s.c, s.h, s.w, s.k, s.r, s.s, s.stride, s.pad}];
  if (!slot) slot = std::make_unique<ConvPlan>(make_plan(s));
  ConvPlan& p = *slot;
  if (d == Direction::Forward && !p.has_fwd) find_fwd(p);
  if (d == Direction::BackwardData && !p.has_bwd_data) find_bwd_data(p);
  if (d == Direction::BackwardFilter && !p.has_bwd_filter) find_bwd_filter(p);
  return p;
}

// The precision plan (kernels/precision.h) reaches these kernels in the shape; bf16 on the GPU
// (cuDNN/cuBLAS with bf16 operands) is the GPU issue's: until then it is refused here.
void fp32_only(Precision p, const char* op) {
  MACER_CHECK(p == Precision::FP32, op << ": bf16 is not implemented on CUDA yet; use precision fp32 on the GPU");
}

// Channels-last activations and overwriting backwards are the CPU's (engine/precision.h,
// engine/autograd.h); cuDNN's NHWC is the GPU issue's.
void contiguous_only(const Conv2dShape& s, const char* op) {
  MACER_CHECK(!s.x_channels_last && !s.y_channels_last, op << ": channels-last tensors are not implemented on CUDA");
  MACER_CHECK(!s.dx_overwrite, op << ": dx_overwrite is the CPU's (CUDA accumulates)");
}

bool empty(const Conv2dShape& s) {
  return s.n == 0 || s.k == 0 || s.c == 0 || s.out_h() <= 0 || s.out_w() <= 0;
}

}  // namespace

void conv2d_forward(const Conv2dShape& s, const float* x, const float* weight, const float* bias,
                    float* y) {
  fp32_only(s.precision, "conv2d_forward");
  contiguous_only(s, "conv2d_forward");
  if (empty(s)) return;
  ConvPlan& p = plan(s, Direction::Forward);
  void* ws = workspace(p.fwd_bytes);
  const float one = 1.0f, zero = 0.0f;
  // y = conv(x, w)   (beta 0: overwrite)
  MACER_CUDNN_CHECK(cudnnConvolutionForward(cudnn(), &one, p.x, x, p.w, weight, p.conv_fwd, p.fwd,
                                            ws, p.fwd_bytes, &zero, p.y, y));
  // y += bias, broadcast over N, P, Q
  if (bias) MACER_CUDNN_CHECK(cudnnAddTensor(cudnn(), &one, p.bias, bias, &one, p.y, y));
}

void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* weight, float* dx) {
  fp32_only(s.precision, "conv2d_backward_data");
  contiguous_only(s, "conv2d_backward_data");
  if (empty(s)) return;
  ConvPlan& p = plan(s, Direction::BackwardData);
  void* ws = workspace(p.bwd_data_bytes);
  const float one = 1.0f;
  // dx = 1 * conv_transpose(dy, w) + 1 * dx
  MACER_CUDNN_CHECK(cudnnConvolutionBackwardData(cudnn(), &one, p.w, weight, p.y, dy,
                                                 p.conv_bwd_data, p.bwd_data, ws, p.bwd_data_bytes,
                                                 &one, p.x, dx));
}

void conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dweight) {
  fp32_only(s.precision, "conv2d_backward_weight");
  contiguous_only(s, "conv2d_backward_weight");
  if (empty(s)) return;
  ConvPlan& p = plan(s, Direction::BackwardFilter);
  void* ws = workspace(p.bwd_filter_bytes);
  const float one = 1.0f;
  // dw = 1 * correlate(x, dy) + 1 * dw
  MACER_CUDNN_CHECK(cudnnConvolutionBackwardFilter(cudnn(), &one, p.x, x, p.y, dy,
                                                   p.conv_bwd_filter, p.bwd_filter, ws,
                                                   p.bwd_filter_bytes, &one, p.w, dweight));
}

void conv2d_backward_bias(const Conv2dShape& s, const float* dy, float* dbias) {
  contiguous_only(s, "conv2d_backward_bias");
  if (empty(s)) return;
  ConvPlan& p = plan(s, Direction::Bias);
  const float one = 1.0f;
  // db = 1 * sum_{n,p,q} dy + 1 * db
  MACER_CUDNN_CHECK(cudnnConvolutionBackwardBias(cudnn(), &one, p.y, dy, &one, p.bias, dbias));
}

void conv2d_backward(const Conv2dShape& s, const float* x, const float* dy, const float* weight, float* dx,
                     float* dweight, float* dbias) {
  fp32_only(s.precision, "conv2d_backward");
  contiguous_only(s, "conv2d_backward");
  if (dx) conv2d_backward_data(s, dy, weight, dx);
  if (dweight) conv2d_backward_weight(s, x, dy, dweight);
  if (dbias) conv2d_backward_bias(s, dy, dbias);
}

// ---- linear ------------------------------------------------------------------------------
// cuBLAS is column-major: a row-major (R, C) matrix is a column-major (C, R) one, its
// transpose. So y = x W^T (row-major) is y^T = W x^T (column-major), and so on below.

namespace {

// (N, OUT, 1, 1) and (1, OUT, 1, 1) views for the bias, cached per shape like the conv plans.
struct LinearBiasDescs {
  cudnnTensorDescriptor_t y, bias;
};

const LinearBiasDescs& bias_descs(const LinearShape& s) {
  static std::mutex mutex;
  static std::map<std::pair<int, int>, LinearBiasDescs> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find({s.n, s.out});
  if (it == cache.end())
    it = cache
             .emplace(std::make_pair(s.n, s.out),
                      LinearBiasDescs{make_tensor(s.n, s.out, 1, 1), make_tensor(1, s.out, 1, 1)})
             .first;
  return it->second;
}

}  // namespace

void linear_forward(const LinearShape& s, const float* x, const float* weight, const float* bias,
                    float* y) {
  fp32_only(s.precision, "linear_forward");
  if (s.n == 0 || s.out == 0) return;
  const float one = 1.0f, zero = 0.0f;
  // y^T (OUT x N) = W (stored IN x OUT, transposed) * x^T (IN x N)
  MACER_CUBLAS_CHECK(cublasSgemm(cublas(), CUBLAS_OP_T, CUBLAS_OP_N, s.out, s.n, s.in, &one, weight,
                                 s.in, x, s.in, &zero, y, s.out));
  if (bias) {
    const LinearBiasDescs& d = bias_descs(s);
    MACER_CUDNN_CHECK(cudnnAddTensor(cudnn(), &one, d.bias, bias, &one, d.y, y));
  }
}

void linear_backward_data(const LinearShape& s, const float* dy, const float* weight, float* dx) {
  fp32_only(s.precision, "linear_backward_data");
  if (s.n == 0 || s.in == 0) return;
  const float one = 1.0f;
  // dx^T (IN x N) += W^T (stored IN x OUT) * dy^T (OUT x N)
  MACER_CUBLAS_CHECK(cublasSgemm(cublas(), CUBLAS_OP_N, CUBLAS_OP_N, s.in, s.n, s.out, &one, weight,
                                 s.in, dy, s.out, &one, dx, s.in));
}

void linear_backward_weight(const LinearShape& s, const float* x, const float* dy, float* dweight) {
  fp32_only(s.precision, "linear_backward_weight");
  if (s.in == 0 || s.out == 0) return;
  const float one = 1.0f;
  // dW^T (IN x OUT) += x^T (IN x N) * dy (stored OUT x N, transposed)
  MACER_CUBLAS_CHECK(cublasSgemm(cublas(), CUBLAS_OP_N, CUBLAS_OP_T, s.in, s.out, s.n, &one, x,
                                 s.in, dy, s.out, &one, dweight, s.in));
}

void linear_backward_bias(const LinearShape& s, const float* dy, float* dbias) {
  if (s.n == 0 || s.out == 0) return;
  const float one = 1.0f;
  const LinearBiasDescs& d = bias_descs(s);
  // db = 1 * sum over rows of dy + 1 * db   (dy seen as (N, OUT, 1, 1))
  MACER_CUDNN_CHECK(cudnnConvolutionBackwardBias(cudnn(), &one, d.y, dy, &one, d.bias, dbias));
}

}  // namespace macer::kernels::cuda
