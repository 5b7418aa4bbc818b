// The tape: a per-thread list of backward closures, replayed in reverse by backward().
#include "engine/autograd.h"

#include <vector>

namespace macer {

namespace {
thread_local bool g_grad_enabled = true;
thread_local std::vector<std::function<void()>> g_tape;
}  // namespace

Var::Var(Tensor value, bool requires_grad) : impl_(std::make_shared<VarImpl>()) {
  impl_->value = std::move(value);
  impl_->requires_grad = requires_grad;
}

namespace {
// A bf16 activation's gradient is float32 (engine/precision.h bf16_activations).
DType gradient_dtype(DType value) { return value == DType::BF16 ? DType::F32 : value; }
}  // namespace

Tensor& Var::grad_buffer() const {
  if (!impl_->grad.defined()) {
    impl_->grad = Tensor::empty_like(impl_->value, gradient_dtype(impl_->value.dtype()));
    impl_->grad.zero_();
  }
  return impl_->grad;
}

Tensor& Var::grad_buffer_to_write(bool* fresh) const {
  if (fresh) *fresh = !impl_->grad.defined();
  if (fresh && *fresh) impl_->grad = Tensor::empty_like(impl_->value, gradient_dtype(impl_->value.dtype()));
  return grad_buffer();
}

bool grad_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

bool any_requires_grad(std::initializer_list<const Var*> inputs) {
  if (!g_grad_enabled) return false;
  for (const Var* v : inputs)
    if (v && v->requires_grad()) return true;
  return false;
}

void record(std::function<void()> backward_fn) { g_tape.push_back(std::move(backward_fn)); }

void backward(const Var& root) {
  MACER_CHECK(root.defined() && root.value().numel() == 1,
              "backward() needs a scalar, got shape " << shape_string(root.shape()));
  MACER_CHECK(root.requires_grad(), "backward() from a value that does not require a gradient");
  backward(root, Tensor::full(root.shape(), 1.0f, root.device()));
}

void backward(const Var& out, const Tensor& seed) {
  MACER_CHECK(out.defined() && out.requires_grad(), "backward() from a value that does not require a gradient");
  MACER_CHECK(seed.shape() == out.shape() && seed.device() == out.device() && seed.dtype() == DType::F32,
              "backward(): seed " << shape_string(seed.shape()) << " on " << device_name(seed.device())
                                  << " for an output " << shape_string(out.shape()) << " on "
                                  << device_name(out.device()));
  Tensor& g = out.grad_buffer();
  g.copy_from(seed.memory_format() == g.memory_format() ? seed : seed.to_memory_format(g.memory_format()));
  // Move the tape out first: closures release their Vars as they are destroyed.
  std::vector<std::function<void()>> tape;
  tape.swap(g_tape);
  for (auto it = tape.rbegin(); it != tape.rend(); ++it) (*it)();
}

void clear_tape() { g_tape.clear(); }
size_t tape_size() { return g_tape.size(); }

}  // namespace macer
