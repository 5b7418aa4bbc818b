// The network ops of engine/ops.h: shape and device checks, forward dispatch, and backward
// closures that accumulate into the gradients of the inputs that need them. Convolutions and
// linears compute in the process's precision (engine/precision.h), the other ops in float32.
#include <cstdint>
#include <memory>

#include "engine/dispatch.h"
#include "engine/memory.h"
#include "engine/ops.h"
#include "engine/precision.h"
#include "kernels/batchnorm.h"
#include "kernels/conv2d.h"
#include "kernels/cross_entropy.h"
#include "kernels/elementwise.h"
#include "kernels/linear.h"
#include "kernels/memory_format.h"
#include "kernels/noisy_copies.h"
#include "kernels/normalize.h"
#include "kernels/pool.h"

namespace macer::ops {

namespace {

void check_same_device(const Var& a, const Var& b, const char* op) {
  if (b.defined())
    MACER_CHECK(a.device() == b.device(), op << ": inputs on " << device_name(a.device()) << " and "
                                             << device_name(b.device()));
}

// The output of an op: requires a gradient when any input does (and recording is on).
Var make_output(Tensor value, bool needs_grad) { return Var(std::move(value), needs_grad); }

}  // namespace

Var conv2d(const Var& x, const Var& weight, const Var& bias, Conv2dParams p) {
  const Shape& xs = x.shape();
  const Shape& ws = weight.shape();
  MACER_CHECK(xs.size() == 4 && ws.size() == 4 && xs[1] == ws[1],
              "conv2d: input " << shape_string(xs) << " and weight " << shape_string(ws));
  MACER_CHECK(!bias.defined() || bias.value().numel() == ws[0], "conv2d: bias size");
  check_same_device(x, weight, "conv2d");
  check_same_device(x, bias, "conv2d");
  kernels::Conv2dShape s{int(xs[0]), int(xs[1]), int(xs[2]), int(xs[3]), int(ws[0]), int(ws[2]),
                         int(ws[3]), p.stride, p.pad};
  MACER_CHECK(s.out_h() > 0 && s.out_w() > 0, "conv2d: empty output for input " << shape_string(xs));
  s.precision = compute_precision();
  Device dev = x.device();
  s.x_channels_last = x.value().channels_last();
  s.y_channels_last = dev == Device::CPU && channels_last() && kernels::cpu::conv2d_prefers_channels_last(s);
  // bf16 activations (engine/precision.h): written where oneDNN takes them, read as they are
  s.y_bf16 = dev == Device::CPU && bf16_activations() && kernels::cpu::conv2d_takes_bf16(s);
  s.x_bf16 = x.value().dtype() == DType::BF16;
  if (s.x_bf16 && !s.y_bf16) return conv2d(to_float32(x), weight, bias, p);  // a path for float32
  Tensor y = Tensor::empty({s.n, s.k, s.out_h(), s.out_w()}, dev, s.y_bf16 ? DType::BF16 : DType::F32,
                           s.y_channels_last ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous);
  bool needs = any_requires_grad({&x, &weight, &bias});
  // On the CPU in bf16, the forward's converted x is kept for the weights gradient
  // (kernels/conv2d.h conv2d_kept_bytes): one conversion of x fewer per training step.
  const size_t kept_bytes = dev == Device::CPU && needs && weight.requires_grad()
                                ? kernels::cpu::conv2d_kept_bytes(s, bias.defined())
                                : 0;
  std::shared_ptr<void> kept = kept_bytes ? allocate(kept_bytes, Device::CPU) : nullptr;
  const bool cpu_only = kept || s.x_bf16 || s.y_bf16;  // the CPU's overloads for these
  if (cpu_only)
    kernels::cpu::conv2d_forward(s, x.value().data_ptr(), weight.value().data(),
                                 bias.defined() ? bias.value().data() : nullptr, y.data_ptr(), kept.get());
  else
    MACER_DISPATCH(dev, conv2d_forward, s, x.value().data(), weight.value().data(),
                   bias.defined() ? bias.value().data() : nullptr, y.data());
  Var out = make_output(y, needs);
  if (needs)
    record([=]() {
      if (!out.grad().defined()) return;
      // On the CPU, the first gradient to reach x is written, not added to zeros (engine/autograd.h).
      kernels::Conv2dShape b = s;
      float* dx = x.requires_grad() ? x.grad_buffer_to_write(dev == Device::CPU ? &b.dx_overwrite : nullptr).data()
                                    : nullptr;
      float* dw = weight.requires_grad() ? weight.grad_buffer().data() : nullptr;
      float* db = bias.requires_grad() ? bias.grad_buffer().data() : nullptr;
      if (cpu_only)
        return kernels::cpu::conv2d_backward(b, x.value().data_ptr(), out.grad().data(), weight.value().data(), dx, dw,
                                             db, kept.get());
      MACER_DISPATCH(dev, conv2d_backward, b, x.value().data(), out.grad().data(), weight.value().data(), dx, dw, db);
    });
  return out;
}

Var batch_norm(const Var& x, const Var& gamma, const Var& beta, Tensor& running_mean,
               Tensor& running_var, BatchNormParams p) {
  const Shape& xs = x.shape();
  MACER_CHECK(xs.size() == 4 || xs.size() == 2, "batch_norm: input " << shape_string(xs));
  int64_t c = xs[1];
  MACER_CHECK(gamma.value().numel() == c && beta.value().numel() == c &&
                  running_mean.numel() == c && running_var.numel() == c,
              "batch_norm: " << c << " channels but parameters of other sizes");
  check_same_device(x, gamma, "batch_norm");
  Device dev = x.device();
  if (p.relu && dev != Device::CPU) {  // only the CPU kernels fuse the ReLU: elsewhere the two ops run
    p.relu = false;
    return relu(batch_norm(x, gamma, beta, running_mean, running_var, p));
  }
  kernels::BatchNormShape s{int(xs[0]), int(c), int(xs.size() == 4 ? xs[2] * xs[3] : 1), p.eps,
                            p.momentum};
  s.relu = p.relu;  // the CPU kernels apply the ReLU in their own pass
  s.channels_last = x.value().channels_last();
  const bool bf16 = x.value().dtype() == DType::BF16;  // bf16 activations: the CPU's overloads
  Tensor y = Tensor::empty_like(x.value());
  if (!p.training) {
    if (bf16)
      kernels::cpu::batchnorm_forward_eval(s, x.value().data<uint16_t>(), gamma.value().data(), beta.value().data(),
                                           running_mean.data(), running_var.data(), y.data<uint16_t>());
    else
      MACER_DISPATCH(dev, batchnorm_forward_eval, s, x.value().data(), gamma.value().data(),
                     beta.value().data(), running_mean.data(), running_var.data(), y.data());
    // Eval mode differentiates with respect to the input only (an attack pass: parameters frozen,
    // layers::InputGradientMode); the running statistics are constants and stay untouched.
    MACER_CHECK(!any_requires_grad({&gamma, &beta}),
                "batch_norm: parameter gradients through eval mode are not supported; use train(), "
                "NoGradGuard, or freeze the parameters (layers::InputGradientMode)");
    bool needs = any_requires_grad({&x});
    Var out = make_output(y, needs);
    if (needs) {
      Tensor rv = running_var;  // shares storage: the statistics of this forward
      record([=]() {
        if (!out.grad().defined()) return;
        if (bf16)
          return kernels::cpu::batchnorm_backward_eval_data(s, out.grad().data(), out.value().data<uint16_t>(),
                                                            gamma.value().data(), rv.data(), x.grad_buffer().data());
        MACER_DISPATCH(dev, batchnorm_backward_eval_data, s, out.grad().data(), out.value().data(),
                       gamma.value().data(), rv.data(), x.grad_buffer().data());
      });
    }
    return out;
  }
  MACER_CHECK(int64_t(s.n) * s.hw > 1, "batch_norm: training needs more than one value per channel");
  Tensor save_mean = Tensor::empty({c}, dev);
  Tensor save_invstd = Tensor::empty({c}, dev);
  if (bf16)
    kernels::cpu::batchnorm_forward_train(s, x.value().data<uint16_t>(), gamma.value().data(), beta.value().data(),
                                          running_mean.data(), running_var.data(), y.data<uint16_t>(),
                                          save_mean.data(), save_invstd.data());
  else
    MACER_DISPATCH(dev, batchnorm_forward_train, s, x.value().data(), gamma.value().data(),
                   beta.value().data(), running_mean.data(), running_var.data(), y.data(),
                   save_mean.data(), save_invstd.data());
  bool needs = any_requires_grad({&x, &gamma, &beta});
  Var out = make_output(y, needs);
  if (needs)
    record([=]() {
      if (!out.grad().defined()) return;
      // The kernel computes all three gradients; unwanted ones go to scratch buffers. On the CPU
      // the first gradient to reach x is written, not added to zeros (engine/autograd.h).
      kernels::BatchNormShape b = s;
      const bool cpu = dev == Device::CPU;
      Tensor dx = x.requires_grad() ? x.grad_buffer_to_write(cpu ? &b.dx_overwrite : nullptr)
                                    : (cpu ? Tensor::empty_like(x.value(), DType::F32) : Tensor::zeros_like(x.value()));
      if (!x.requires_grad()) b.dx_overwrite = cpu;
      Tensor dg = gamma.requires_grad() ? gamma.grad_buffer() : Tensor::zeros({c}, dev);
      Tensor db = beta.requires_grad() ? beta.grad_buffer() : Tensor::zeros({c}, dev);
      if (bf16)  // with the ReLU when s.relu
        return kernels::cpu::batchnorm_backward(b, out.grad().data(), out.value().data<uint16_t>(),
                                                x.value().data<uint16_t>(), gamma.value().data(), save_mean.data(),
                                                save_invstd.data(), dx.data(), dg.data(), db.data());
      if (s.relu) {  // g = dy where y > 0, inside the batch norm backward (CPU)
        kernels::cpu::batchnorm_relu_backward(b, out.grad().data(), out.value().data(), x.value().data(),
                                              gamma.value().data(), save_mean.data(), save_invstd.data(),
                                              dx.data(), dg.data(), db.data());
        return;
      }
      MACER_DISPATCH(dev, batchnorm_backward, b, out.grad().data(), x.value().data(), gamma.value().data(),
                     save_mean.data(), save_invstd.data(), dx.data(), dg.data(), db.data());
    });
  return out;
}

Var relu(const Var& x) {
  Device dev = x.device();
  int64_t n = x.value().numel();
  const bool bf16 = x.value().dtype() == DType::BF16;  // bf16 activations: the CPU's overloads
  Tensor y = Tensor::empty_like(x.value());
  if (bf16)
    kernels::cpu::relu_forward(n, x.value().data<uint16_t>(), y.data<uint16_t>());
  else
    MACER_DISPATCH(dev, relu_forward, n, x.value().data(), y.data());
  bool needs = any_requires_grad({&x});
  Var out = make_output(y, needs);
  if (needs)
    record([=]() {
      if (!out.grad().defined()) return;
      if (dev == Device::CPU) {  // the first gradient to reach x is written (engine/autograd.h)
        bool fresh = false;
        float* dx = x.grad_buffer_to_write(&fresh).data();
        if (bf16) return kernels::cpu::relu_backward(n, out.value().data<uint16_t>(), out.grad().data(), dx, fresh);
        return kernels::cpu::relu_backward(n, out.value().data(), out.grad().data(), dx, fresh);
      }
      MACER_DISPATCH(dev, relu_backward, n, out.value().data(), out.grad().data(),
                     x.grad_buffer().data());
    });
  return out;
}

Var add(const Var& a, const Var& b) {
  MACER_CHECK(a.shape() == b.shape(),
              "add: shapes " << shape_string(a.shape()) << " and " << shape_string(b.shape()));
  check_same_device(a, b, "add");
  if (b.value().memory_format() != a.value().memory_format()) return add(a, contiguous(b, a.value().memory_format()));
  if (a.value().dtype() == DType::BF16 || b.value().dtype() == DType::BF16) return add(to_float32(a), to_float32(b));
  Device dev = a.device();
  int64_t n = a.value().numel();
  Tensor y = Tensor::empty_like(a.value());
  MACER_DISPATCH(dev, add_forward, n, a.value().data(), b.value().data(), y.data());
  bool needs = any_requires_grad({&a, &b});
  Var out = make_output(y, needs);
  if (needs)
    record([=]() {
      if (!out.grad().defined()) return;
      if (a.requires_grad()) MACER_DISPATCH(dev, accumulate, n, out.grad().data(), a.grad_buffer().data());
      if (b.requires_grad()) MACER_DISPATCH(dev, accumulate, n, out.grad().data(), b.grad_buffer().data());
    });
  return out;
}

Var add_relu(const Var& a, const Var& b) {
  MACER_CHECK(a.shape() == b.shape(),
              "add_relu: shapes " << shape_string(a.shape()) << " and " << shape_string(b.shape()));
  check_same_device(a, b, "add_relu");
  Device dev = a.device();
  if (dev != Device::CPU) return relu(add(a, b));  // the GPU runs the two ops
  if (b.value().memory_format() != a.value().memory_format())
    return add_relu(a, contiguous(b, a.value().memory_format()));
  if (a.value().dtype() != b.value().dtype()) return add_relu(to_float32(a), to_float32(b));
  const bool bf16 = a.value().dtype() == DType::BF16;  // both bf16 activations
  int64_t n = a.value().numel();
  Tensor y = Tensor::empty_like(a.value());
  if (bf16)
    kernels::cpu::add_relu_forward(n, a.value().data<uint16_t>(), b.value().data<uint16_t>(), y.data<uint16_t>());
  else
    kernels::cpu::add_relu_forward(n, a.value().data(), b.value().data(), y.data());
  bool needs = any_requires_grad({&a, &b});
  Var out = make_output(y, needs);
  if (needs)
    record([=]() {
      if (!out.grad().defined()) return;
      // The first gradient to reach a or b is written, not added to zeros (engine/autograd.h);
      // a is asked first, so for add_relu(x, x) the kernel writes da before it adds db.
      bool fresh_a = false, fresh_b = false;
      float* da = a.requires_grad() ? a.grad_buffer_to_write(&fresh_a).data() : nullptr;
      float* db = b.requires_grad() ? b.grad_buffer_to_write(&fresh_b).data() : nullptr;
      if (bf16)
        return kernels::cpu::add_relu_backward(n, out.value().data<uint16_t>(), out.grad().data(), da, db, fresh_a,
                                               fresh_b);
      kernels::cpu::add_relu_backward(n, out.value().data(), out.grad().data(), da, db, fresh_a, fresh_b);
    });
  return out;
}

namespace {
kernels::Pool2dShape pool_shape(const Var& x, Pool2dParams p, const char* op) {
  const Shape& xs = x.shape();
  MACER_CHECK(xs.size() == 4, op << ": input " << shape_string(xs));
  kernels::Pool2dShape s{int(xs[0]), int(xs[1]), int(xs[2]), int(xs[3]), p.kernel, p.stride, p.pad};
  MACER_CHECK(p.kernel > 0 && p.stride > 0 && 2 * p.pad <= p.kernel && s.out_h() > 0 && s.out_w() > 0,
              op << ": window " << p.kernel << " stride " << p.stride << " pad " << p.pad
                 << " does not fit input " << shape_string(xs));
  return s;
}
}  // namespace

Var max_pool2d(const Var& x, Pool2dParams p) {
  if (x.value().channels_last()) return max_pool2d(contiguous(x), p);
  kernels::Pool2dShape s = pool_shape(x, p, "max_pool2d");
  Device dev = x.device();
  Shape ys = {s.n, s.c, s.out_h(), s.out_w()};
  Tensor y = Tensor::empty(ys, dev);
  Tensor argmax = Tensor::empty(ys, dev, DType::I32);
  MACER_DISPATCH(dev, maxpool_forward, s, x.value().data(), y.data(), argmax.data<int32_t>());
  bool needs = any_requires_grad({&x});
  Var out = make_output(y, needs);
  if (needs)
    record([=]() {
      if (!out.grad().defined()) return;
      if (dev == Device::CPU) {  // the first gradient to reach x is written (engine/autograd.h)
        bool fresh = false;
        float* dx = x.grad_buffer_to_write(&fresh).data();
        return kernels::cpu::maxpool_backward(s, out.grad().data(), argmax.data<int32_t>(), dx, fresh);
      }
      MACER_DISPATCH(dev, maxpool_backward, s, out.grad().data(), argmax.data<int32_t>(),
                     x.grad_buffer().data());
    });
  return out;
}

Var conv2d_max_pool2d(const Var& x, const Var& weight, const Var& bias, Conv2dParams cp, Pool2dParams pp, bool relu) {
  const auto unfused = [&] {  // the ops one by one: they check the shapes and say what is wrong
    Var y = max_pool2d(conv2d(x, weight, bias, cp), pp);
    return relu ? ops::relu(y) : y;
  };
  const Shape& xs = x.shape();
  const Shape& ws = weight.shape();
  if (x.device() != Device::CPU || xs.size() != 4 || ws.size() != 4 || xs[1] != ws[1] || x.value().channels_last() ||
      (bias.defined() && bias.value().numel() != ws[0]) || weight.device() != Device::CPU ||
      (bias.defined() && bias.device() != Device::CPU))
    return unfused();
  kernels::Conv2dShape cs{int(xs[0]), int(xs[1]), int(xs[2]), int(xs[3]), int(ws[0]), int(ws[2]),
                          int(ws[3]), cp.stride, cp.pad};
  cs.precision = compute_precision();
  const kernels::Pool2dShape ps{cs.n, cs.k, cs.out_h(), cs.out_w(), pp.kernel, pp.stride, pp.pad};
  if (cs.out_h() <= 0 || cs.out_w() <= 0 || !(pp.kernel > 0 && pp.stride > 0 && 2 * pp.pad <= pp.kernel) ||
      ps.out_h() <= 0 || ps.out_w() <= 0 || !kernels::cpu::conv2d_max_pool2d_fused(cs, ps))
    return unfused();
  Shape ys = {ps.n, ps.c, ps.out_h(), ps.out_w()};
  bool needs = any_requires_grad({&x, &weight, &bias});
  Tensor y = Tensor::empty(ys), argmax = needs ? Tensor::empty(ys, Device::CPU, DType::I32) : Tensor();
  kernels::cpu::conv2d_max_pool2d_forward(cs, ps, x.value().data(), weight.value().data(),
                                          bias.defined() ? bias.value().data() : nullptr, y.data(),
                                          needs ? argmax.data<int32_t>() : nullptr, relu);
  Var out = make_output(y, needs);
  if (needs)
    record([=]() {
      if (!out.grad().defined()) return;
      kernels::Conv2dShape b = cs;  // the first gradient to reach x is written (engine/autograd.h)
      float* dx = x.requires_grad() ? x.grad_buffer_to_write(&b.dx_overwrite).data() : nullptr;
      kernels::cpu::conv2d_max_pool2d_backward(b, ps, x.value().data(), out.grad().data(), argmax.data<int32_t>(),
                                               weight.value().data(), dx,
                                               weight.requires_grad() ? weight.grad_buffer().data() : nullptr,
                                               bias.requires_grad() ? bias.grad_buffer().data() : nullptr);
    });
  return out;
}

Var avg_pool2d(const Var& x, Pool2dParams p) {
  if (x.value().channels_last()) return avg_pool2d(contiguous(x), p);
  kernels::Pool2dShape s = pool_shape(x, p, "avg_pool2d");
  Device dev = x.device();
  Tensor y = Tensor::empty({s.n, s.c, s.out_h(), s.out_w()}, dev);
  MACER_DISPATCH(dev, avgpool_forward, s, x.value().data(), y.data());
  bool needs = any_requires_grad({&x});
  Var out = make_output(y, needs);
  if (needs)
    record([=]() {
      if (!out.grad().defined()) return;
      MACER_DISPATCH(dev, avgpool_backward, s, out.grad().data(), x.grad_buffer().data());
    });
  return out;
}

Var to_float32(const Var& x) {
  if (x.value().dtype() != DType::BF16) return x;
  Tensor y = x.value().to_float32();
  bool needs = any_requires_grad({&x});
  Var out = make_output(y, needs);
  if (needs)
    record([=]() {
      if (!out.grad().defined()) return;  // the gradients of both are float32 (engine/autograd.h)
      kernels::cpu::accumulate(out.value().numel(), out.grad().data(), x.grad_buffer().data());
    });
  return out;
}

Var contiguous(const Var& x, MemoryFormat format) {
  if (x.value().memory_format() == format) return x;
  const Shape& xs = x.shape();
  Tensor y = x.value().to_memory_format(format);  // CPU only: throws elsewhere
  bool needs = any_requires_grad({&x});
  Var out = make_output(y, needs);
  if (needs)
    record([=]() {
      if (!out.grad().defined()) return;
      // dx += dy reordered back to x's format
      if (format == MemoryFormat::ChannelsLast)
        kernels::cpu::to_contiguous(xs[0], xs[1], xs[2] * xs[3], out.grad().data(), x.grad_buffer().data(), true);
      else
        kernels::cpu::to_channels_last(xs[0], xs[1], xs[2] * xs[3], out.grad().data(), x.grad_buffer().data(), true);
    });
  return out;
}

Var linear(const Var& x, const Var& weight, const Var& bias) {
  const Shape& xs = x.shape();
  const Shape& ws = weight.shape();
  MACER_CHECK(xs.size() == 2 && ws.size() == 2 && xs[1] == ws[1],
              "linear: input " << shape_string(xs) << " and weight " << shape_string(ws));
  MACER_CHECK(!bias.defined() || bias.value().numel() == ws[0], "linear: bias size");
  check_same_device(x, weight, "linear");
  kernels::LinearShape s{int(xs[0]), int(xs[1]), int(ws[0])};
  s.precision = compute_precision();
  Device dev = x.device();
  Tensor y = Tensor::empty({s.n, s.out}, dev);
  MACER_DISPATCH(dev, linear_forward, s, x.value().data(), weight.value().data(),
                 bias.defined() ? bias.value().data() : nullptr, y.data());
  bool needs = any_requires_grad({&x, &weight, &bias});
  Var out = make_output(y, needs);
  if (needs)
    record([=]() {
      if (!out.grad().defined()) return;
      const float* dy = out.grad().data();
      if (x.requires_grad())
        MACER_DISPATCH(dev, linear_backward_data, s, dy, weight.value().data(), x.grad_buffer().data());
      if (weight.requires_grad())
        MACER_DISPATCH(dev, linear_backward_weight, s, x.value().data(), dy, weight.grad_buffer().data());
      if (bias.requires_grad())
        MACER_DISPATCH(dev, linear_backward_bias, s, dy, bias.grad_buffer().data());
    });
  return out;
}

Var normalize(const Var& x, const std::vector<float>& mean, const std::vector<float>& std) {
  if (x.value().channels_last()) return normalize(contiguous(x), mean, std);
  const Shape& xs = x.shape();
  MACER_CHECK(xs.size() >= 2 && xs[1] == int64_t(mean.size()) && mean.size() == std.size() &&
                  mean.size() <= size_t(kernels::kMaxNormalizeChannels),
              "normalize: input " << shape_string(xs) << " with " << mean.size() << " means and " << std.size()
                                  << " standard deviations (at most " << kernels::kMaxNormalizeChannels
                                  << " channels)");
  kernels::NormalizeShape s;
  s.n = xs[0];
  s.c = int(xs[1]);
  s.hw = s.n * s.c == 0 ? 0 : x.value().numel() / (s.n * s.c);
  for (int c = 0; c < s.c; ++c) {
    MACER_CHECK(std[size_t(c)] > 0.0f, "normalize: standard deviation " << std[size_t(c)] << " of channel " << c);
    s.mean[c] = mean[size_t(c)], s.std[c] = std[size_t(c)];
  }
  Device dev = x.device();
  Tensor y = Tensor::empty(xs, dev);
  MACER_DISPATCH(dev, normalize_forward, s, x.value().data(), y.data());
  bool needs = any_requires_grad({&x});
  Var out = make_output(y, needs);
  if (needs)
    record([=]() {
      if (!out.grad().defined()) return;
      MACER_DISPATCH(dev, normalize_backward, s, out.grad().data(), x.grad_buffer().data());
    });
  return out;
}

Var flatten(const Var& x) {
  MACER_CHECK(x.shape().size() >= 2, "flatten: input " << shape_string(x.shape()));
  if (x.value().channels_last()) return flatten(contiguous(x));
  int64_t n = x.shape()[0];
  Tensor y = x.value().view({n, x.value().numel() / std::max<int64_t>(n, 1)});
  bool needs = any_requires_grad({&x});
  Var out = make_output(y, needs);
  if (needs)
    record([=]() {
      if (!out.grad().defined()) return;
      Device dev = x.device();
      MACER_DISPATCH(dev, accumulate, x.value().numel(), out.grad().data(), x.grad_buffer().data());
    });
  return out;
}

Var cross_entropy(const Var& logits, const Tensor& labels, int group) {
  const Shape& ls = logits.shape();
  MACER_CHECK(ls.size() == 2 && group >= 1 && ls[0] % group == 0 && labels.numel() == ls[0] / group,
              "cross_entropy: logits " << shape_string(ls) << ", " << labels.numel()
                                       << " labels, group " << group);
  MACER_CHECK(labels.dtype() == DType::I32 && labels.device() == logits.device(),
              "cross_entropy: labels must be int32 on the logits' device");
  kernels::CrossEntropyShape s{int(ls[0]), int(ls[1]), group};
  Device dev = logits.device();
  Tensor loss = Tensor::empty({1}, dev);
  MACER_DISPATCH(dev, cross_entropy_forward, s, logits.value().data(), labels.data<int32_t>(),
                 loss.data());
  bool needs = any_requires_grad({&logits});
  Var out = make_output(loss, needs);
  if (needs)
    record([=]() {
      if (!out.grad().defined()) return;
      MACER_DISPATCH(dev, cross_entropy_backward, s, logits.value().data(), labels.data<int32_t>(),
                     out.grad().data(), logits.grad_buffer().data());
    });
  return out;
}

Tensor noisy_copies(const Tensor& x, int copies, float sigma, uint64_t seed, uint64_t counter, int64_t first_input) {
  MACER_CHECK(x.ndim() >= 1 && copies >= 1 && first_input >= 0,
              "noisy_copies: input " << shape_string(x.shape()) << ", copies " << copies << ", first input "
                                     << first_input);
  MACER_CHECK(!x.channels_last(), "noisy_copies: a channels-last input (reorder it to (N,C,H,W) first)");
  int64_t batch = x.dim(0);
  kernels::NoisyCopiesShape s{int(batch), copies, batch == 0 ? 0 : x.numel() / batch, first_input};
  Shape ys = x.shape();
  ys[0] = batch * copies;
  Tensor y = Tensor::empty(ys, x.device());
  MACER_DISPATCH(x.device(), noisy_copies, s, x.data(), sigma, seed, counter, y.data());
  return y;
}

}  // namespace macer::ops
