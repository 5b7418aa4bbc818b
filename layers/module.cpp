// Module bookkeeping: recursive names, train/eval, device moves and the contiguous layout of
// parameters and gradients (each Var's value and grad become views into the flat buffers).
#include "layers/module.h"

namespace macer::layers {

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::collect_parameters(const std::string& prefix,
                                std::vector<std::pair<std::string, Var>>& out) const {
  for (const auto& [name, var] : params_) out.emplace_back(prefix + name, var);
  for (const auto& [name, child] : children_) child->collect_parameters(prefix + name + ".", out);
}

void Module::collect_buffers(const std::string& prefix,
                             std::vector<std::pair<std::string, Tensor*>>& out) {
  for (auto& [name, t] : buffers_) out.emplace_back(prefix + name, &t);
  for (auto& [name, child] : children_) child->collect_buffers(prefix + name + ".", out);
}

std::vector<std::pair<std::string, Var>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Var>> out;
  collect_parameters("", out);
  return out;
}

std::vector<std::pair<std::string, Tensor*>> Module::named_buffers() {
  std::vector<std::pair<std::string, Tensor*>> out;
  collect_buffers("", out);
  return out;
}

int64_t Module::parameter_count() const {
  int64_t n = 0;
  for (const auto& [name, var] : named_parameters()) n += var.value().numel();
  return n;
}

Var Module::register_parameter(const std::string& name, Tensor value) {
  Var v(std::move(value), /*requires_grad=*/true);
  params_.emplace_back(name, v);
  return v;
}

Tensor& Module::register_buffer(const std::string& name, Tensor value) {
  buffers_.emplace_back(name, std::move(value));
  return buffers_.back().second;
}

void Module::to(Device device) {
  require_device(device);
  auto params = named_parameters();
  int64_t total = 0;
  for (const auto& [name, var] : params) total += var.value().numel();
  Tensor values = Tensor::empty({total}, device);
  Tensor grads = Tensor::zeros({total}, device);
  int64_t offset = 0;
  for (auto& [name, var] : params) {
    int64_t n = var.value().numel();
    Shape shape = var.value().shape();
    Tensor slot = values.narrow_rows(offset, n).view(shape);
    slot.copy_from(var.value());
    var.value() = slot;
    var.grad() = grads.narrow_rows(offset, n).view(shape);
    offset += n;
  }
  for (auto& [name, buf] : named_buffers()) *buf = buf->to(device);
  flat_values_ = values;
  flat_grads_ = grads;
  device_ = device;
  std::vector<Module*> stack;
  for (auto& [name, child] : children_) stack.push_back(child.get());
  while (!stack.empty()) {  // children learn their device (their flat buffers stay empty)
    Module* m = stack.back();
    stack.pop_back();
    m->device_ = device;
    for (auto& [name, child] : m->children_) stack.push_back(child.get());
  }
}

void Module::zero_grad() {
  MACER_CHECK(flat_grads_.defined(), "zero_grad() on a module that was not laid out by to()");
  flat_grads_.zero_();
}

InputGradientMode::InputGradientMode(Module& model) : model_(model), was_training_(model.training()) {
  for (auto& [name, var] : model.named_parameters()) {
    params_.emplace_back(var, var.requires_grad());
    var.set_requires_grad(false);
  }
  model.eval();
}

InputGradientMode::~InputGradientMode() {
  for (auto& [var, on] : params_) var.set_requires_grad(on);
  model_.train(was_training_);
}

}  // namespace macer::layers
