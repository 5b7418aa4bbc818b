// MACER_DISPATCH(device, fn, args...): calls kernels::cpu::fn or kernels::cuda::fn. The one
// place where an op chooses its implementation; a CPU-only build refuses CUDA tensors.
#pragma once
#include "engine/device.h"
#include "kernels/check.h"

namespace macer::detail {
[[noreturn]] inline void no_cuda_build() {
  throw Error("a CUDA tensor reached an op in a build without CUDA (MACER_CUDA=OFF)");
}
}  // namespace macer::detail

#ifdef MACER_HAVE_CUDA
#define MACER_DISPATCH(device, fn, ...)                                                  \
  ((device) == ::macer::Device::CPU ? ::macer::kernels::cpu::fn(__VA_ARGS__)            \
                                    : ::macer::kernels::cuda::fn(__VA_ARGS__))
#else
#define MACER_DISPATCH(device, fn, ...)                                                  \
  ((device) == ::macer::Device::CPU ? ::macer::kernels::cpu::fn(__VA_ARGS__)            \
                                    : ::macer::detail::no_cuda_build())
#endif
