// Devices: the CPU and one CUDA GPU. Whether a GPU can be used is asked once, here;
// every runtime error from CUDA counts as "no GPU".
#pragma once
#include <string>

namespace macer {

enum class Device { CPU, CUDA };

const char* device_name(Device d);
// "cpu", "cuda" or "auto" (CUDA when available, else CPU); anything else throws.
Device parse_device(const std::string& name);

bool cuda_available();
// Why cuda_available() is false: "built without CUDA", or the runtime's reason.
std::string cuda_unavailable_reason();
// Throws a clear error when CUDA is asked for but cannot be used.
void require_device(Device d);
// Waits for the device's queued work (no-op on the CPU).
void synchronize(Device d);
// Makes GPU (ordinal modulo the GPUs this process sees) the current one; no-op without CUDA or
// without a GPU. Data-parallel ranks on one machine call it with their local rank.
void select_cuda_device(int ordinal);
// "NVIDIA H100 80GB HBM3" or the CPU's model name.
std::string device_description(Device d);

}  // namespace macer
