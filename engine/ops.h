// Differentiable ops on Vars: each checks shapes and devices, runs the forward kernel of its
// device, and records the hand-written backward (kernels/*.h) on the autograd tape.
#pragma once
#include <vector>

#include "engine/autograd.h"

namespace macer::ops {

struct Conv2dParams {
  int stride = 1;
  int pad = 0;
};
struct Pool2dParams {
  int kernel = 2;
  int stride = 2;
  int pad = 0;
};
struct BatchNormParams {
  bool training = true;
  float momentum = 0.1f;
  float eps = 1e-5f;
  bool relu = false;  // then a ReLU on the output: relu(batch_norm(x)), fused on the CPU
};

// Shapes are logical (N,C,H,W); each op takes its inputs in either memory format (engine/tensor.h)
// and says below which format its output has.

// x (N,C,H,W), weight (K,C,R,S), bias (K) or undefined -> (N,K,P,Q); in compute_precision()
// (engine/precision.h), as linear: bf16 operands, float32 accumulation and float32 tensors.
// The output is channels-last on the CPU when channels_last() is on and oneDNN takes the shape,
// and then bf16 in bf16 precision with bf16_activations() on (x may be bf16 there too; elsewhere a
// bf16 x is converted to float32 first).
Var conv2d(const Var& x, const Var& weight, const Var& bias, Conv2dParams p);
// x (N,C,H,W) or (N,C); running statistics are updated in training mode. Output in x's format
// and type (bf16 activations stay bf16: the CPU computes in float32 and rounds once).
Var batch_norm(const Var& x, const Var& gamma, const Var& beta, Tensor& running_mean,
               Tensor& running_var, BatchNormParams p);
// Outputs in the format of x (relu) or a (add, add_relu; b is reordered to it when it differs),
// bf16 when the inputs are (relu, add_relu; add and mixed types compute in float32).
Var relu(const Var& x);
Var add(const Var& a, const Var& b);
Var add_relu(const Var& a, const Var& b);  // relu(add(a, b)) as one op (fused on the CPU)
// (N,C,H,W) outputs (a channels-last input is reordered first).
Var max_pool2d(const Var& x, Pool2dParams p);
Var avg_pool2d(const Var& x, Pool2dParams p);
// max_pool2d(conv2d(x, weight, bias, cp), pp) -> (N,K,P',Q') (N,C,H,W), then relu() with `relu`:
// one op on the CPU where the convolution unfolds (kernels/conv2d.h conv2d_max_pool2d_fused:
// LeNet's convolutions), so the convolution's output is never stored; elsewhere the ops one by one.
Var conv2d_max_pool2d(const Var& x, const Var& weight, const Var& bias, Conv2dParams cp, Pool2dParams pp,
                      bool relu = false);
// x (N,C,H,W) in `format` (PyTorch's x.contiguous(memory_format=...)): x itself when it is in it
// already, else a reordered copy (CPU only) whose gradient is reordered back. A bf16 activation
// (channels-last only) comes out float32 when reordered to Contiguous.
Var contiguous(const Var& x, MemoryFormat format = MemoryFormat::Contiguous);
// x as float32 in its format (PyTorch's x.float()): x itself when it is, else a converted copy of a
// bf16 activation (engine/precision.h bf16_activations); the gradient (float32) passes unchanged.
Var to_float32(const Var& x);
// x (N,IN), weight (OUT,IN), bias (OUT) or undefined -> (N,OUT); in compute_precision()
Var linear(const Var& x, const Var& weight, const Var& bias);
// x (N,C,...) -> (x - mean[c]) / std[c] per channel: the input normalization of a model.
// mean and std have C entries (C <= 8), every std > 0; the gradient is dy / std[c].
Var normalize(const Var& x, const std::vector<float>& mean, const std::vector<float>& std);
// (N, ...) -> (N, prod(...)) in (N,C,H,W) order, sharing storage when x is (N,C,H,W) already;
// the gradient flows back unchanged.
Var flatten(const Var& x);
// Mean softmax cross-entropy of logits (R,C) against labels (R/group) int32 -> scalar.
Var cross_entropy(const Var& logits, const Tensor& labels, int group = 1);

// Not differentiable: noisy copies of the data (see kernels/noisy_copies.h).
// first_input: the global number of x's first row when x is one rank's slice of a batch.
Tensor noisy_copies(const Tensor& x, int copies, float sigma, uint64_t seed, uint64_t counter,
                    int64_t first_input = 0);

}  // namespace macer::ops
