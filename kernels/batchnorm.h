// 2-d batch normalisation over (N, H*W) per channel: training mode with batch statistics
// and running-average updates (PyTorch's definition), eval mode with the running statistics.
#pragma once
#include <cstdint>

namespace macer::kernels {

struct BatchNormShape {
  int n, c, hw;  // x viewed as (N, C, H*W)
  float eps = 1e-5f;
  float momentum = 0.1f;
  bool relu = false;  // CPU forwards only: y = max(BN(x), 0) in the same pass (CUDA: always false)
  // x, y, dy, dx stored (N, H*W, C) (engine/tensor.h's ChannelsLast): the CPU only.
  bool channels_last = false;
  // backward writes dx (=) instead of adding to it (+=): the CPU only.
  bool dx_overwrite = false;
};

// forward_train: mean_c, var_c (biased) over N*HW; y = (x - mean) * invstd * gamma + beta;
//   save_mean (C) = mean, save_invstd (C) = 1/sqrt(var + eps);
//   running_mean = (1-m) running_mean + m mean;
//   running_var  = (1-m) running_var  + m var * M/(M-1)   (unbiased, M = N*HW)
// forward_eval:  y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta
// backward (training mode), with xhat = (x - mean) * invstd:
//   dbeta  += sum dy;  dgamma += sum dy * xhat;
//   dx     += gamma * invstd / M * (M dy - sum dy - xhat * sum dy*xhat)   (= with dx_overwrite)
#define MACER_BATCHNORM_API                                                                  \
  void batchnorm_forward_train(const BatchNormShape& s, const float* x, const float* gamma, \
                               const float* beta, float* running_mean, float* running_var,  \
                               float* y, float* save_mean, float* save_invstd);             \
  void batchnorm_forward_eval(const BatchNormShape& s, const float* x, const float* gamma,  \
                              const float* beta, const float* running_mean,                 \
                              const float* running_var, float* y);                          \
  void batchnorm_backward(const BatchNormShape& s, const float* dy, const float* x,         \
                          const float* gamma, const float* save_mean,                       \
                          const float* save_invstd, float* dx, float* dgamma, float* dbeta);    \
  void batchnorm_backward_eval_data(const BatchNormShape& s, const float* dy, const float* y,        \
                                    const float* gamma, const float* running_var, float* dx);

namespace cpu { MACER_BATCHNORM_API }
namespace cuda { MACER_BATCHNORM_API }
#undef MACER_BATCHNORM_API

namespace cpu {
// Backward of y = relu(BN(x)) in one kernel (the CPU half of ops::batch_norm with relu; on the
// GPU the op runs relu_backward, then batchnorm_backward): the BN backward above applied to
// g = dy where y > 0, else 0. y is the fused forward's output.
void batchnorm_relu_backward(const BatchNormShape& s, const float* dy, const float* y, const float* x,
                             const float* gamma, const float* save_mean, const float* save_invstd, float* dx,
                             float* dgamma, float* dbeta);

// The four passes on bf16 activations (uint16_t bfloat16 bits, channels-last only; the CPU's bf16
// precision stores activations so, engine/precision.h): x and y bf16, statistics, dy and dx
// float32; each value computed in float32 from the bf16 inputs and rounded once when stored.
// backward: batchnorm_backward, or batchnorm_relu_backward when s.relu (the forward's fused ReLU).
// Throws (macer::Error) when !s.channels_last.
void batchnorm_forward_train(const BatchNormShape& s, const uint16_t* x, const float* gamma, const float* beta,
                             float* running_mean, float* running_var, uint16_t* y, float* save_mean,
                             float* save_invstd);
void batchnorm_forward_eval(const BatchNormShape& s, const uint16_t* x, const float* gamma, const float* beta,
                            const float* running_mean, const float* running_var, uint16_t* y);
void batchnorm_backward(const BatchNormShape& s, const float* dy, const uint16_t* y, const uint16_t* x,
                        const float* gamma, const float* save_mean, const float* save_invstd, float* dx,
                        float* dgamma, float* dbeta);
void batchnorm_backward_eval_data(const BatchNormShape& s, const float* dy, const uint16_t* y, const float* gamma,
                                  const float* running_var, float* dx);
}  // namespace cpu

}  // namespace macer::kernels
