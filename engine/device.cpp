// Device queries and parsing; the only place outside kernels/cuda that asks the CUDA runtime
// whether a GPU exists (through kernels/cuda/context.h when CUDA is built).
#include "engine/device.h"

#include <fstream>

#include "kernels/check.h"
#ifdef MACER_HAVE_CUDA
#include "kernels/cuda/context.h"
#endif

namespace macer {

const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

Device parse_device(const std::string& name) {
  if (name == "cpu") return Device::CPU;
  if (name == "cuda") return Device::CUDA;
  if (name == "auto") return cuda_available() ? Device::CUDA : Device::CPU;
  throw Error("unknown device '" + name + "' (expected cpu, cuda or auto)");
}

bool cuda_available() {
#ifdef MACER_HAVE_CUDA
  return kernels::cuda::device_available();
#else
  return false;
#endif
}

std::string cuda_unavailable_reason() {
#ifdef MACER_HAVE_CUDA
  return kernels::cuda::unavailable_reason();
#else
  return "built without CUDA (MACER_CUDA=OFF)";
#endif
}

void require_device(Device d) {
  if (d == Device::CUDA && !cuda_available())
    throw Error("device cuda requested but no GPU can be used: " + cuda_unavailable_reason());
}

void synchronize(Device d) {
#ifdef MACER_HAVE_CUDA
  if (d == Device::CUDA) kernels::cuda::synchronize();
#endif
}

void select_cuda_device(int ordinal) {
#ifdef MACER_HAVE_CUDA
  if (!cuda_available()) return;
  int count = 0;
  MACER_CUDA_CHECK(cudaGetDeviceCount(&count));
  MACER_CUDA_CHECK(cudaSetDevice(ordinal % count));
#else
  (void)ordinal;
#endif
}

std::string device_description(Device d) {
#ifdef MACER_HAVE_CUDA
  if (d == Device::CUDA && cuda_available()) {
    cudaDeviceProp prop{};
    int dev = 0;
    if (cudaGetDevice(&dev) == cudaSuccess && cudaGetDeviceProperties(&prop, dev) == cudaSuccess)
      return prop.name;
    return "CUDA device";
  }
#endif
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line))
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  return "CPU";
}

}  // namespace macer
