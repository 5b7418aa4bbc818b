// Bench cases for the training methods' fused losses: the attack loss's seed (SmoothAdv, k = 8),
// Consistency and SmoothMix forward + backward (k = 2), at B = 64 images of C = 10 classes.
#include <random>
#include <vector>

#include "bench/harness.h"
#include "engine/dispatch.h"
#include "engine/tensor.h"
#include "kernels/attack_loss.h"
#include "kernels/consistency_loss.h"
#include "kernels/smoothmix_loss.h"

namespace macer::bench {

namespace {

Tensor normal_tensor(const Shape& shape, Device device, uint64_t seed) {
  Tensor t = Tensor::empty(shape);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, 2.0f);
  for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = dist(rng);
  return device == Device::CPU ? t : t.to(device);
}

Tensor labels_for(int b, int c, Device device) {
  std::vector<int32_t> host(b);
  for (int i = 0; i < b; ++i) host[i] = i % c;
  return Tensor::from_ints(host, {b}).to(device);
}

Register attack_seed("attack_loss.seed",
                     "soft smoothed cross-entropy and its seed at the logits, B = 64, k = 8, C = 10",
                     [](const Options& o) {
                       const int b = 64, k = 8, c = 10;
                       const kernels::AttackLossParams p{b, k, c, 1.0f / b};
                       Tensor logits = normal_tensor({b * k, c}, o.device, 21), labels = labels_for(b, c, o.device);
                       Tensor loss = Tensor::zeros({b}, o.device), dlogits = Tensor::zeros(logits.shape(), o.device);
                       Result r = time_it("attack_loss.seed", o, [&] {
                         MACER_DISPATCH(o.device, attack_loss, p, logits.data(), labels.data<int32_t>(), loss.data(),
                                        dlogits.data());
                       });
                       r.bytes = double(b) * k * c * 4 * 3;  // logits read twice, dlogits written
                       return r;
                     });

Register consistency("consistency_loss.fwd_bwd",
                     "fused Consistency objective forward + backward, B = 64, k = 2, C = 10", [](const Options& o) {
                       const int b = 64, k = 2, c = 10;
                       const kernels::ConsistencyLossParams p{b, k, c, 10.0f, 0.5f};
                       Tensor logits = normal_tensor({b * k, c}, o.device, 22), labels = labels_for(b, c, o.device);
                       Tensor loss = Tensor::zeros({1}, o.device), dloss = Tensor::full({1}, 1.0f, o.device);
                       Tensor ce = Tensor::zeros({b}, o.device), reg = Tensor::zeros({b}, o.device);
                       Tensor dlogits = Tensor::zeros(logits.shape(), o.device);
                       Result r = time_it("consistency_loss.fwd_bwd", o, [&] {
                         MACER_DISPATCH(o.device, consistency_loss_forward, p, logits.data(), labels.data<int32_t>(),
                                        loss.data(), ce.data(), reg.data());
                         MACER_DISPATCH(o.device, consistency_loss_backward, p, logits.data(), labels.data<int32_t>(),
                                        dloss.data(), dlogits.data());
                       });
                       r.bytes = double(b) * k * c * 4 * 6;  // logits read 2 + 3 times, dlogits read-modify-write
                       return r;
                     });

Register smoothmix(
    "smoothmix_loss.fwd_bwd", "fused SmoothMix loss forward + backward to both logit sets, B = 64, k = 2, C = 10",
    [](const Options& o) {
      const int b = 64, k = 2, c = 10;
      const kernels::SmoothMixLossParams p{b, k, c, 5.0f};
      Tensor clean = normal_tensor({b * k, c}, o.device, 23), mixed = normal_tensor({b * k, c}, o.device, 24);
      Tensor labels = labels_for(b, c, o.device), lam = Tensor::full({b}, 0.25f, o.device);
      Tensor loss = Tensor::zeros({1}, o.device), dloss = Tensor::full({1}, 1.0f, o.device);
      Tensor ce = Tensor::zeros({b}, o.device), mix = Tensor::zeros({b}, o.device);
      Tensor correct = Tensor::zeros({b}, o.device);
      Tensor dclean = Tensor::zeros(clean.shape(), o.device), dmixed = Tensor::zeros(mixed.shape(), o.device);
      Result r = time_it("smoothmix_loss.fwd_bwd", o, [&] {
        MACER_DISPATCH(o.device, smoothmix_loss_forward, p, clean.data(), mixed.data(), labels.data<int32_t>(),
                       lam.data(), loss.data(), ce.data(), mix.data(), correct.data());
        MACER_DISPATCH(o.device, smoothmix_loss_backward, p, clean.data(), mixed.data(), labels.data<int32_t>(),
                       lam.data(), correct.data(), dloss.data(), dclean.data(), dmixed.data());
      });
      r.bytes = double(b) * k * c * 4 * 10;  // both logit sets read ~3 times, both gradients rmw
      return r;
    });

}  // namespace

}  // namespace macer::bench
