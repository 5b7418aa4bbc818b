// Check macros for every CUDA, cuDNN, cuBLAS and cuRAND call and kernel launch:
// a failure throws macer::Error naming the call and file:line (out of memory as OutOfMemory).
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <curand.h>

#include <string>

#include "kernels/check.h"

namespace macer::kernels::cuda {
[[noreturn]] void throw_cuda_error(const char* api, const std::string& what, const char* call,
                                   const char* file, int line, bool out_of_memory);
}

#define MACER_CUDA_CHECK(call)                                                            \
  do {                                                                                    \
    cudaError_t macer_e_ = (call);                                                        \
    if (macer_e_ != cudaSuccess)                                                          \
      ::macer::kernels::cuda::throw_cuda_error("CUDA", cudaGetErrorString(macer_e_), #call, \
                                               __FILE__, __LINE__,                        \
                                               macer_e_ == cudaErrorMemoryAllocation);    \
  } while (0)

#define MACER_CUDNN_CHECK(call)                                                             \
  do {                                                                                      \
    cudnnStatus_t macer_s_ = (call);                                                        \
    if (macer_s_ != CUDNN_STATUS_SUCCESS)                                                   \
      ::macer::kernels::cuda::throw_cuda_error("cuDNN", cudnnGetErrorString(macer_s_), #call, \
                                               __FILE__, __LINE__,                          \
                                               macer_s_ == CUDNN_STATUS_ALLOC_FAILED);      \
  } while (0)

#define MACER_CUBLAS_CHECK(call)                                                              \
  do {                                                                                        \
    cublasStatus_t macer_s_ = (call);                                                         \
    if (macer_s_ != CUBLAS_STATUS_SUCCESS)                                                    \
      ::macer::kernels::cuda::throw_cuda_error("cuBLAS", cublasGetStatusString(macer_s_), #call, \
                                               __FILE__, __LINE__,                            \
                                               macer_s_ == CUBLAS_STATUS_ALLOC_FAILED);       \
  } while (0)

#define MACER_CURAND_CHECK(call)                                                                \
  do {                                                                                          \
    curandStatus_t macer_s_ = (call);                                                           \
    if (macer_s_ != CURAND_STATUS_SUCCESS)                                                      \
      ::macer::kernels::cuda::throw_cuda_error("cuRAND", "status " + std::to_string(macer_s_),  \
                                               #call, __FILE__, __LINE__, false);               \
  } while (0)

// After every <<<...>>> launch: catches bad launch configurations at the launch site.
#define MACER_LAUNCH_CHECK() MACER_CUDA_CHECK(cudaGetLastError())
