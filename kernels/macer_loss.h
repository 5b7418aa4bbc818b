// The MACER objective as one fused op on logits (B*k, C) viewed as (B, k, C), with its
// hand-written backward. SPEC.md ("The MACER objective") derives both; terms are named there.
#pragma once
#include <cstdint>

namespace macer::kernels {

struct MacerLossParams {
  int batch, copies, classes;  // B, k, C
  float sigma, lambda, beta, gamma;
};

// What forward leaves for backward, per input b (each array has B entries).
struct MacerSaved {
  float* p_label;  // p[b, y_b] = mean_j softmax(z[b,j])[y_b]
  float* q1;       // largest entry of q[b] = mean_j softmax(beta z[b,j])
  float* q2;       // second largest
  int32_t* c1;     // its class (ties: lower class index first)
  int32_t* c2;
  float* active;   // 1 when c1 == y_b, xi_b finite and xi_b <= gamma, else 0
};

// forward:  loss[0] = (CL + lambda RL) / B;  cl[b] = -log(p[b,y_b] + 1e-10);
//           rl[b] = active_b * sigma/2 * (gamma - xi_b);  fills `saved`.
//           Nothing non-finite leaves it: an input whose xi is not finite is inactive.
// backward: dlogits += dloss[0] * dL/dz, the CL and RL terms of SPEC.md.
#define MACER_LOSS_API                                                                       \
  void macer_loss_forward(const MacerLossParams& p, const float* logits, const int32_t* labels, \
                          float* loss, float* cl, float* rl, const MacerSaved& saved);        \
  void macer_loss_backward(const MacerLossParams& p, const float* logits,                     \
                           const int32_t* labels, const MacerSaved& saved, const float* dloss, \
                           float* dlogits);

namespace cpu { MACER_LOSS_API }
namespace cuda { MACER_LOSS_API }
#undef MACER_LOSS_API

}  // namespace macer::kernels
