// Per-device state for the CUDA kernels: one stream, the cuDNN and cuBLAS handles bound to it,
// and a grow-only workspace for cuDNN. Created on first use; the engine asks here for a GPU.
#pragma once
#include <cstddef>

#include "kernels/cuda/check.h"

namespace macer::kernels::cuda {

// True when a CUDA device can be used; any error from the runtime counts as "no GPU".
bool device_available() noexcept;
// Why device_available() is false (the runtime's error or "no device"), for skip messages.
const char* unavailable_reason() noexcept;

cudaStream_t stream();
cudnnHandle_t cudnn();
cublasHandle_t cublas();

// Scratch memory for cuDNN algorithms; grows (cudaMalloc) only when a larger size is asked,
// so a steady-state step allocates nothing. Valid until the next call on the same stream.
void* workspace(size_t bytes);

void synchronize();

}  // namespace macer::kernels::cuda
