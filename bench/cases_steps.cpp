// Whole-step bench cases: one training step per method (macer/train/step.h: attack, noisy copies,
// forward, fused objective, backward, fused SGD) and certification throughput (noisy forward passes + counts) for
// LeNet and ResNet-110; sizes equal bench/torch_reference.py's SIZES.
#include "bench/harness.h"
#include "engine/dispatch.h"
#include "engine/ops.h"
#include "kernels/smoothing.h"
#include "layers/folded.h"
#include "layers/registry.h"
#include "macer/objectives/objectives.h"
#include "macer/train/optimizer.h"
#include "macer/train/step.h"

namespace macer::bench {

namespace {

struct Sizes {
  int batch, copies;
};
// GPU: the paper's B = 64, k = 16 and Cohen's batch of 1000; CPU: small enough for 2 cores.
Sizes sizes_for(const std::string& name, const Options& o) {
  bool gpu = o.device == Device::CUDA;
  Sizes s{64, 16};
  if (name.find("resnet") != std::string::npos && name.rfind("step.", 0) == 0 && !gpu) s = {8, 4};
  if (name == "certify.lenet") s = {1000, 1};
  if (name.rfind("certify.resnet110", 0) == 0) s = {gpu ? 1000 : 32, 1};
  if (o.batch > 0) s.batch = o.batch;
  return s;
}

layers::ModelOptions model_options(const std::string& model) {
  layers::ModelOptions m;
  if (model == "lenet") m.channels = 1, m.height = m.width = 28;
  return m;
}

Tensor uniform_images(int n, const layers::ModelOptions& m, Device device) {
  Tensor t = Tensor::empty({n, m.channels, m.height, m.width});
  uint64_t state = 12345;
  for (int64_t i = 0; i < t.numel(); ++i) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    t.data()[i] = float(state >> 40) / float(1 << 24);
  }
  return t.to(device);
}

// One training step as macer_train runs it (macer/train/step.h) for a method: an objective and
// its attack (SmoothAdv: PGD with T = 10 as in the MACER paper's "Salman" rows, eps 1.0;
// Consistency: lambda 10, eta 0.5; SmoothMix: T = 4, alpha 0.5, eta 5, w_e 1).
Result method_step(const std::string& case_name, const std::string& model_name, const std::string& objective_name,
                   const std::string& attack, const Options& o) {
  Sizes s = sizes_for(case_name, o);
  layers::ModelOptions m = model_options(model_name);
  auto model = layers::make_model(model_name, m);
  model->to(o.device);
  model->train();
  Sgd sgd(*model, kernels::SgdParams{});
  Tensor images = uniform_images(s.batch, m, o.device);
  std::vector<int32_t> host(s.batch);
  for (int i = 0; i < s.batch; ++i) host[i] = i % m.classes;
  Tensor labels = Tensor::from_ints(host, {s.batch}).to(o.device);
  StepSettings settings;
  settings.objective = objective_name;
  settings.copies = s.copies;
  settings.sigma = 0.25f;
  settings.hyper = ObjectiveHyper{0.25f, 12.0f, 16.0f, 8.0f, 0.5f};
  if (objective_name == "consistency") settings.hyper.lambda = 10.0f;  // Jeong & Shin's Cifar-10 sigma 0.5
  if (objective_name == "smoothmix") settings.hyper.eta = 5.0f;
  settings.attack = attack;
  settings.attack_seed = &soft_smoothed_seed;
  settings.eps = 1.0f;
  settings.steps = attack == "smoothmix" ? 4 : 10;  // SmoothMix's T = 4, SmoothAdv's T = 10
  settings.alpha = 0.5f;
  settings.lr = 0.01f;
  uint64_t step = 0;
  Result r = time_it(case_name, o, [&] {
    train_step(*model, sgd, settings, images, labels, step++, 0, Tensor());
  });
  r.items = double(s.batch) * s.copies;
  r.item_unit = "samples";
  r.note = "B=" + std::to_string(s.batch) + " k=" + std::to_string(s.copies) +
           (attack == "none" ? "" : " T=" + std::to_string(settings.steps));
  return r;
}

Result train_step(const std::string& case_name, const std::string& model_name, const Options& o) {
  return method_step(case_name, model_name, "macer", "none", o);
}

// `folded`: the batch-norm-folded inference form macer_certify runs by default (layers/folded.h).
Result certify_throughput(const std::string& case_name, const std::string& model_name, const Options& o,
                          bool folded = false) {
  Sizes s = sizes_for(case_name, o);
  layers::ModelOptions m = model_options(model_name);
  auto model = layers::make_model(model_name, m);
  model->eval();
  if (folded) {
    model = layers::fold_batchnorm(*model, m.normalize, o.device);
  } else {
    model->to(o.device);
  }
  NoGradGuard no_grad;
  Tensor image = uniform_images(1, m, o.device);
  Tensor counts = Tensor::zeros({m.classes}, o.device, DType::I64);
  uint64_t batch_no = 0;
  Result r = time_it(case_name, o, [&] {
    Tensor noisy = ops::noisy_copies(image, s.batch, 0.25f, 0, batch_no++);
    Tensor logits = model->forward(Var(noisy)).value();
    MACER_DISPATCH(o.device, argmax_histogram, kernels::LogitsShape{s.batch, m.classes}, logits.data(),
                   counts.data<int64_t>());
  });
  r.items = s.batch;
  r.item_unit = "fwd";
  r.note = "batch " + std::to_string(s.batch);
  return r;
}

Register step_lenet("step.macer.lenet", "MACER training step, LeNet 28x28, B=64 k=16",
                    [](const Options& o) { return train_step("step.macer.lenet", "lenet", o); });
Register step_resnet20("step.macer.resnet20", "MACER training step, ResNet-20 32x32, B=64 k=16 (CPU: B=8 k=4)",
                       [](const Options& o) { return train_step("step.macer.resnet20", "resnet20", o); });
Register step_resnet("step.macer.resnet110", "MACER training step, ResNet-110 32x32, B=64 k=16 (CPU: B=8 k=4)",
                     [](const Options& o) { return train_step("step.macer.resnet110", "resnet110", o); });
Register step_gaussian_lenet("step.gaussian.lenet", "Gaussian (Cohen) training step, LeNet 28x28, B=64 k=16",
                             [](const Options& o) { return method_step("step.gaussian.lenet", "lenet", "gaussian", "none", o); });
Register step_gaussian_resnet("step.gaussian.resnet110",
                              "Gaussian (Cohen) training step, ResNet-110 32x32, B=64 k=16 (CPU: B=8 k=4)",
                              [](const Options& o) {
                                return method_step("step.gaussian.resnet110", "resnet110", "gaussian", "none", o);
                              });
Register step_smoothadv_lenet("step.smoothadv.lenet",
                              "SmoothAdv training step (PGD T=10 + Gaussian loss), LeNet 28x28, B=64 k=16",
                              [](const Options& o) { return method_step("step.smoothadv.lenet", "lenet", "gaussian", "pgd", o); });
Register step_smoothadv_resnet("step.smoothadv.resnet110",
                               "SmoothAdv training step (PGD T=10 + Gaussian loss), ResNet-110 32x32, B=64 k=16 (CPU: B=8 k=4)",
                               [](const Options& o) {
                                 return method_step("step.smoothadv.resnet110", "resnet110", "gaussian", "pgd", o);
                               });
Register step_consistency_lenet("step.consistency.lenet", "Consistency training step, LeNet 28x28, B=64 k=16",
                                [](const Options& o) {
                                  return method_step("step.consistency.lenet", "lenet", "consistency", "none", o);
                                });
Register step_consistency_resnet("step.consistency.resnet110",
                                 "Consistency training step, ResNet-110 32x32, B=64 k=16 (CPU: B=8 k=4)",
                                 [](const Options& o) {
                                   return method_step("step.consistency.resnet110", "resnet110", "consistency", "none", o);
                                 });
Register step_smoothmix_lenet("step.smoothmix.lenet", "SmoothMix training step (T=4), LeNet 28x28, B=64 k=16",
                              [](const Options& o) {
                                return method_step("step.smoothmix.lenet", "lenet", "smoothmix", "smoothmix", o);
                              });
Register step_smoothmix_resnet("step.smoothmix.resnet110",
                               "SmoothMix training step (T=4), ResNet-110 32x32, B=64 k=16 (CPU: B=8 k=4)",
                               [](const Options& o) {
                                 return method_step("step.smoothmix.resnet110", "resnet110", "smoothmix", "smoothmix", o);
                               });
Register cert_lenet("certify.lenet", "certification: noisy forward passes + counts, LeNet, batch 1000",
                    [](const Options& o) { return certify_throughput("certify.lenet", "lenet", o); });
Register cert_resnet("certify.resnet110", "certification: noisy forward passes + counts, ResNet-110, batch 1000 (CPU: 32)",
                     [](const Options& o) { return certify_throughput("certify.resnet110", "resnet110", o); });
Register cert_resnet_folded("certify.resnet110.folded",
                            "certification as macer_certify runs it: ResNet-110 with batch norms folded (layers/folded.h)",
                            [](const Options& o) {
                              return certify_throughput("certify.resnet110.folded", "resnet110", o, true);
                            });

}  // namespace
}  // namespace macer::bench
