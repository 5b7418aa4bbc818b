// CPU reference of the fused SGD step (kernels/sgd.h), torch.optim.SGD with dampening 0.
#include "kernels/sgd.h"

namespace macer::kernels::cpu {

void sgd_step(const SgdParams& p, int64_t n, float* param, const float* grad, float* momentum_buf) {
  for (int64_t i = 0; i < n; ++i) {
    float d = grad[i] + p.weight_decay * param[i];
    float buf = p.momentum * momentum_buf[i] + d;
    momentum_buf[i] = buf;
    float step = p.nesterov ? d + p.momentum * buf : buf;
    param[i] -= p.lr * step;
  }
}

}  // namespace macer::kernels::cpu
