// The process's compute precision (kernels/precision.h): chosen once by a program (--precision,
// run.precision) and read by the ops, which put it into each convolution's and linear's shape.
#pragma once
#include <string>

#include "engine/device.h"
#include "kernels/precision.h"

namespace macer {

using kernels::Precision;

// "fp32" | "bf16"; anything else throws naming `what` (the flag or key) and the choices.
Precision parse_precision(const std::string& name, const std::string& what);

// Process-wide, like PyTorch's autocast state but not per thread (certification's and the
// kernels' worker threads see the same); FP32 until set.
void set_compute_precision(Precision p);
Precision compute_precision();

// Activations between oneDNN convolutions in channels-last order (Tensor's MemoryFormat) on the
// CPU: a convolution whose shape runs on oneDNN (kernels::cpu::conv2d_prefers_channels_last)
// writes (N,H,W,C), the batch norms, ReLUs and residual adds after it keep that order, and an
// op that needs (N,C,H,W) (pooling, flatten) reorders first, so no reorder runs around each
// convolution. On by default; results equal the (N,C,H,W) path's to float rounding. Process-wide.
void set_channels_last(bool on);
bool channels_last();

// In bf16 precision, the activations between those convolutions stored as bfloat16 (Tensor's
// DType::BF16, channels-last, as PyTorch's autocast leaves a convolution's output): the
// convolution writes bf16 and the batch norms, ReLUs and residual adds read and write bf16
// (computing in float32), so every element-wise pass moves half the bytes and no cast runs before
// the next convolution; an op that needs float32 converts first; gradients stay float32. On by
// default (bf16 precision and channels-last only); off: those activations are float32. Process-wide.
void set_bf16_activations(bool on);
bool bf16_activations();  // the setting, whatever the precision

// Sets one of the process-wide settings above for a scope and restores the previous value
// (tests): Get and Set are its pair of functions.
template <class T, T (*Get)(), void (*Set)(T)>
class SettingGuard {
 public:
  explicit SettingGuard(T value) : prev_(Get()) { Set(value); }
  ~SettingGuard() { Set(prev_); }
  SettingGuard(const SettingGuard&) = delete;
  SettingGuard& operator=(const SettingGuard&) = delete;

 private:
  T prev_;
};
using PrecisionGuard = SettingGuard<Precision, compute_precision, set_compute_precision>;
using ChannelsLastGuard = SettingGuard<bool, channels_last, set_channels_last>;
using Bf16ActivationsGuard = SettingGuard<bool, bf16_activations, set_bf16_activations>;

// Throws when `device` cannot compute in `p` (bf16 on CUDA: not built yet); on the CPU prints
// once to stderr when bf16 runs emulated (no avx512_bf16/AMX, or a build without oneDNN).
void check_precision(Device device, Precision p);
// True when the CPU has bf16 dot products (avx512_bf16 or amx_bf16) and the build has oneDNN.
bool cpu_bf16_native();

}  // namespace macer
