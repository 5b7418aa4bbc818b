// The training loop. Per step (macer/train/step.h): the attack, noisy copies, forward, the objective,
// backward, one fused SGD update; scalars for the log and the divergence marks stay on the
// device until the end of the epoch (or a printed progress line).
#include "macer/train/trainer.h"

#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/dataset.h"
#include "data/loader.h"
#include "engine/atomic_file.h"
#include "engine/dispatch.h"
#include "engine/ops.h"
#include "kernels/finite_check.h"
#include "kernels/smoothing.h"
#include "layers/registry.h"
#include "macer/certify/dataset.h"
#include "macer/checkpoint.h"
#include "macer/distributed.h"
#include "macer/noise_streams.h"
#include "macer/objectives/objectives.h"
#include "macer/train/optimizer.h"
#include "macer/progress.h"
#include "macer/train/schedule.h"
#include "macer/train/step.h"

namespace macer {

namespace fs = std::filesystem;

struct Trainer::State {
  TrainConfig cfg;
  Device device;
  std::unique_ptr<data::Dataset> train_set, test_set;  // test_set: when [certify] every > 0
  std::unique_ptr<layers::Module> model;
  std::unique_ptr<Sgd> sgd;
  int64_t epoch = 0;  // epochs completed
  int64_t step = 0;   // optimizer steps taken
  std::string log_path, checkpoint_file;
  int lock_fd = -1;   // flock on <checkpoint_dir>/macer_train.lock, held while the trainer lives
  bool replace_old_run = false;  // --overwrite of a run found there: removed when training starts
  // Releases the flock, also when the trainer's constructor throws after taking it.
  ~State() {
    if (lock_fd >= 0) ::close(lock_fd);
  }
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

// (2) I64 on the device: the first step whose loss [0] / gradients [1] were not finite;
// INT64_MAX while all were.
Tensor fresh_divergence_marks(Device device) {
  Tensor host = Tensor::empty({2}, Device::CPU, DType::I64);
  host.data<int64_t>()[0] = host.data<int64_t>()[1] = INT64_MAX;
  return host.to(device);
}

// Takes the run's folder lock; a second trainer on the same folder (this process or another)
// is refused while the first lives. The kernel drops the lock when the process ends, even on kill.
int lock_run_dir(const std::string& dir) {
  std::string path = dir + "/macer_train.lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  MACER_CHECK(fd >= 0, path << ": cannot create the lock file: " << std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int why = errno;
    ::close(fd);
    MACER_CHECK(why != EWOULDBLOCK, dir << ": another macer_train is training into this folder (" << path
                                        << " is locked); wait for it or choose another run.checkpoint_dir");
    throw Error(path + ": cannot lock: " + std::strerror(why));
  }
  std::string pid = std::to_string(::getpid()) + "\n";  // a courtesy to the reader; the lock is what matters
  if (::ftruncate(fd, 0) == 0) (void)!::write(fd, pid.data(), pid.size());
  return fd;
}

bool non_empty_file(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec) && fs::file_size(path, ec) > 0;
}

bool same_file_location(const std::string& a, const std::string& b) {
  std::error_code ec;
  return fs::weakly_canonical(a, ec) == fs::weakly_canonical(b, ec);
}

// Keeps the log lines of epochs 1..epochs (a killed run may have logged epochs after its last
// checkpoint, or half a line): the resumed run then appends without duplicates.
void truncate_log(const std::string& path, int64_t epochs) {
  std::ifstream in(path);
  if (!in) return;
  std::string kept, line;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // no newline: a half-written last line
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("epoch") && j["epoch"].is_number_integer() && j["epoch"].get<int64_t>() <= epochs)
      kept += line + "\n";
  }
  write_file_atomic(path, kept);
}

}  // namespace

