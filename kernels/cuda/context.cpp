// The CUDA context: device detection, the stream, cuDNN and cuBLAS handles bound to it,
// the cuDNN workspace, and the error formatting behind the check macros.
#include "kernels/cuda/context.h"

#include <mutex>
#include <string>

namespace macer::kernels::cuda {

void throw_cuda_error(const char* api, const std::string& what, const char* call, const char* file,
                      int line, bool out_of_memory) {
  std::string msg = std::string(api) + " error: " + what + " in " + call + " at " + file + ":" +
                    std::to_string(line);
  if (out_of_memory) throw OutOfMemory(msg + " (out of GPU memory; reduce the batch size)");
  throw Error(msg);
}

namespace {

struct Probe {
  bool ok = false;
  std::string reason;
};

const Probe& probe() {
  static Probe p = [] {
    Probe r;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
      r.reason = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(e);
      cudaGetLastError();
    } else if (count == 0) {
      r.reason = "no CUDA device";
    } else {
      r.ok = true;
    }
    return r;
  }();
  return p;
}

struct Context {
  cudaStream_t stream = nullptr;
  cudnnHandle_t cudnn = nullptr;
  cublasHandle_t cublas = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  std::mutex mutex;

  Context() {
    MACER_CHECK(probe().ok, "no usable GPU: " << probe().reason);
    MACER_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    MACER_CUDNN_CHECK(cudnnCreate(&cudnn));
    MACER_CUDNN_CHECK(cudnnSetStream(cudnn, stream));
    MACER_CUBLAS_CHECK(cublasCreate(&cublas));
    MACER_CUBLAS_CHECK(cublasSetStream(cublas, stream));
  }
};

Context& context() {
  static Context* ctx = new Context();  // lives to the end of the process
  return *ctx;
}

}  // namespace

bool device_available() noexcept { return probe().ok; }
const char* unavailable_reason() noexcept { return probe().reason.c_str(); }

cudaStream_t stream() { return context().stream; }
cudnnHandle_t cudnn() { return context().cudnn; }
cublasHandle_t cublas() { return context().cublas; }

void* workspace(size_t bytes) {
  Context& ctx = context();
  std::lock_guard<std::mutex> lock(ctx.mutex);
  if (bytes > ctx.workspace_bytes) {
    if (ctx.workspace) {
      MACER_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
      MACER_CUDA_CHECK(cudaFree(ctx.workspace));
    }
    MACER_CUDA_CHECK(cudaMalloc(&ctx.workspace, bytes));
    ctx.workspace_bytes = bytes;
  }
  return ctx.workspace;
}

void synchronize() { MACER_CUDA_CHECK(cudaStreamSynchronize(context().stream)); }

}  // namespace macer::kernels::cuda
