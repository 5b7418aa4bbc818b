// One fused SGD update over all parameters (stored contiguously), as torch.optim.SGD with
// dampening 0: d = g + wd p; buf = m buf + d; d = nesterov ? d + m buf : buf; p -= lr d.
#pragma once
#include <cstdint>

namespace macer::kernels {

struct SgdParams {
  float lr = 0.01f;
  float momentum = 0.9f;
  float weight_decay = 5e-4f;
  bool nesterov = false;
};

// momentum_buf starts at zero, which makes the first step equal PyTorch's (buf = d).
#define MACER_SGD_API \
  void sgd_step(const SgdParams& p, int64_t n, float* param, const float* grad, float* momentum_buf);

namespace cpu { MACER_SGD_API }
namespace cuda { MACER_SGD_API }
#undef MACER_SGD_API

}  // namespace macer::kernels
