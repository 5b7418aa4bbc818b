// Reverse-mode autograd: a Var holds a value and, when it needs one, a gradient. Ops record a
// backward closure on a per-thread tape; backward() from a scalar replays it in reverse.
#pragma once
#include <functional>
#include <memory>

#include "engine/tensor.h"

namespace macer {

struct VarImpl {
  Tensor value;
  Tensor grad;  // allocated (zeros) when a gradient first flows in, or a view set by its owner
  bool requires_grad = false;
};

class Var {
 public:
  Var() = default;
  explicit Var(Tensor value, bool requires_grad = false);

  bool defined() const { return impl_ != nullptr; }
  Tensor& value() const { return impl_->value; }
  Tensor& grad() const { return impl_->grad; }
  bool requires_grad() const { return impl_ && impl_->requires_grad; }
  void set_requires_grad(bool on) { impl_->requires_grad = on; }
  // The gradient buffer, created as zeros of the value's shape and memory format on first use
  // (float32 for a bf16 value: activations may be bf16, their gradients are not). Backward
  // closures accumulate into it.
  Tensor& grad_buffer() const;
  // The gradient buffer for a backward that writes every element of it. With `fresh` non-null
  // and no buffer yet, the buffer is allocated uninitialised and *fresh = true: the caller writes
  // (=) instead of accumulating, which saves the zero fill and a read. Otherwise as grad_buffer(),
  // *fresh = false: the caller accumulates (+=).
  Tensor& grad_buffer_to_write(bool* fresh) const;
  const Shape& shape() const { return impl_->value.shape(); }
  Device device() const { return impl_->value.device(); }

 private:
  std::shared_ptr<VarImpl> impl_;
};

// Gradient recording is on by default; NoGradGuard turns it off in its scope (evaluation).
bool grad_enabled();
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// True when recording is on and some input requires a gradient; ops then mark their output
// as requiring one and call record().
bool any_requires_grad(std::initializer_list<const Var*> inputs);
void record(std::function<void()> backward_fn);

// Seeds d(root)/d(root) = 1 (root must have one element), replays the tape in reverse and
// clears it; gradients accumulate into every Var that requires one.
void backward(const Var& root);
// The same from any output with a given seed gradient d(loss)/d(out) (same shape and device):
// an op whose loss is computed outside the tape (an attack's seed at the logits) starts here.
void backward(const Var& out, const Tensor& seed);
// Drops whatever was recorded (a forward whose backward is not wanted).
void clear_tape();
size_t tape_size();

}  // namespace macer
