// Bench cases for single kernels: noisy copies, every distinct convolution shape of ResNet-110
// (forward, backward data, backward filter), batch norm, the MACER objective, the fused SGD step.
#include <random>

#include "bench/harness.h"
#include "engine/dispatch.h"
#include "engine/ops.h"
#include "engine/precision.h"
#include "kernels/batchnorm.h"
#include "kernels/conv2d.h"
#include "kernels/macer_loss.h"
#include "kernels/sgd.h"
#include "layers/registry.h"

namespace macer::bench {

namespace {

Tensor random_tensor(const Shape& shape, Device device, uint64_t seed) {
  Tensor t = Tensor::empty(shape);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = dist(rng);
  return device == Device::CPU ? t : t.to(device);
}

int batch_or(const Options& o, int gpu, int cpu) { return o.batch > 0 ? o.batch : (o.device == Device::CUDA ? gpu : cpu); }

Register noisy("noisy_copies", "x (B,3,32,32) -> (B*16,3,32,32) + sigma N(0,1), B = 64 (GPU) / 16 (CPU)",
               [](const Options& o) {
                 int b = batch_or(o, 64, 16), k = 16;
                 Tensor x = random_tensor({b, 3, 32, 32}, o.device, 1);
                 uint64_t counter = 0;
                 Result r = time_it("noisy_copies", o, [&] { ops::noisy_copies(x, k, 0.25f, 7, counter++); });
                 r.bytes = double(b) * 3 * 32 * 32 * 4 * (1 + k);
                 return r;
               });

// The distinct convolutions of the Cifar ResNet-110 (32x32 input): stem, three stage widths,
// the two stride-2 3x3 convs and the two 1x1 projections.
// LeNet's two (28x28 MNIST input) at the batch of its MACER step, B*k = 1024, on both devices.
// MACER_CPU_CONV=reference in the environment times the CPU reference instead of the fast path.
struct ConvCase {
  const char* name;
  int c, k, hw, r, stride, pad;
  bool lenet = false;
};
const ConvCase kResNetConvs[] = {
    {"conv_stem_3to16_32", 3, 16, 32, 3, 1, 1},   {"conv_16to16_32", 16, 16, 32, 3, 1, 1},
    {"conv_16to32_s2", 16, 32, 32, 3, 2, 1},      {"conv_32to32_16", 32, 32, 16, 3, 1, 1},
    {"conv_32to64_s2", 32, 64, 16, 3, 2, 1},      {"conv_64to64_8", 64, 64, 8, 3, 1, 1},
    {"conv_1x1_16to32_s2", 16, 32, 32, 1, 2, 0},  {"conv_1x1_32to64_s2", 32, 64, 16, 1, 2, 0},
    {"conv_lenet_1to20_28", 1, 20, 28, 5, 1, 0, true}, {"conv_lenet_20to50_12", 20, 50, 12, 5, 1, 0, true},
};

Result run_conv(const ConvCase& cc, int pass, const Options& o) {
  int n = cc.lenet ? batch_or(o, 1024, 1024) : batch_or(o, 1024, 32);
  kernels::Conv2dShape s{n, cc.c, cc.hw, cc.hw, cc.k, cc.r, cc.r, cc.stride, cc.pad};
  s.precision = compute_precision();  // --precision
  Tensor x = random_tensor({n, cc.c, cc.hw, cc.hw}, o.device, 2);
  Tensor w = random_tensor({cc.k, cc.c, cc.r, cc.r}, o.device, 3);
  Tensor y = random_tensor({n, cc.k, s.out_h(), s.out_w()}, o.device, 4);
  Tensor dx = Tensor::zeros(x.shape(), o.device), dw = Tensor::zeros(w.shape(), o.device);
  static const char* kPass[] = {"fwd", "bwd_data", "bwd_filter"};
  std::string name = std::string(cc.name) + "." + kPass[pass];
  Result r = time_it(name, o, [&] {
    if (pass == 0) MACER_DISPATCH(o.device, conv2d_forward, s, x.data(), w.data(), nullptr, y.data());
    if (pass == 1) MACER_DISPATCH(o.device, conv2d_backward_data, s, y.data(), w.data(), dx.data());
    if (pass == 2) MACER_DISPATCH(o.device, conv2d_backward_weight, s, x.data(), y.data(), dw.data());
  });
  r.flops = 2.0 * n * cc.k * cc.c * cc.r * cc.r * s.out_h() * s.out_w();
  r.note = "N=" + std::to_string(n);
  return r;
}

struct RegisterConvs {
  RegisterConvs() {
    for (const ConvCase& cc : kResNetConvs)
      for (int pass = 0; pass < 3; ++pass) {
        static const char* kPass[] = {"fwd", "bwd_data", "bwd_filter"};
        std::string name = std::string(cc.name) + "." + kPass[pass];
        registry().push_back({name, cc.lenet ? "LeNet convolution at batch 1024" : "ResNet-110 convolution at batch 1024 (GPU) / 32 (CPU)",
                              [cc, pass](const Options& o) { return run_conv(cc, pass, o); }});
      }
  }
} register_convs;

Register batchnorm("batchnorm.fwd_bwd", "training-mode batch norm forward + backward, (N,16,32,32), N = 1024 / 32",
                   [](const Options& o) {
                     int n = batch_or(o, 1024, 32), c = 16, hw = 32 * 32;
                     kernels::BatchNormShape s{n, c, hw};
                     Tensor x = random_tensor({n, c, 32, 32}, o.device, 5), y = Tensor::zeros(x.shape(), o.device);
                     Tensor dx = Tensor::zeros(x.shape(), o.device);
                     Tensor g = Tensor::full({c}, 1.0f, o.device), b = Tensor::zeros({c}, o.device);
                     Tensor rm = Tensor::zeros({c}, o.device), rv = Tensor::full({c}, 1.0f, o.device);
                     Tensor sm = Tensor::zeros({c}, o.device), si = Tensor::zeros({c}, o.device);
                     Tensor dg = Tensor::zeros({c}, o.device), db = Tensor::zeros({c}, o.device);
                     Result r = time_it("batchnorm.fwd_bwd", o, [&] {
                       MACER_DISPATCH(o.device, batchnorm_forward_train, s, x.data(), g.data(), b.data(), rm.data(),
                                      rv.data(), y.data(), sm.data(), si.data());
                       MACER_DISPATCH(o.device, batchnorm_backward, s, y.data(), x.data(), g.data(), sm.data(),
                                      si.data(), dx.data(), dg.data(), db.data());
                     });
                     // Minimum traffic: forward reads x twice, writes y; backward reads dy, x twice, rmw dx.
                     r.bytes = double(n) * c * hw * 4 * 8;
                     return r;
                   });

Register macer_loss("macer_loss.fwd_bwd", "fused MACER objective forward + backward, B = 64, k = 16, C = 10",
                    [](const Options& o) {
                      int b = 64, k = 16, c = 10;
                      kernels::MacerLossParams p{b, k, c, 0.25f, 12.0f, 16.0f, 8.0f};
                      Tensor logits = random_tensor({b * k, c}, o.device, 6);
                      Tensor dlogits = Tensor::zeros(logits.shape(), o.device);
                      std::vector<int32_t> host(b);
                      for (int i = 0; i < b; ++i) host[i] = i % c;
                      Tensor labels = Tensor::from_ints(host, {b}).to(o.device);
                      Tensor loss = Tensor::zeros({1}, o.device), dloss = Tensor::full({1}, 1.0f, o.device);
                      Tensor cl = Tensor::zeros({b}, o.device), rl = Tensor::zeros({b}, o.device);
                      Tensor f[4], ints[2];
                      for (auto& t : f) t = Tensor::zeros({b}, o.device);
                      for (auto& t : ints) t = Tensor::zeros({b}, o.device, DType::I32);
                      kernels::MacerSaved saved{f[0].data(), f[1].data(), f[2].data(), ints[0].data<int32_t>(),
                                                ints[1].data<int32_t>(), f[3].data()};
                      Result r = time_it("macer_loss.fwd_bwd", o, [&] {
                        MACER_DISPATCH(o.device, macer_loss_forward, p, logits.data(), labels.data<int32_t>(),
                                       loss.data(), cl.data(), rl.data(), saved);
                        MACER_DISPATCH(o.device, macer_loss_backward, p, logits.data(), labels.data<int32_t>(), saved,
                                       dloss.data(), dlogits.data());
                      });
                      r.bytes = double(b) * k * c * 4 * 3;  // logits read twice, dlogits read-modify-write
                      return r;
                    });

Register sgd("sgd_step", "fused SGD (momentum, weight decay) over the 1.73M parameters of ResNet-110",
             [](const Options& o) {
               int64_t n = layers::make_model("resnet110", {})->parameter_count();
               Tensor p = random_tensor({n}, o.device, 8), g = random_tensor({n}, o.device, 9);
               Tensor m = Tensor::zeros({n}, o.device);
               kernels::SgdParams sp;
               Result r = time_it("sgd_step", o, [&] {
                 MACER_DISPATCH(o.device, sgd_step, sp, n, p.data(), g.data(), m.data());
               });
               r.bytes = double(n) * 4 * 5;  // read p, g, m; write p, m
               return r;
             });

}  // namespace
}  // namespace macer::bench
