// The fused SGD step and the per-parameter views of its momentum buffer.
#include "macer/train/optimizer.h"

#include "engine/dispatch.h"

namespace macer {

Sgd::Sgd(layers::Module& model, kernels::SgdParams params) : model_(model), params_(params) {
  MACER_CHECK(model.flat_parameters().defined(), "Sgd needs a module laid out by to()");
  momentum_ = Tensor::zeros(model.flat_parameters().shape(), model.device());
}

void Sgd::step(float lr) {
  kernels::SgdParams p = params_;
  p.lr = lr;
  Tensor& values = model_.flat_parameters();
  MACER_DISPATCH(values.device(), sgd_step, p, values.numel(), values.data(),
                 model_.flat_gradients().data(), momentum_.data());
}

Tensor Sgd::momentum_of(const Var& parameter) const {
  // Parameters are views into the flat buffer: the same offset locates their momentum.
  const float* base = model_.flat_parameters().data();
  int64_t offset = parameter.value().data() - base;
  MACER_CHECK(offset >= 0 && offset + parameter.value().numel() <= momentum_.numel(),
              "parameter is not part of this optimizer's module");
  return momentum_.narrow_rows(offset, parameter.value().numel()).view(parameter.shape());
}

}  // namespace macer