Trainer::Trainer(const TrainConfig& config, const TrainerOptions& options) : s_(std::make_unique<State>()) {
  State& s = *s_;
  s.cfg = config;
  const std::string& dir = config.run.checkpoint_dir;
  s.device = parse_device(config.run.device);
  require_device(s.device);
  s.train_set = open_split(config, "train");
  if (config.certify.every > 0) {
    s.test_set = open_split(config, "test");
    select_images(s.test_set->size(), {config.certify.start, config.certify.count, config.certify.skip});
    const int64_t batches = (std::max(config.certify.n0, config.certify.n) + config.certify.batch - 1) / config.certify.batch;
    MACER_CHECK(batches <= (int64_t(1) << 19), "[certify]: " << batches << " batches of certify.batch = "
                                                             << config.certify.batch << " per phase; at most 2^19");
  }

  if (config.optim.batch % dist::size() != 0)  // every rank finds it: reported once
    throw dist::CollectiveError("optim.batch " + std::to_string(config.optim.batch) + " does not split into " +
                                std::to_string(dist::size()) +
                                " equal shares (one per rank); choose a multiple of the number of ranks");

  // Outputs (rank 0 writes them all): checked and locked before any work, so that a bad path
  // is not found at the end.
  s.checkpoint_file = dir + "/checkpoint.safetensors";
  s.log_path = config.run.log_file.empty() ? dir + "/train.jsonl" : config.run.log_file;
  if (dist::is_root()) {
    ensure_writable_dir(dir, "run.checkpoint_dir");
    s.lock_fd = lock_run_dir(dir);
    check_writable(s.log_path, "run.log_file");
    const bool holds_run = non_empty_file(s.checkpoint_file) || non_empty_file(s.log_path);
    const bool resumes_here = !options.resume.empty() && same_file_location(options.resume, s.checkpoint_file);
    if (holds_run && !resumes_here && !options.overwrite)
      throw Error(dir + " already holds a run (" + s.checkpoint_file + " or " + s.log_path +
                  "); continue it with --resume " + s.checkpoint_file + ", or replace it with --overwrite");
    s.replace_old_run = holds_run && !resumes_here;
  }

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
  if (!options.resume.empty()) resume(options.resume, options.allow_changes);
}

Trainer::~Trainer() = default;

layers::Module& Trainer::model() { return *s_->model; }
std::string Trainer::checkpoint_path() const { return s_->checkpoint_file; }
int64_t Trainer::epochs_done() const { return s_->epoch; }

void Trainer::resume(const std::string& path, bool allow_changes) {
  State& s = *s_;
  const TrainConfig& c = s.cfg;
  CheckpointInfo info = read_checkpoint_info(path);
  MACER_CHECK(info.model == c.model.name,
              path << ": checkpoint of model " << info.model << ", config asks for " << c.model.name);
  // What the weights were trained for: changing it silently would make a different experiment.
  std::string stored_objective = c.objective.name, stored_attack = c.attack.name;
  if (!info.config.empty()) {
    const TrainConfig stored = parse_train_config(info.config, path + " (stored config)");
    stored_objective = stored.objective.name, stored_attack = stored.attack.name;
  }
  auto differs = [&](const std::string& what, const std::string& was, const std::string& now) {
    MACER_CHECK(was == now || allow_changes, path << " was trained with " << what << " " << was << "; the config asks for "
                                                  << now << " (pass --allow-changes to resume anyway)");
  };
  auto shape = [](int64_t ch, int64_t h, int64_t w, int64_t k) {
    return std::to_string(ch) + "x" + std::to_string(h) + "x" + std::to_string(w) + " images of " +
           std::to_string(k) + " classes";
  };
  differs("data set", info.dataset, c.data.dataset);
  differs("input", shape(info.channels, info.height, info.width, info.classes),
          shape(s.train_set->channels(), s.train_set->height(), s.train_set->width(), s.train_set->classes()));
  differs("objective", stored_objective, c.objective.name);
  differs("attack", stored_attack, c.attack.name);
  // Old checkpoints stored sigma with 6 decimals: equal within that rounding counts as equal.
  if (std::fabs(info.sigma - c.objective.sigma) > 5e-7 * std::max(1.0, std::fabs(c.objective.sigma))) {
    std::ostringstream was, now;
    was << info.sigma, now << c.objective.sigma;
    differs("sigma", was.str(), now.str());
  }
  const layers::Normalization want = layers::normalization_preset(c.model.normalize);
  auto describe = [](const layers::Normalization& n) {
    if (!n.enabled()) return std::string("none");
    std::ostringstream os;
    os << "mean";
    for (float m : n.mean) os << " " << m;
    os << ", std";
    for (float d : n.std) os << " " << d;
    return os.str();
  };
  if (info.normalize.mean != want.mean || info.normalize.std != want.std)
    differs("input normalization", describe(info.normalize), describe(want) + " ([model] normalize = \"" +
                                                                c.model.normalize + "\")");
  load_checkpoint(path, *s.model, s.sgd.get());
  s.epoch = info.epoch;
  s.step = info.step;
  if (dist::is_root()) truncate_log(s.log_path, s.epoch);
}

