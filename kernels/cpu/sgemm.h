// The CPU kernels' one matrix product: oneDNN's sgemm when the build has it (sequential inside an
// OpenMP parallel region, so it shares the kernels' thread pool), OpenBLAS's cblas_sgemm otherwise.
#pragma once
#include <cstdint>

#include "kernels/check.h"

#ifdef MACER_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#else
#include <cblas.h>
#endif

namespace macer::kernels::cpu {

// C (M, N) = op(A) op(B) + beta C, row-major.
inline void sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                  int64_t ldb, float beta, float* C, int64_t ldc) {
#ifdef MACER_HAVE_DNNL
  dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
  MACER_CHECK(st == dnnl_success, "oneDNN sgemm failed (status " << int(st) << ")");
#else
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(M), int(N), int(K),
              1.0f, A, int(lda), B, int(ldb), beta, C, int(ldc));
#endif
}

}  // namespace macer::kernels::cpu
