// The trainer's startup lines, epoch log line and console line (macer/train/report.h).
#include "macer/train/report.h"

#include <algorithm>
#include <cstdio>
#include <string>

#include "data/sample.h"
#include "kernels/conv2d.h"
#include "kernels/cpu/parallel.h"

namespace macer {

Arithmetic arithmetic_of(Device device, const std::string& precision) {
  Arithmetic a;
  a.threads = kernels::cpu::max_threads();
  a.conv = device == Device::CUDA ? "cudnn" : kernels::cpu::conv2d_path();
  a.precision = precision;  // run.precision
  return a;
}

void print_startup_lines(const TrainConfig& c, const Arithmetic& arith, Device device, const data::Dataset& train,
                         const std::vector<int64_t>& train_indices, const data::Loader& loader, int world,
                         const data::Dataset* test_set, const std::vector<int64_t>& certify_indices,
                         int64_t epochs_done) {
  const auto& o = c.objective;
  // The attack of SmoothAdv (pgd) and SmoothMix, with its radius or step size, steps and warm-up.
  const auto& a = c.attack;
  char attack[160] = "";
  const std::string warm = a.warmup_epochs > 0 ? ", warm-up " + std::to_string(a.warmup_epochs) + " epochs" : "";
  if (a.name == "pgd")
    std::snprintf(attack, sizeof attack, ", SmoothAdv's PGD attack: eps %g, %ld steps%s", a.eps, long(a.steps),
                  warm.c_str());
  else if (a.name == "smoothmix")
    std::snprintf(attack, sizeof attack, ", SmoothMix's attack: %ld steps of size %g, mix step %ld%s", long(a.steps),
                  a.alpha, long(a.mix_step), warm.c_str());
  std::fprintf(stderr, "train %s (%s objective, sigma %g, k %ld%s) on %s: %ld thread%s, conv %s, %s\n",
               c.model.name.c_str(), o.name.c_str(), o.sigma, long(o.k), attack, device_description(device).c_str(),
               long(arith.threads), arith.threads == 1 ? "" : "s", arith.conv.c_str(), arith.precision.c_str());
  std::vector<int64_t> all_images;
  if (train_indices.empty())
    for (int64_t i = 0; i < train.size(); ++i) all_images.push_back(i);
  const std::string classes =
      data::describe_classes(train, data::class_counts(train, train_indices.empty() ? all_images : train_indices));
  if (train_indices.empty())
    std::fprintf(stderr, "data: %s, %ld training images, %s\n", c.data.dataset.c_str(), long(train.size()),
                 classes.c_str());
  else
    std::fprintf(stderr, "data: %s, %ld of its %ld training images (data.train_count: a class-balanced sample "
                         "drawn with run.seed %ld), %s\n",
                 c.data.dataset.c_str(), long(loader.size()), long(train.size()), long(c.run.seed), classes.c_str());
  const int64_t batches = loader.batches_per_epoch(), dropped = loader.size() - batches * c.optim.batch;
  std::fprintf(stderr, "batch: %ld per step in all (optim.batch is the global batch) = %ld per rank x %d rank%s; "
                       "%ld steps per epoch",
               long(c.optim.batch), long(c.optim.batch / world), world, world > 1 ? "s" : "", long(batches));
  if (dropped > 0)  // said only when a partial batch is left out
    std::fprintf(stderr, "; each epoch drops the last %ld of its %ld shuffled images (a partial batch)", long(dropped),
                 long(loader.size()));
  std::fprintf(stderr, "\n");
  if (o.sigma == 0)
    std::fprintf(stderr, "sigma 0: training without noise (plain training): the checkpoint is a plain classifier; "
                         "certify it with macer_certify --sigma S at the noise you mean\n");
  if (c.certify.every > 0) {
    const std::vector<int64_t> counts = data::class_counts(*test_set, certify_indices);
    std::fprintf(stderr, "certify: every %ld epochs, %zu test images from %ld every %ld, %s\n",
                 long(c.certify.every), certify_indices.size(), long(c.certify.start), long(c.certify.skip),
                 data::describe_classes(*test_set, counts).c_str());
    if (std::count(counts.begin(), counts.end(), 0) > 0)
      std::fprintf(stderr, "note: the certified test images miss some classes: spread them with certify.skip%s\n",
                   c.data.dataset == "imagefolder" ? " (an image folder is ordered class by class)" : "");
  }
  // Settings that take effect only past optim.epochs (a short trial of a long config): said, not refused.
  for (int64_t m : c.optim.milestones)
    if (m >= c.optim.epochs)
      std::fprintf(stderr, "note: optim.milestones %ld is not below optim.epochs = %ld: the rate does not drop "
                           "there in this run\n", long(m), long(c.optim.epochs));
  if (o.name == "macer" && o.lambda > 0 && o.lambda_schedule == "deferred" && o.lambda_warmup_epochs >= c.optim.epochs)
    std::fprintf(stderr, "note: objective.lambda_warmup_epochs = %ld covers all optim.epochs = %ld: lambda stays 0 "
                         "in this run\n", long(o.lambda_warmup_epochs), long(c.optim.epochs));
  if (c.certify.every > 0 && c.certify.every > c.optim.epochs)
    std::fprintf(stderr, "note: certify.every = %ld exceeds optim.epochs = %ld: nothing is certified in this run\n",
                 long(c.certify.every), long(c.optim.epochs));
  if (epochs_done > 0)
    std::fprintf(stderr, "resuming at epoch %ld of %ld (after the checkpoint's %ld)\n", long(epochs_done + 1),
                 long(c.optim.epochs), long(epochs_done));
}

nlohmann::ordered_json epoch_log_line(const TrainConfig& c, const EpochStats& st, bool terms, int64_t step, int world,
                                      const Arithmetic& arith) {
  const std::string& method = c.objective.name;
  nlohmann::ordered_json line = {{"epoch", st.epoch}, {"lr", st.lr}};
  if (terms && method != "smoothmix") line["lambda"] = st.lambda;  // MACER's and Consistency's weight
  line["loss"] = st.loss;
  if (terms) line["cl"] = st.cl, line["rl"] = st.rl;
  if (terms && method == "macer") line["active_fraction"] = st.active_fraction;
  line["train_smoothed_accuracy"] = st.train_accuracy;
  line["seconds"] = st.seconds, line["samples_per_second"] = st.samples_per_second;
  line["step"] = step, line["world_size"] = world;
  line["threads"] = arith.threads, line["conv"] = arith.conv, line["precision"] = arith.precision;
  if (c.attack.name == "pgd") line["attack_eps"] = st.attack_eps;
  if (c.attack.name == "smoothmix") line["smoothmix_weight"] = st.attack_weight;
  if (st.test_loss >= 0) line["test_loss"] = st.test_loss, line["test_accuracy"] = st.test_accuracy;
  return line;
}

void print_epoch_line(const std::string& method, const EpochStats& st, bool terms) {
  char macer_terms[96] = "";
  if (terms && method == "macer")
    std::snprintf(macer_terms, sizeof macer_terms, " (cl %.4f rl %.4f lambda %g active %.3f)", st.cl, st.rl,
                  st.lambda, st.active_fraction);
  else if (terms)
    std::snprintf(macer_terms, sizeof macer_terms, method == "smoothmix" ? " (cl %.4f rl %.4f)" : " (cl %.4f rl %.4f lambda %g)",
                  st.cl, st.rl, st.lambda);
  char test_terms[64] = "";
  if (st.test_loss >= 0)
    std::snprintf(test_terms, sizeof test_terms, " | test loss %.4f acc %.4f", st.test_loss, st.test_accuracy);
  std::fprintf(stderr, "epoch %ld: loss %.4f%s smoothed-acc %.4f%s %.1fs %.0f samples/s\n", long(st.epoch), st.loss,
               macer_terms, st.train_accuracy, test_terms, st.seconds, st.samples_per_second);
}

}  // namespace macer
