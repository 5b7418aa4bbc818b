// Host allocation (64-byte aligned; large blocks kept by size for reuse, so a steady training
// step maps no fresh pages) and the CUDA caching allocator: blocks are rounded up to 512 bytes
// and kept in per-size free lists; a cudaMalloc that fails empties the cache, retries.
#include "engine/memory.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <vector>

#include "kernels/check.h"
#include "kernels/cpu/parallel.h"
#ifdef MACER_HAVE_CUDA
#include "kernels/cuda/context.h"
#endif

namespace macer {

namespace {

// Large host blocks come back to free lists by exact (64-byte rounded) size instead of going
// to the C library, which maps blocks this large afresh on every allocation and page-faults them
// in again. Shapes repeat from step to step, so the lists serve nearly every request. Small
// blocks go straight to malloc; at most kHostCacheMax bytes are held, the rest is freed.
class HostCache {
 public:
  static constexpr size_t kMinCached = size_t(256) << 10;  // 256 KiB
  static constexpr size_t kHostCacheMax = size_t(2) << 30;  // 2 GiB

  std::shared_ptr<void> allocate(size_t bytes) {
    const size_t rounded = bytes == 0 ? 64 : (bytes + 63) / 64 * 64;
    if (rounded < kMinCached) return std::shared_ptr<void>(checked_alloc(rounded, bytes), [](void* q) { std::free(q); });
    void* p = nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(rounded);
      if (it != free_.end() && !it->second.empty()) {
        p = it->second.back();
        it->second.pop_back();
        cached_ -= rounded;
      }
    }
    if (!p) p = checked_alloc(rounded, bytes);
    return std::shared_ptr<void>(p, [this, rounded](void* q) { give_back(q, rounded); });
  }

 private:
  static void* checked_alloc(size_t rounded, size_t bytes) {
    void* p = std::aligned_alloc(64, rounded);
    if (!p) throw OutOfMemory("out of host memory allocating " + std::to_string(bytes) + " bytes");
    return p;
  }
  void give_back(void* q, size_t rounded) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_ + rounded <= kHostCacheMax) {
        free_[rounded].push_back(q);
        cached_ += rounded;
        return;
      }
    }
    std::free(q);
  }
  std::mutex mutex_;
  std::map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0;
};

std::shared_ptr<void> allocate_host(size_t bytes) {
  static HostCache* cache = new HostCache();  // never destroyed: blocks may outlive main()
  return cache->allocate(bytes);
}

#ifdef MACER_HAVE_CUDA
class CudaCache {
 public:
  std::shared_ptr<void> allocate(size_t bytes) {
    size_t size = (bytes + 511) / 512 * 512;
    if (size == 0) size = 512;
    void* p = nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto& list = free_[size];
      if (!list.empty()) {
        p = list.back();
        list.pop_back();
        stats_.bytes_cached -= size;
      }
    }
    if (!p) p = fresh(size);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stats_.bytes_in_use += size;
    }
    return std::shared_ptr<void>(p, [this, size](void* q) { give_back(q, size); });
  }

  void release_cached() {
    std::lock_guard<std::mutex> lock(mutex_);
    // Queued kernels may still read blocks freed since the last synchronisation.
    cudaStreamSynchronize(kernels::cuda::stream());
    for (auto& [size, list] : free_)
      for (void* p : list) {
        cudaFree(p);
        ++stats_.free_calls;
        stats_.bytes_cached -= size;
      }
    free_.clear();
  }

  CudaMemoryStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

 private:
  void* fresh(size_t size) {
    void* p = nullptr;
    if (cudaMalloc(&p, size) != cudaSuccess) {
      cudaGetLastError();
      release_cached();
      if (cudaMalloc(&p, size) != cudaSuccess) {
        cudaGetLastError();
        size_t free_bytes = 0, total = 0;
        cudaMemGetInfo(&free_bytes, &total);
        throw OutOfMemory("out of GPU memory allocating " + std::to_string(size >> 20) +
                          " MiB (" + std::to_string(free_bytes >> 20) + " MiB free of " +
                          std::to_string(total >> 20) + "); reduce the batch size");
      }
    }
    std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.malloc_calls;
    return p;
  }

  // Work on the one stream is ordered, so a block freed here is safe to hand to later work
  // on the same stream without synchronising.
  void give_back(void* p, size_t size) {
    std::lock_guard<std::mutex> lock(mutex_);
    free_[size].push_back(p);
    stats_.bytes_in_use -= size;
    stats_.bytes_cached += size;
  }

  std::mutex mutex_;
  std::map<size_t, std::vector<void*>> free_;
  CudaMemoryStats stats_;
};

CudaCache& cuda_cache() {
  static CudaCache* cache = new CudaCache();  // never destroyed: blocks may outlive main()
  return *cache;
}
#endif

}  // namespace

std::shared_ptr<void> allocate(size_t bytes, Device device) {
  if (device == Device::CPU) return allocate_host(bytes);
#ifdef MACER_HAVE_CUDA
  require_device(device);
  return cuda_cache().allocate(bytes);
#else
  require_device(device);
  return nullptr;
#endif
}

CudaMemoryStats cuda_memory_stats() {
#ifdef MACER_HAVE_CUDA
  return cuda_cache().stats();
#else
  return {};
#endif
}

void cuda_release_cached() {
#ifdef MACER_HAVE_CUDA
  if (cuda_available()) cuda_cache().release_cached();
#endif
}

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  if (bytes == 0) return;
  if (dst_device == Device::CPU && src_device == Device::CPU) {
    std::memcpy(dst, src, bytes);
    return;
  }
#ifdef MACER_HAVE_CUDA
  cudaMemcpyKind kind = src_device == Device::CPU   ? cudaMemcpyHostToDevice
                        : dst_device == Device::CPU ? cudaMemcpyDeviceToHost
                                                    : cudaMemcpyDeviceToDevice;
  MACER_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, kind, kernels::cuda::stream()));
  // Host to device needs no wait: from pageable memory the call returns once the source has
  // been staged, so a training step's batch upload does not synchronise. Device to host does.
  if (dst_device == Device::CPU) MACER_CUDA_CHECK(cudaStreamSynchronize(kernels::cuda::stream()));
#else
  throw Error("copy to or from CUDA in a build without CUDA");
#endif
}

void zero_bytes(void* dst, Device device, size_t bytes) {
  if (bytes == 0) return;
  if (device == Device::CPU) {  // in 64 KiB pieces over the cores (gradient buffers are large)
    const int64_t piece = int64_t(64) << 10, pieces = (int64_t(bytes) + piece - 1) / piece;
    kernels::cpu::parallel_for(pieces, piece / 4, [=](int64_t b, int64_t e) {
      const int64_t begin = b * piece, end = std::min<int64_t>(e * piece, int64_t(bytes));
      std::memset(static_cast<char*>(dst) + begin, 0, size_t(end - begin));
    });
    return;
  }
#ifdef MACER_HAVE_CUDA
  MACER_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, kernels::cuda::stream()));
#endif
}

}  // namespace macer
