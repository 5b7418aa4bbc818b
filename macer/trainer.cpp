// The training loop. Per step: noisy copies on the device, forward, the fused objective,
// backward, one fused SGD update; scalars for the log stay on the device until printed.
#include "macer/trainer.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "data/dataset.h"
#include "data/loader.h"
#include "engine/dispatch.h"
#include "engine/ops.h"
#include "kernels/smoothing.h"
#include "layers/registry.h"
#include "macer/checkpoint.h"
#include "macer/objectives.h"
#include "macer/optimizer.h"
#include "macer/progress.h"
#include "macer/schedule.h"
#include "macer/certify_dataset.h"

namespace macer {

namespace fs = std::filesystem;

struct Trainer::State {
  TrainConfig cfg;
  Device device;
  std::unique_ptr<data::Dataset> train_set;
  std::unique_ptr<layers::Module> model;
  std::unique_ptr<Sgd> sgd;
  int64_t epoch = 0;  // epochs completed
  int64_t step = 0;   // optimizer steps taken
  std::string log_path, last_checkpoint;
};

namespace {

std::unique_ptr<data::Dataset> open_split(const TrainConfig& cfg, const std::string& split) {
  data::DatasetOptions opt;
  opt.image_size = int(cfg.data.image_size);
  opt.synthetic_size = cfg.data.synthetic_size;
  opt.synthetic_classes = int(cfg.data.synthetic_classes);
  opt.seed = uint64_t(cfg.run.seed);
  return data::open_dataset(cfg.data.dataset, cfg.data.dir, split, opt);
}

// Device-side sums of one epoch's per-step outputs, read back once at the end.
struct EpochSums {
  std::vector<Tensor> losses, cls, rls, actives;
  Tensor correct;  // (1) on the device: vote_correct accumulates here
  int64_t inputs = 0;

