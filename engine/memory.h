// Memory for tensors: aligned host blocks, and a caching allocator for the GPU that keeps
// freed blocks by size, so a steady-state training step calls no cudaMalloc or cudaFree.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "engine/device.h"

namespace macer {

// A block of `bytes` on `device`; the block returns to its pool when the last owner lets go.
std::shared_ptr<void> allocate(size_t bytes, Device device);

struct CudaMemoryStats {
  int64_t malloc_calls = 0;   // cudaMalloc calls made so far
  int64_t free_calls = 0;     // cudaFree calls made so far
  int64_t bytes_in_use = 0;   // handed out and not yet returned
  int64_t bytes_cached = 0;   // held in the free lists
};
CudaMemoryStats cuda_memory_stats();
// Returns every cached block to the driver (for tests and before large allocations).
void cuda_release_cached();

// Copies between devices (and within one), ordered on the device's stream; returns after the
// data arrived when the destination is the host, and without waiting otherwise.
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);
void zero_bytes(void* dst, Device device, size_t bytes);

}  // namespace macer
