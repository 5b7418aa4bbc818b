// The bench harness: named cases, timing (CUDA events on the GPU, a steady clock on the CPU)
// after a warm-up, median/min/max over repeats, and the achieved rate next to a measured peak.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "engine/device.h"

namespace macer::bench {

struct Options {
  Device device = Device::CPU;
  int warmup = 3;
  int repeats = 20;
  int batch = 0;  // 0: each case's default for the device
};

// What one case measured: seconds per call, and the work per call for the rate columns.
struct Result {
  std::string name;
  double median_s = 0, min_s = 0, max_s = 0;
  int repeats = 0;
  double flops = 0;        // per call (0: not a compute-bound case)
  double bytes = 0;        // per call (0: not a memory-bound case)
  double items = 0;        // per call, for "items/s" (samples, noisy forward passes)
  std::string item_unit;   // "samples", "fwd"
  std::string note;
};

// A case prepares its inputs, then returns the function to time.
struct Case {
  std::string name;
  std::string description;
  std::function<Result(const Options&)> run;
};

std::vector<Case>& registry();
struct Register {
  Register(std::string name, std::string description, std::function<Result(const Options&)> run);
};

// Times fn: warm-up calls, then `repeats` timed calls, synchronising the device around each.
Result time_it(const std::string& name, const Options& opt, const std::function<void()>& fn);

// Peaks measured by the harness itself: a large device copy (bytes/s) and a large sgemm (FLOP/s).
struct Peaks {
  double bandwidth = 0;  // bytes/s
  double flops = 0;      // FLOP/s (fp32)
};
Peaks measure_peaks(const Options& opt);

}  // namespace macer::bench
