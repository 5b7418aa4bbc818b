// Test loss and accuracy of the base classifier under Gaussian noise, as Cohen et al.'s train.py
// logs them after every epoch. Part of macer/train/ (the trainer calls it).
#pragma once
#include <cstdint>

#include "data/dataset.h"
#include "engine/device.h"
#include "layers/module.h"

namespace macer {

struct NoisyTestResult {
  double loss = 0;      // mean cross-entropy over the split's images
  double accuracy = 0;  // fraction whose noisy copy is classified correctly
};

// Every image of `set` once with one noisy copy x + N(0, sigma^2) (sigma 0: clean), in eval mode
// without gradients, `batch` images at a time; the model is put back in training mode after.
// Noise: Philox(seed, noise::kTest | batch number), the same draws every epoch (Cohen's test()
// draws afresh; fixed draws make epochs comparable) and apart from every other stream.
NoisyTestResult evaluate_noisy(layers::Module& model, const data::Dataset& set, Device device, float sigma,
                               uint64_t seed, int batch);

}  // namespace macer