  double sum(const std::vector<Tensor>& ts) const {
    double s = 0;
    for (const auto& t : ts)
      for (float v : t.to_vector()) s += v;
    return s;
  }
};

}  // namespace

Trainer::Trainer(const TrainConfig& config) : s_(std::make_unique<State>()) {
  State& s = *s_;
  s.cfg = config;
  s.device = parse_device(config.run.device);
  require_device(s.device);
  s.train_set = open_split(config, "train");
  layers::ModelOptions mopt;
  mopt.channels = s.train_set->channels();
  mopt.height = s.train_set->height();
  mopt.width = s.train_set->width();
  mopt.classes = s.train_set->classes();
  mopt.seed = uint64_t(config.run.seed);
  mopt.normalize = layers::normalization_preset(config.model.normalize);
  MACER_CHECK(!mopt.normalize.enabled() || int(mopt.normalize.mean.size()) == mopt.channels,
              "[model] normalize = \"" << config.model.normalize << "\" has " << mopt.normalize.mean.size()
                                        << " channels, " << config.data.dataset << " images have " << mopt.channels);
  s.model = layers::make_model(config.model.name, mopt);
  s.model->to(s.device);
  kernels::SgdParams sp;
  sp.momentum = float(config.optim.momentum);
  sp.weight_decay = float(config.optim.weight_decay);
  sp.nesterov = config.optim.nesterov;
  s.sgd = std::make_unique<Sgd>(*s.model, sp);
  std::error_code ec;
  fs::create_directories(config.run.checkpoint_dir, ec);
  MACER_CHECK(!ec, config.run.checkpoint_dir << ": cannot create checkpoint directory: " << ec.message());
  s.log_path = config.run.log_file.empty() ? config.run.checkpoint_dir + "/train.jsonl" : config.run.log_file;
}

Trainer::~Trainer() = default;

layers::Module& Trainer::model() { return *s_->model; }
std::string Trainer::checkpoint_path() const { return s_->last_checkpoint; }

void Trainer::resume(const std::string& path) {
  State& s = *s_;
  CheckpointInfo info = read_checkpoint_info(path);
  MACER_CHECK(info.model == s.cfg.model.name,
              path << ": checkpoint of model " << info.model << ", config asks for " << s.cfg.model.name);
  const layers::Normalization want = layers::normalization_preset(s.cfg.model.normalize);
  MACER_CHECK(info.normalize.mean == want.mean && info.normalize.std == want.std,
              path << ": checkpoint's input normalization differs from [model] normalize = \""
                   << s.cfg.model.normalize << "\"");
  load_checkpoint(path, *s.model, s.sgd.get());
  s.epoch = info.epoch;
  s.step = info.step;
}

std::vector<EpochStats> Trainer::run() {
  State& s = *s_;
  const TrainConfig& c = s.cfg;
  data::LoaderOptions lopt;
  lopt.batch = int(c.optim.batch);
  lopt.shuffle = true;
  lopt.augment_crop = c.data.augment_crop;
  lopt.augment_flip = c.data.augment_flip;
  lopt.drop_last = true;  // batch statistics and the MACER mean need full batches
  lopt.seed = uint64_t(c.run.seed);
  lopt.count = c.data.train_count;
  data::Loader loader(*s.train_set, lopt);
  MACER_CHECK(loader.batches_per_epoch() > 0,
              "training set of " << s.train_set->size() << " images gives no batch of " << c.optim.batch);

  const Objective& objective = objective_by_name(c.objective.name);
  LambdaSchedule lambda_schedule{c.objective.lambda_schedule, c.objective.lambda, c.objective.lambda_warmup_epochs};
  MultiStepLr lr_schedule{c.optim.lr, c.optim.milestones, c.optim.lr_factor};
  const int k = int(c.objective.k);
  const float sigma = float(c.objective.sigma);
  // The log is rewritten on a fresh start and appended to on resume.
  std::ofstream log(s.log_path, s.epoch == 0 ? std::ios::trunc : std::ios::app);
  MACER_CHECK(log, s.log_path << ": cannot open log file for writing");

  std::vector<EpochStats> all;
  s.model->train();
  for (int64_t epoch = s.epoch; epoch < c.optim.epochs; ++epoch) {
    EpochStats st;
    st.epoch = epoch + 1;
    st.lr = lr_schedule.at(epoch);
    st.lambda = lambda_schedule.at(epoch);
    ObjectiveHyper hyper{sigma, float(st.lambda), float(c.objective.beta), float(c.objective.gamma)};
    EpochSums sums;
    sums.correct = Tensor::zeros({1}, s.device);
    loader.begin_epoch(int(epoch));
    int64_t batches = loader.batches_per_epoch();
    Progress progress("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(c.optim.epochs),
                      batches, "samples", c.run.print_every);
    data::Batch batch;
    int64_t done = 0;
    while (loader.next(batch)) {
      Tensor images = batch.images.to(s.device);
      Tensor labels = batch.labels.to(s.device);
      int64_t b = images.dim(0);
      // Philox counter = global step: reproducible, never reused, continues across resume.
      Tensor noisy = ops::noisy_copies(images, k, sigma, uint64_t(c.run.seed), uint64_t(s.step));
      Var logits = s.model->forward(Var(noisy));
      ObjectiveResult r = objective(logits, labels, k, hyper);
      s.model->zero_grad();
      backward(r.loss);
      s.sgd->step(float(st.lr));
      ++s.step;
      MACER_DISPATCH(s.device, vote_correct, kernels::LogitsShape{int(b * k), int(logits.shape()[1])}, k,
                     logits.value().data(), labels.data<int32_t>(), sums.correct.data());
      sums.losses.push_back(r.loss.value());
      if (r.cl.defined()) sums.cls.push_back(r.cl);
      if (r.rl.defined()) sums.rls.push_back(r.rl);
      if (r.active.defined()) sums.actives.push_back(r.active);
      sums.inputs += b;
      ++done;
      // The one host read-back of a step, only when a line is printed.
      bool print = done == batches || done % c.run.print_every == 0;
      if (print) {
        char fields[96];
        std::snprintf(fields, sizeof fields, "loss %.4f", r.loss.value().item());
        progress.update(done, fields, double(sums.inputs * k));
      }
    }
    progress.finish();
    synchronize(s.device);
    st.seconds = progress.elapsed_seconds();
    double steps = double(sums.losses.size());
    st.loss = steps > 0 ? sums.sum(sums.losses) / steps : 0;
    st.cl = sums.inputs ? sums.sum(sums.cls) / double(sums.inputs) : 0;
    st.rl = sums.inputs ? sums.sum(sums.rls) / double(sums.inputs) : 0;
    st.active_fraction = sums.inputs ? sums.sum(sums.actives) / double(sums.inputs) : 0;
    st.train_accuracy = sums.inputs ? double(sums.correct.item()) / double(sums.inputs) : 0;
    st.samples_per_second = st.seconds > 0 ? double(sums.inputs * k) / st.seconds : 0;
    s.epoch = epoch + 1;

    if (c.certify.every > 0 && s.epoch % c.certify.every == 0) {
      st.certify_json = certify_during_training(c, *s.model, s.device);
      s.model->train();
    }
    nlohmann::ordered_json line = {{"epoch", st.epoch}, {"lr", st.lr}, {"lambda", st.lambda},
                                   {"loss", st.loss}, {"cl", st.cl}, {"rl", st.rl},
                                   {"active_fraction", st.active_fraction},
                                   {"train_smoothed_accuracy", st.train_accuracy},
                                   {"seconds", st.seconds}, {"samples_per_second", st.samples_per_second},
                                   {"step", s.step}};
    if (!st.certify_json.empty()) line["certify"] = nlohmann::json::parse(st.certify_json);
    log << line.dump() << std::endl;
    std::fprintf(stderr, "epoch %ld: loss %.4f cl %.4f rl %.4f active %.3f smoothed-acc %.4f %.1fs %.0f samples/s\n",
                 long(st.epoch), st.loss, st.cl, st.rl, st.active_fraction, st.train_accuracy,
                 st.seconds, st.samples_per_second);

    if (s.epoch % c.run.checkpoint_every == 0 || s.epoch == c.optim.epochs) {
      CheckpointInfo info;
      info.model = c.model.name;
      info.dataset = c.data.dataset;
      info.channels = s.train_set->channels();
      info.height = s.train_set->height();
      info.width = s.train_set->width();
      info.classes = s.train_set->classes();
      info.sigma = c.objective.sigma;
      info.epoch = s.epoch;
      info.step = s.step;
      info.config = to_toml(c);
      info.normalize = layers::normalization_preset(c.model.normalize);
      s.last_checkpoint = c.run.checkpoint_dir + "/checkpoint.safetensors";
      save_checkpoint(s.last_checkpoint, *s.model, s.sgd.get(), info);
    }
    all.push_back(st);
  }
  return all;
}

}  // namespace macer