std::vector<EpochStats> Trainer::run() {
  State& s = *s_;
  const TrainConfig& c = s.cfg;
  const bool root = dist::is_root();
  const int world = dist::size();
  if (s.epoch >= c.optim.epochs) {
    if (root)
      std::fprintf(stderr, "nothing to train: the checkpoint has completed %ld epochs and optim.epochs is %ld "
                         "(raise optim.epochs to train further)\n", long(s.epoch), long(c.optim.epochs));
    return {};
  }
  data::LoaderOptions lopt;
  lopt.batch = int(c.optim.batch);
  lopt.shuffle = true;
  lopt.augment_crop = c.data.augment_crop;
  lopt.augment_flip = c.data.augment_flip;
  lopt.drop_last = true;  // batch statistics and the MACER mean need full batches
  lopt.seed = uint64_t(c.run.seed);
  lopt.count = c.data.train_count;
  lopt.shard = dist::rank(), lopt.shards = world;  // this rank's share of every global batch
  data::Loader loader(*s.train_set, lopt);
  MACER_CHECK(loader.batches_per_epoch() > 0,
              "training set of " << s.train_set->size() << " images gives no batch of " << c.optim.batch);

  LambdaSchedule lambda_schedule{c.objective.lambda_schedule, c.objective.lambda, c.objective.lambda_warmup_epochs};
  MultiStepLr lr_schedule{c.optim.lr, c.optim.milestones, c.optim.lr_factor};
  const int k = int(c.objective.k);
  const float sigma = float(c.objective.sigma);
  // The log is rewritten on a fresh start and appended to on resume (truncated to the checkpoint).
  const bool fresh = s.epoch == 0 || s.replace_old_run;
  std::ofstream log;
  if (root) {
    log.open(s.log_path, fresh ? std::ios::trunc : std::ios::app);
    MACER_CHECK(log, s.log_path << ": cannot open log file for writing: " << std::strerror(errno));
  }
  if (s.replace_old_run) {
    std::error_code ec;
    fs::remove(s.checkpoint_file, ec);  // --overwrite: the old run's checkpoint goes with its log
    s.replace_old_run = false;
  }
  Tensor marks = fresh_divergence_marks(s.device);

  std::vector<EpochStats> all;
  s.model->train();
  for (int64_t epoch = s.epoch; epoch < c.optim.epochs; ++epoch) {
    EpochStats st;
    st.epoch = epoch + 1;
    st.lr = lr_schedule.at(epoch);
    st.lambda = lambda_schedule.at(epoch);
    StepSettings step_settings;
    step_settings.copies = k;
    step_settings.sigma = sigma;
    step_settings.seed = uint64_t(c.run.seed);
    step_settings.hyper = ObjectiveHyper{sigma, float(st.lambda), float(c.objective.beta), float(c.objective.gamma),
                                         float(c.objective.eta)};
    step_settings.objective = c.objective.name;
    step_settings.attack = c.attack.name;
    step_settings.attack_seed = &soft_smoothed_seed;
    st.attack_eps = c.attack.name == "pgd" ? attack_eps_at(c.attack, epoch) : 0.0;
    step_settings.eps = float(st.attack_eps);
    step_settings.steps = int(c.attack.steps);
    step_settings.alpha = float(c.attack.alpha);
    step_settings.mix_step = int(c.attack.mix_step);
    st.attack_weight = c.attack.name == "smoothmix" ? smoothmix_weight_at(c.attack, epoch) : 0.0;
    step_settings.weight = float(st.attack_weight);
    step_settings.lr = float(st.lr);
    EpochSums sums;
    sums.correct = Tensor::zeros({1}, s.device);
    loader.begin_epoch(int(epoch));
    int64_t batches = loader.batches_per_epoch();
    const int64_t first_step = s.step;
    MACER_CHECK(uint64_t(first_step + batches) <= noise::kMaxCounter, "step counter overflow");
    Progress progress("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(c.optim.epochs),
                      batches, "samples", c.run.print_every, /*quiet=*/!root);
    data::Batch batch;
    int64_t done = 0;
    while (loader.next(batch)) {
      Tensor images = batch.images.to(s.device);
      Tensor labels = batch.labels.to(s.device);
      int64_t b = images.dim(0);
      // Philox counter = global step in the training stream: reproducible, never reused,
      // continues across resume, disjoint from certification's draws (macer/noise_streams.h).
      // Noise keyed by the global sample: rank r's rows are inputs r*b .. r*b + b - 1 of the step.
      StepOutput out = train_step(*s.model, *s.sgd, step_settings, images, labels, uint64_t(s.step),
                                  int64_t(dist::rank()) * b, marks);
      const Var& logits = out.logits;
      const ObjectiveResult& r = out.result;
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
      bool print = root && (done == batches || done % c.run.print_every == 0);
      if (print) {
        char fields[96];
        std::snprintf(fields, sizeof fields, "loss %.4f", r.loss.value().item());
        progress.update(done, fields, double(sums.inputs * k * world));
      }
    }
    progress.finish();
    synchronize(s.device);

    // The epoch's one look at the divergence marks (the earliest over ranks), before anything
    // is written.
    Tensor host_marks = marks.to(Device::CPU);
    std::vector<int64_t> first_bad = {host_marks.data<int64_t>()[0], host_marks.data<int64_t>()[1]};
    dist::min(first_bad);
    const int64_t bad_loss = first_bad[0], bad_grad = first_bad[1];
    if (bad_loss != INT64_MAX || bad_grad != INT64_MAX) {
      int64_t bad = std::min(bad_loss, bad_grad);
      std::ostringstream os;
      os << (bad_loss <= bad_grad ? "loss became NaN or infinite" : "gradients became NaN or infinite")
         << " at epoch " << epoch + 1 << " step " << bad - first_step + 1 << " of " << batches << " (global step "
         << bad + 1 << ") (lower optim.lr?); ";
      if (s.epoch > 0 && fs::exists(s.checkpoint_file))
        os << "the last finite checkpoint is kept: " << s.checkpoint_file;
      else
        os << "no checkpoint was written";
      throw dist::CollectiveError(os.str());  // every rank saw the same marks
    }

    st.seconds = progress.elapsed_seconds();
    // Every rank's sums, added: the epoch's figures are those of the global batches.
    std::vector<double> totals = {sums.sum(sums.losses), sums.sum(sums.cls), sums.sum(sums.rls),
                                  sums.sum(sums.actives), double(sums.correct.item()), double(sums.inputs)};
    dist::sum(totals);
    const double steps = double(sums.losses.size()) * world, inputs = totals[5];
    st.loss = steps > 0 ? totals[0] / steps : 0;
    st.cl = inputs > 0 ? totals[1] / inputs : 0;
    st.rl = inputs > 0 ? totals[2] / inputs : 0;
    st.active_fraction = inputs > 0 ? totals[3] / inputs : 0;
    st.train_accuracy = inputs > 0 ? totals[4] / inputs : 0;
    st.samples_per_second = st.seconds > 0 ? inputs * k / st.seconds : 0;
    s.epoch = epoch + 1;

    // The checkpoint first: certification can take long, and its work must not put the epoch at risk.
    if (root && (s.epoch % c.run.checkpoint_every == 0 || s.epoch == c.optim.epochs)) {
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
      save_checkpoint(s.checkpoint_file, *s.model, s.sgd.get(), info);
    }
    if (root && s.test_set && s.epoch % c.certify.every == 0) {  // the other ranks wait at the next step
      st.certify_json = certify_during_training(c, *s.model, *s.test_set, s.device);
      s.model->train();
    }
    nlohmann::ordered_json line = {{"epoch", st.epoch}, {"lr", st.lr}, {"lambda", st.lambda},
                                   {"loss", st.loss}, {"cl", st.cl}, {"rl", st.rl},
                                   {"active_fraction", st.active_fraction},
                                   {"train_smoothed_accuracy", st.train_accuracy},
                                   {"seconds", st.seconds}, {"samples_per_second", st.samples_per_second},
                                   {"step", s.step}, {"world_size", world}};
    if (c.attack.name == "pgd") line["attack_eps"] = st.attack_eps;
    if (c.attack.name == "smoothmix") line["smoothmix_weight"] = st.attack_weight;
    if (!st.certify_json.empty()) line["certify"] = nlohmann::json::parse(st.certify_json);
    all.push_back(st);
    if (!root) continue;
    errno = 0;
    log << line.dump() << std::endl;
    MACER_CHECK(log, s.log_path << ": writing the log failed: " << (errno ? std::strerror(errno) : "stream error"));
    std::fprintf(stderr, "epoch %ld: loss %.4f cl %.4f rl %.4f active %.3f smoothed-acc %.4f %.1fs %.0f samples/s\n",
                 long(st.epoch), st.loss, st.cl, st.rl, st.active_fraction, st.train_accuracy,
                 st.seconds, st.samples_per_second);
  }
  return all;
}

}  // namespace macer
