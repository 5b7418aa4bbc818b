// Module: named parameters, buffers and children, with the state names of the reference
// PyTorch models ("layer1.0.bn1.running_mean"); train()/eval(); parameters kept contiguous.
#pragma once
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/autograd.h"

namespace macer::layers {

class Module {
 public:
  virtual ~Module() = default;
  virtual Var forward(const Var& x) = 0;

  void train(bool on = true);
  void eval() { train(false); }
  bool training() const { return training_; }

  // Depth-first in registration order, names joined with '.' as in a PyTorch state_dict.
  std::vector<std::pair<std::string, Var>> named_parameters() const;
  std::vector<std::pair<std::string, Tensor*>> named_buffers();
  int64_t parameter_count() const;

  // Moves parameters and buffers to `device` and lays all parameters (and their gradients)
  // out in one contiguous buffer each, so that zeroing gradients and the SGD step are one
  // kernel each. Call on the root module; constructors leave it on the CPU, flattened.
  void to(Device device);
  Device device() const { return device_; }
  Tensor& flat_parameters() { return flat_values_; }
  Tensor& flat_gradients() { return flat_grads_; }
  void zero_grad();

 protected:
  Var register_parameter(const std::string& name, Tensor value);
  Tensor& register_buffer(const std::string& name, Tensor value);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> child) {
    children_.emplace_back(name, child);
    return child;
  }

 private:
  void collect_parameters(const std::string& prefix, std::vector<std::pair<std::string, Var>>& out) const;
  void collect_buffers(const std::string& prefix, std::vector<std::pair<std::string, Tensor*>>& out);

  std::vector<std::pair<std::string, Var>> params_;
  std::deque<std::pair<std::string, Tensor>> buffers_;  // deque: references stay valid
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
  Device device_ = Device::CPU;
  Tensor flat_values_, flat_grads_;  // (P) each, set on the root by to()
};

// The attack pass of adversarial training (SmoothAdv, SmoothMix; SPEC.md, "Training methods
// beyond MACER"): for its scope the model runs in eval mode (batch norm uses and never updates its
// running statistics) and its parameters do not require gradients, so a backward computes the
// gradient with respect to the input alone (no weight or bias gradients: their kernels are skipped
// and the parameters' gradient buffers stay as they were). Restores both on exit.
class InputGradientMode {
 public:
  explicit InputGradientMode(Module& model);
  ~InputGradientMode();
  InputGradientMode(const InputGradientMode&) = delete;
  InputGradientMode& operator=(const InputGradientMode&) = delete;

 private:
  Module& model_;
  bool was_training_;
  std::vector<std::pair<Var, bool>> params_;  // each parameter and its requires_grad before
};

}  // namespace macer::layers
