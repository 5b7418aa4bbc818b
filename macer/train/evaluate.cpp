// macer/train/evaluate.h: one pass over the test split with one noisy copy per image.
#include "macer/train/evaluate.h"

#include "data/loader.h"
#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/ops.h"
#include "kernels/smoothing.h"
#include "macer/noise_streams.h"

namespace macer {

NoisyTestResult evaluate_noisy(layers::Module& model, const data::Dataset& set, Device device, float sigma,
                               uint64_t seed, int batch) {
  data::LoaderOptions lopt;
  lopt.batch = batch;
  lopt.seed = seed;
  data::Loader loader(set, lopt);
  model.eval();
  NoGradGuard no_grad;
  Tensor correct = Tensor::zeros({1}, device);
  double loss_sum = 0;
  int64_t images = 0;
  uint64_t batch_number = 0;
  data::Batch b;
  while (loader.next(b)) {
    Tensor x = b.images.to(device), labels = b.labels.to(device);
    const int64_t n = x.dim(0);
    Tensor noisy = ops::noisy_copies(x, 1, sigma, seed, noise::kTest | batch_number++);
    Var logits = model.forward(Var(noisy));
    loss_sum += double(ops::cross_entropy(logits, labels).value().item()) * double(n);
    MACER_DISPATCH(device, vote_correct, kernels::LogitsShape{int(n), int(logits.shape()[1])}, 1,
                   logits.value().data(), labels.data<int32_t>(), correct.data());
    images += n;
  }
  model.train();
  NoisyTestResult r;
  if (images > 0) r.loss = loss_sum / double(images), r.accuracy = double(correct.item()) / double(images);
  return r;
}

}  // namespace macer
