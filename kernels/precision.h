// The arithmetic precision of the matrix products (convolutions, linears): the one enum that the
// ops put in each kernel's shape and that the CPU (oneDNN) and, later, the CUDA kernels read.
#pragma once
#include <cstdint>
#include <cstring>

namespace macer::kernels {

// FP32: everything in float32. BF16 (mixed precision, as PyTorch's autocast): the operands of
// convolutions and matrix products rounded to bfloat16 (8 exponent, 7 mantissa bits), products
// accumulated in float32, results float32 except where the CPU stores activations in bf16
// (engine/precision.h bf16_activations); weights, gradients and everything else stay float32.
enum class Precision { FP32, BF16 };

inline const char* precision_name(Precision p) { return p == Precision::BF16 ? "bf16" : "fp32"; }

// float -> bfloat16 bits, rounding to nearest even (NaN kept a quiet NaN), as oneDNN's and
// PyTorch's conversions do; and back (exact).
inline uint16_t float_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  // a select, not a branch: loops of conversions vectorize
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16, quiet_nan = (u >> 16) | 0x40u;
  return uint16_t((u & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded);
}
inline float bf16_to_float(uint16_t b) {
  const uint32_t u = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
// Eight at once (float_to_bf16 on each), as one vector operation where the target has vectors
// (GCC's vector extensions; kernels/cpu/isa.h compiles callers for AVX-512 too).
inline void float_to_bf16_8(const float* in, uint16_t* out) {
#if defined(__GNUC__) && !defined(__clang__)
  typedef uint32_t u32x8 __attribute__((vector_size(32)));
  typedef uint16_t u16x8 __attribute__((vector_size(16)));
  u32x8 u;
  std::memcpy(&u, in, sizeof u);
  const u32x8 rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16, quiet_nan = (u >> 16) | 0x40u;
  const u32x8 bits = (u & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded;
  const u16x8 h = __builtin_convertvector(bits, u16x8);
  std::memcpy(out, &h, sizeof h);
#else
  for (int i = 0; i < 8; ++i) out[i] = float_to_bf16(in[i]);
#endif
}
// An element of float32 or bf16 data as float32 (exact), and a float32 stored into it (bf16:
// rounded to nearest even): the element-wise kernels' one code for both activation types.
inline float load(const float* p, int64_t i) { return p[i]; }
inline float load(const uint16_t* p, int64_t i) { return bf16_to_float(p[i]); }
inline void store(float* p, int64_t i, float v) { p[i] = v; }
inline void store(uint16_t* p, int64_t i, float v) { p[i] = float_to_bf16(v); }
// The float nearest to f that bfloat16 holds.
inline float round_to_bf16(float f) { return bf16_to_float(float_to_bf16(f)); }

}  // namespace macer::kernels
