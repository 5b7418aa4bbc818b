// kernels/cpu/gemm_bf16.h: a oneDNN bf16 matmul plan per shape (kernels/cpu/dnnl_plan.h), or
// sgemm on copies rounded to bf16 in a build without oneDNN.
#include "kernels/cpu/gemm_bf16.h"

#include <algorithm>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

#include "kernels/check.h"
#include "kernels/cpu/dnnl_plan.h"
#include "kernels/cpu/sgemm.h"
#include "kernels/precision.h"

namespace macer::kernels::cpu {

namespace {
// Both overloads: T float (cast on the way in) or uint16_t (bf16 bits, read in place).
template <class T>
void gemm_bf16_t(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb,
                 float beta, float* C, int64_t ldc) {
  constexpr bool given_bf16 = sizeof(T) == 2;
  MACER_CHECK(beta == 0.0f || beta == 1.0f, "gemm_bf16: beta " << beta << " (0 or 1 only)");
  if (M == 0 || N == 0) return;
  if (K == 0) {  // an empty sum: C = 0 or C unchanged, as sgemm
    if (beta == 0.0f)
      for (int64_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, 0.0f);
    return;
  }
#ifdef MACER_HAVE_DNNL
  using dnnl_plan::Plan;
  thread_local std::map<std::tuple<bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool>,
                        std::unique_ptr<Plan>>
      plans;
  const auto key = std::make_tuple(ta, tb, M, N, K, lda, ldb, ldc, beta != 0.0f);
  auto it = plans.find(key);
  if (it == plans.end()) {
    if (plans.size() >= 256) plans.clear();
    // op(A) (M, K) and op(B) (K, N) as strided views of the row-major A and B
    dnnl_plan::guarded("bf16 matrix product", [&] {
      it = plans
               .emplace(key, dnnl_plan::matmul_plan(M, N, K, ta ? dnnl::memory::dims{1, lda} : dnnl::memory::dims{lda, 1},
                                                    tb ? dnnl::memory::dims{1, ldb} : dnnl::memory::dims{ldb, 1}, ldc,
                                                    false, beta != 0.0f ? Plan::Kind::Accumulate : Plan::Kind::Out,
                                                    /*b_as_given=*/true, given_bf16))
               .first;
    });
  }
  dnnl_plan::guarded("bf16 matrix product", [&] { it->second->run({A, B, C}); });
#else
  auto rounded = [](const T* p, int64_t rows, int64_t cols, int64_t ld) {
    std::vector<float> r(size_t(rows * cols));
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        if constexpr (given_bf16)
          r[size_t(i * cols + j)] = bf16_to_float(p[i * ld + j]);
        else
          r[size_t(i * cols + j)] = round_to_bf16(p[i * ld + j]);
      }
    return r;
  };
  const std::vector<float> a = ta ? rounded(A, K, M, lda) : rounded(A, M, K, lda);
  const std::vector<float> b = tb ? rounded(B, N, K, ldb) : rounded(B, K, N, ldb);
  sgemm(ta, tb, M, N, K, a.data(), ta ? M : K, b.data(), tb ? K : N, beta, C, ldc);
#endif
}
}  // namespace

void gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
               int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm_bf16_t(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}

void gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const uint16_t* A, int64_t lda, const uint16_t* B,
               int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm_bf16_t(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace macer::kernels::cpu
