// The CPU kernels' bf16 matrix product (kernels/cpu/gemm_bf16.cpp): sgemm's contract with the
// operands multiplied as bfloat16 and summed in float32, for the unfolding convolution in bf16.
#pragma once
#include <cstdint>

namespace macer::kernels::cpu {

// C (M, N) = op(A) op(B) + beta C, row-major, beta 0 or 1, every matrix float32 as in sgemm
// (kernels/cpu/sgemm.h); A and B rounded to bf16 (to nearest even) and the products summed in
// float32 (kernels/precision.h). With oneDNN: its matmul primitive (AMX or avx512_bf16 kernels
// where the CPU has them), one plan per thread, shape and operand type, run single-threaded
// inside an OpenMP parallel region as the unfolding calls it; without: sgemm on rounded copies.
void gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
               int64_t ldb, float beta, float* C, int64_t ldc);
// The same on operands given as bf16 bits (uint16_t, kernels/precision.h): read in place, no cast.
void gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const uint16_t* A, int64_t lda, const uint16_t* B,
               int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace macer::kernels::cpu
