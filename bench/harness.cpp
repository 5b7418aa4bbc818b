// Timing and statistics for bench cases, and the measured peaks the rates are compared with.
#include "bench/harness.h"

#include <algorithm>
#include <chrono>

#include "engine/dispatch.h"
#include "engine/tensor.h"
#include "kernels/linear.h"
#ifdef MACER_HAVE_CUDA
#include "kernels/cuda/context.h"
#endif

namespace macer::bench {

std::vector<Case>& registry() {
  static std::vector<Case> cases;
  return cases;
}

Register::Register(std::string name, std::string description, std::function<Result(const Options&)> run) {
  registry().push_back({std::move(name), std::move(description), std::move(run)});
}

Result time_it(const std::string& name, const Options& opt, const std::function<void()>& fn) {
  for (int i = 0; i < opt.warmup; ++i) fn();
  synchronize(opt.device);
  std::vector<double> times;
#ifdef MACER_HAVE_CUDA
  if (opt.device == Device::CUDA) {
    cudaEvent_t start, stop;
    MACER_CUDA_CHECK(cudaEventCreate(&start));
    MACER_CUDA_CHECK(cudaEventCreate(&stop));
    for (int i = 0; i < opt.repeats; ++i) {
      MACER_CUDA_CHECK(cudaEventRecord(start, kernels::cuda::stream()));
      fn();
      MACER_CUDA_CHECK(cudaEventRecord(stop, kernels::cuda::stream()));
      MACER_CUDA_CHECK(cudaEventSynchronize(stop));
      float ms = 0;
      MACER_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
      times.push_back(ms * 1e-3);
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
  }
#endif
  if (opt.device == Device::CPU) {
    for (int i = 0; i < opt.repeats; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      fn();
      times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  }
  std::sort(times.begin(), times.end());
  Result r;
  r.name = name;
  r.repeats = int(times.size());
  if (!times.empty()) {
    size_t n = times.size();
    r.median_s = n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
    r.min_s = times.front();
    r.max_s = times.back();
  }
  return r;
}

Peaks measure_peaks(const Options& opt) {
  Peaks p;
  Options o = opt;
  o.repeats = std::max(5, opt.repeats / 2);
  // Bandwidth: copy a large buffer (read + write).
  int64_t n = opt.device == Device::CUDA ? (int64_t(1) << 28) : (int64_t(1) << 25);  // 1 GiB / 128 MiB
  Tensor a = Tensor::zeros({n}, opt.device), b = Tensor::zeros({n}, opt.device);
  Result copy = time_it("peak copy", o, [&] { b.copy_from(a); });
  p.bandwidth = 2.0 * double(n) * 4.0 / copy.median_s;
  // FLOP rate: a square sgemm through the linear kernel (y = x W^T).
  int m = opt.device == Device::CUDA ? 8192 : 1024;
  Tensor x = Tensor::zeros({m, m}, opt.device), w = Tensor::zeros({m, m}, opt.device),
         y = Tensor::zeros({m, m}, opt.device);
  kernels::LinearShape s{m, m, m};
  Result gemm = time_it("peak sgemm", o, [&] {
    MACER_DISPATCH(opt.device, linear_forward, s, x.data(), w.data(), nullptr, y.data());
  });
  p.flops = 2.0 * double(m) * m * m / gemm.median_s;
  return p;
}

}  // namespace macer::bench
