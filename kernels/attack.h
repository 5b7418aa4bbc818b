// The per-image arithmetic of the attacks (SmoothAdv's PGD, SmoothMix's adversary and mixing):
// summing the k copies' input gradients, normalised steps, clips and projections; CPU and CUDA.
#pragma once
#include <cstdint>

#include "kernels/philox.h"

namespace macer::kernels {

// B images of D = C*H*W values each; the gradients of their noisy copies are (B*k, D), copy j of
// image b at row b*k + j. first_input: the global number of image 0 (data-parallel ranks hold
// slices of a batch), so that the random draws below depend on an image's place in the global batch.
struct AttackShape {
  int batch, copies;
  int64_t features;
  int64_t first_input = 0;
};

// sum_copies:   g (B, D) = sum_j dnoisy[b*k + j]   (overwritten): the input x' + n_j of every copy
//               is x' plus a constant, so d/dx' adds the k copies' gradients.
// pgd_step:     one step of SmoothAdv's L2 PGD (Salman et al. 2019, attacks.py PGD_L2; SPEC.md),
//               per image b: u = g / ||g||_2, or where ||g||_2 = 0 a random unit direction r / ||r||,
//               r[e] = philox::normals4(seed, counter, i / 4).v[i % 4] at global element
//               i = (first_input + b) * D + e; then
//               delta += step * u;  delta = clip(x + delta, 0, 1) - x;
//               delta *= min(1, eps / ||delta||_2);  x_adv = x + delta   (delta updated in place)
// smoothmix_step: x_next = clip(x_prev + alpha g / (||g||_2 + 1e-8), 0, 1)   (Jeong et al. 2021,
//               SmoothMix_PGD.attack; no eps ball). x_next may alias x_prev.
// project_ball: y = clip(x0 + (x - x0) min(1, max_norm / ||x - x0||_2), 0, 1)   (SmoothMix's clean
//               point with mix_step 1: the one-step point kept within alpha w_e of x, `_project`).
// mix:          lam[b] = U(0, 1/2] from Philox(seed, counter) at global image first_input + b
//               (philox4x32_10 of block (first_input + b), word 0);
//               y = (1 - lam[b]) x0 + lam[b] x1   (SmoothMix's mixed input, `_mixup_data`).
#define MACER_ATTACK_API                                                                           \
  void attack_sum_copies(const AttackShape& s, const float* dnoisy, float* g);                    \
  void pgd_step(const AttackShape& s, const float* x, const float* g, float step, float eps,      \
                uint64_t seed, uint64_t counter, float* delta, float* x_adv);                     \
  void smoothmix_step(const AttackShape& s, const float* x_prev, const float* g, float alpha,     \
                      float* x_next);                                                             \
  void project_ball(const AttackShape& s, const float* x0, const float* x, float max_norm,        \
                    float* y);                                                                    \
  void mix_inputs(const AttackShape& s, const float* x0, const float* x1, uint64_t seed,          \
                  uint64_t counter, float* lam, float* y);

// SmoothMix's lam of global image `image`: U(0, 1/2], the same on the CPU and the GPU.
MACER_HD float mix_lambda(uint64_t seed, uint64_t counter, uint64_t image) {
  philox::U32x4 ctr = {{uint32_t(image), uint32_t(image >> 32), uint32_t(counter), uint32_t(counter >> 32)}};
  philox::U32x4 bits = philox::philox4x32_10(ctr, uint32_t(seed), uint32_t(seed >> 32));
  return 0.5f * philox::uniform(bits.v[0]);
}

// The random direction's element i (global, see pgd_step).
MACER_HD float attack_normal(uint64_t seed, uint64_t counter, uint64_t i) {
  return philox::normals4(seed, counter, i / 4).v[i % 4];
}

namespace cpu { MACER_ATTACK_API }
namespace cuda { MACER_ATTACK_API }
#undef MACER_ATTACK_API

}  // namespace macer::kernels
