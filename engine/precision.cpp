// engine/precision.h: the process's compute precision and the check of what a device can do.
#include "engine/precision.h"

#include <atomic>
#include <cstdio>

#include "kernels/check.h"

namespace macer {

namespace {
std::atomic<Precision> g_precision{Precision::FP32};
std::atomic<bool> g_channels_last{true};
std::atomic<bool> g_bf16_activations{true};
}

Precision parse_precision(const std::string& name, const std::string& what) {
  if (name == "fp32") return Precision::FP32;
  if (name == "bf16") return Precision::BF16;
  throw Error(what + ": unknown precision '" + name + "' (use fp32 or bf16)");
}

void set_compute_precision(Precision p) { g_precision = p; }
Precision compute_precision() { return g_precision; }
void set_channels_last(bool on) { g_channels_last = on; }
bool channels_last() { return g_channels_last; }
void set_bf16_activations(bool on) { g_bf16_activations = on; }
bool bf16_activations() { return g_bf16_activations; }

bool cpu_bf16_native() {
#if defined(MACER_HAVE_DNNL) && (defined(__x86_64__) || defined(__i386__))
  return __builtin_cpu_supports("avx512bf16");  // every AMX CPU has it too
#else
  return false;
#endif
}

void check_precision(Device device, Precision p) {
  if (p == Precision::FP32) return;
  MACER_CHECK(device == Device::CPU, "precision bf16 runs on the CPU only so far (device "
                                         << device_name(device) << "); use precision fp32 on the GPU");
  static std::atomic<bool> said{false};
  if (!cpu_bf16_native() && !said.exchange(true))
    std::fprintf(stderr,
#ifdef MACER_HAVE_DNNL
                 "note: this CPU has no bf16 instructions (avx512_bf16): bf16 runs emulated and slower than fp32\n"
#else
                 "note: this build has no oneDNN: bf16 runs emulated (operands rounded, fp32 products)\n"
#endif
    );
}

}  // namespace macer
