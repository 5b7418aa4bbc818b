// CPU fused SGD step (kernels/sgd.h), torch.optim.SGD with dampening 0; each parameter is
// updated alone, so the split over threads changes no bit.
#include "kernels/sgd.h"

#include "kernels/cpu/parallel.h"

namespace macer::kernels::cpu {

void sgd_step(const SgdParams& p, int64_t n, float* param, const float* grad, float* momentum_buf) {
  parallel_for(n, 4, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      float d = grad[i] + p.weight_decay * param[i];
      float buf = p.momentum * momentum_buf[i] + d;
      momentum_buf[i] = buf;
      float step = p.nesterov ? d + p.momentum * buf : buf;
      param[i] -= p.lr * step;
    }
  });
}

}  // namespace macer::kernels::cpu
