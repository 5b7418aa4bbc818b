// parallel_for for the CPU kernels (kernels/cpu/*.cpp): a static split of [0, n) into one
// contiguous block per OpenMP thread; serial when OpenMP is off or the work is small.
#pragma once

#include <algorithm>
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace macer::kernels::cpu {

// The threads parallel_for may use (OMP_NUM_THREADS, else the cores); 1 without OpenMP.
inline int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// Below this many units of work (about one float touched each) a thread costs more than it saves.
constexpr int64_t kParallelGrain = 32 * 1024;

// Calls fn(begin, end) on disjoint blocks covering [0, n); each item costs about `cost` units.
// Blocks depend only on n and the thread count; fn must not throw. Kernels that reduce do so
// per item inside fn and combine the items afterwards in item order, so their results do not
// depend on the number of threads.
template <class Fn>
void parallel_for(int64_t n, int64_t cost, Fn&& fn) {
  if (n <= 0) return;
#ifdef _OPENMP
  const int64_t work = n * std::max<int64_t>(cost, 1);
  const int64_t threads = std::min<int64_t>({int64_t(omp_get_max_threads()), n, work / kParallelGrain});
  if (threads > 1 && !omp_in_parallel()) {
#pragma omp parallel num_threads(int(threads))
    {
      const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
      const int64_t begin = n * t / nt, end = n * (t + 1) / nt;
      if (begin < end) fn(begin, end);
    }
    return;
  }
#endif
  fn(int64_t(0), n);
}

}  // namespace macer::kernels::cpu
