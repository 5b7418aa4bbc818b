// The training loop. Per step (macer/train/step.h): the attack, noisy copies, forward, the objective,
// backward, one fused SGD update; scalars for the log and the divergence marks stay on the
// device until the end of the epoch (or a printed progress line).
#include "macer/train/trainer.h"

#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/dataset.h"
#include "data/fingerprint.h"
#include "data/loader.h"
#include "data/sample.h"
#include "engine/atomic_file.h"
#include "engine/dispatch.h"
#include "engine/ops.h"
#include "engine/precision.h"
#include "kernels/finite_check.h"
#include "kernels/smoothing.h"
#include "layers/registry.h"
#include "macer/certify/dataset.h"
#include "macer/checkpoint.h"
#include "macer/distributed.h"
#include "macer/interrupt.h"
#include "macer/noise_streams.h"
#include "macer/objectives/objectives.h"
#include "macer/train/evaluate.h"
#include "macer/train/optimizer.h"
#include "macer/train/report.h"
#include "macer/progress.h"
#include "macer/train/schedule.h"
#include "macer/train/step.h"

namespace macer {

namespace fs = std::filesystem;

struct Trainer::State {
  TrainConfig cfg;
  Device device;
  std::unique_ptr<data::Dataset> train_set, test_set;  // test_set: when [certify] every or run.test_every > 0
  std::vector<int64_t> train_indices;  // data.train_count's class-balanced sample; empty: all images
  std::vector<int64_t> certify_indices;  // the test images certified during training
  std::string data_fingerprint;                         // of train_set (data/fingerprint.h)
  std::unique_ptr<layers::Module> model;
  std::unique_ptr<Sgd> sgd;
  int64_t epoch = 0;  // epochs completed
  int64_t step = 0;   // optimizer steps taken
  std::string log_path, checkpoint_file;
  int lock_fd = -1;   // flock on <checkpoint_dir>/macer_train.lock, held while the trainer lives
  bool replace_old_run = false;  // --overwrite of a run found there: removed when training starts
  std::string pending_log;       // resume: the checkpoint's epoch line the log lost, still to write
  std::string resumed_from_dir;  // resume of a checkpoint in another folder (a branch): that folder
  int64_t saved_epoch = 0;       // the epoch of the checkpoint in checkpoint_dir (0: none written)
  std::string made_dir;          // checkpoint_dir when this trainer created it
  bool started = false;          // the constructor finished: the run folder is the run's
  // Releases the flock, also when the trainer's constructor throws after taking it; a start
  // that failed takes back its lock file and the folder it made, so no empty run is left.
  ~State() {
    if (lock_fd < 0) return;
    if (!started) {
      std::error_code ec;
      ::unlink((cfg.run.checkpoint_dir + "/macer_train.lock").c_str());
      if (!made_dir.empty()) fs::remove(made_dir, ec);  // only when empty
    }
    ::close(lock_fd);
  }
};

namespace {

std::unique_ptr<data::Dataset> open_split(const TrainConfig& cfg, const std::string& split) {
  data::DatasetOptions opt;
  opt.image_size = int(cfg.data.image_size);
  opt.class_order = cfg.data.class_order;
  opt.jpeg_scaled_crops = cfg.data.jpeg_scaled_crops;
  opt.synthetic_size = cfg.data.synthetic_size;
  opt.synthetic_classes = int(cfg.data.synthetic_classes);
  opt.seed = uint64_t(cfg.run.seed);
  opt.dir_option = "--set data.dir=DIR (or data.dir in the config)";
  std::unique_ptr<data::Dataset> set = data::open_dataset(cfg.data.dataset, cfg.data.dir, split, opt);
  if (set->classes() < 2) {  // one class folder: most likely data.dir one level too deep or too high
    const std::vector<std::string> names = set->class_names();
    MACER_CHECK(false, "data.dir = " << cfg.data.dir << ": the " << split << " split has "
                                     << (names.empty() ? "no class" : "one class ('" + names[0] + "')")
                                     << ": a classifier needs at least 2; point data.dir at the folder whose "
                                        "sub-folders are the classes (or that holds train/ and val/ of them)");
  }
  return set;
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
// checkpoint, or half a line): the resumed run then appends without duplicates. Returns the
// epochs kept.
std::vector<int64_t> truncate_log(const std::string& path, int64_t epochs) {
  std::vector<int64_t> logged;
  std::ifstream in(path);
  if (!in) return logged;
  std::string kept, line;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // no newline: a half-written last line
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("epoch") && j["epoch"].is_number_integer() && j["epoch"].get<int64_t>() <= epochs) {
      kept += line + "\n";
      logged.push_back(j["epoch"].get<int64_t>());
    }
  }
  write_file_atomic(path, kept);
  return logged;
}


// "2, 5 and 7" / "2 to 9": a sorted list of epochs, for messages.
std::string epoch_list(const std::vector<int64_t>& e) {
  if (e.empty()) return "";
  bool run = e.back() - e.front() + 1 == int64_t(e.size());
  if (run && e.size() > 2) return std::to_string(e.front()) + " to " + std::to_string(e.back());
  std::string out;
  for (size_t i = 0; i < e.size(); ++i)
    out += (i == 0 ? "" : i + 1 == e.size() ? " and " : ", ") + std::to_string(e[i]);
  return out;
}

}  // namespace

// data.train_transform resolved: RandomResizedCrop for image folders unless center_crop is asked.
static bool random_resized_crop(const TrainConfig& c) {
  const bool folder = c.data.dataset == "imagefolder";
  MACER_CHECK(folder || c.data.train_transform != "random_resized_crop",
              "data.train_transform = \"random_resized_crop\" needs full images: dataset \"imagefolder\" (for "
                  << c.data.dataset << " use data.augment_crop)");
  MACER_CHECK(folder || c.data.train_transform != "center_crop",
              "data.train_transform = \"center_crop\" is for dataset \"imagefolder\" (" << c.data.dataset
                                                                                         << " images are used as stored)");
  const bool rrc = folder && c.data.train_transform != "center_crop";
  MACER_CHECK(!(rrc && c.data.augment_crop), "data.augment_crop (pad and crop) and RandomResizedCrop exclude each other:"
                                             " set data.augment_crop = false, or data.train_transform = \"center_crop\"");
  return rrc;
}

std::unique_ptr<data::Dataset> open_training_split(const TrainConfig& config, const std::string& split) {
  return open_split(config, split);
}

Trainer::Trainer(const TrainConfig& config, const TrainerOptions& options) : s_(std::make_unique<State>()) {
  State& s = *s_;
  s.cfg = config;
  const std::string& dir = config.run.checkpoint_dir;
  s.device = parse_device(config.run.device);
  MACER_CHECK(s.device != Device::CUDA || cuda_available(),
              "run.device = \"cuda\": no CUDA device is available (no GPU here, or none its driver can use: "
                  << cuda_unavailable_reason()
                  << "); train on the CPU with --set run.device=cpu (or \"auto\": the GPU when there is one)");
  require_device(s.device);
  random_resized_crop(config);  // its errors now, not when the first epoch starts
  const Precision precision = parse_precision(config.run.precision, "run.precision");
  check_precision(s.device, precision);
  set_compute_precision(precision);  // process-wide: the steps and in-training certification
  s.train_set = open_split(config, "train");
  if (dist::is_root() && !s.train_set->summary().empty()) std::printf("data: %s\n", s.train_set->summary().c_str());
  // data.train_count: a class-balanced sample drawn with the seed (an image folder is ordered class
  // by class: its first N images may all be of one class).
  const int64_t available = s.train_set->size(), count = config.data.train_count;
  MACER_CHECK(count <= available, key_source(config, "data.train_count") << " = " << count << ", but "
                                                                        << config.data.dataset << " has only "
                                                        << available << " training images; lower it, or set -1 for all");
  if (count > 0 && count < available)
    s.train_indices = data::class_balanced_sample(*s.train_set, count, uint64_t(config.run.seed));
  const int64_t used = count > 0 ? count : available;
  if (count > 0)
    MACER_CHECK(used >= config.optim.batch,
                key_source(config, "data.train_count") << " = " << count << " is smaller than optim.batch = "
                                                       << config.optim.batch
                                      << ": an epoch takes full batches only (the last partial batch is dropped), "
                                         "so it would train on nothing; set data.train_count to at least "
                                      << config.optim.batch << " or lower optim.batch");
  else
    MACER_CHECK(used >= config.optim.batch,
                config.data.dataset << " has " << used << " training images, fewer than optim.batch = " << config.optim.batch
                                    << ": an epoch takes full batches only, so it would train on nothing; lower optim.batch");
  s.data_fingerprint = data::content_fingerprint(*s.train_set);  // recorded in every checkpoint
  if (config.certify.every > 0 || config.run.test_every > 0) {
    try {
      s.test_set = open_split(config, "test");
    } catch (const Error& e) {  // the test split is read for the log's test loss unless told not to
      throw Error(std::string(e.what()) + (config.certify.every > 0 ? "" : " (set run.test_every = 0 to train without the test split)"));
    }
  }
  if (config.certify.every > 0) {
    s.certify_indices =
        select_images(s.test_set->size(), {config.certify.start, config.certify.count, config.certify.skip});
    if (dist::is_root() && !s.test_set->summary().empty()) std::printf("data: %s\n", s.test_set->summary().c_str());
    // The images certified during training are read whole now, not found bad epochs later.
    data::check_images_readable(
        *s.test_set, s.certify_indices,
        "[certify] reads them during training: fix or remove them (macer_train --check-data lists every bad file)");
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
    std::error_code ec;
    if (!fs::exists(dir, ec)) s.made_dir = dir;
    ensure_writable_dir(dir, "run.checkpoint_dir");
    s.lock_fd = lock_run_dir(dir);
    check_writable(s.log_path, "run.log_file");
    const bool holds_run = non_empty_file(s.checkpoint_file) || non_empty_file(s.log_path);
    const bool resumes_here = !options.resume.empty() && same_file_location(options.resume, s.checkpoint_file);
    if (holds_run && !resumes_here && !options.overwrite && !options.resume.empty())
      throw Error("--resume " + options.resume + " is not in run.checkpoint_dir = " + dir +
                  ", which holds another run: a resumed run writes into run.checkpoint_dir, so name the resumed "
                  "run's folder there: --set run.checkpoint_dir=\"" +
                  fs::path(options.resume).parent_path().string() + "\"");
    if (holds_run && !resumes_here && !options.overwrite)
      throw Error(dir + " already holds a run (" + s.checkpoint_file + " or " + s.log_path +
                  "); continue it with --resume " + dir + ", or replace it with --overwrite");
    s.replace_old_run = holds_run && !resumes_here;
    // A run's latest checkpoint (--resume B, or B/checkpoint.safetensors) continues run B, whose
    // log is B/train.jsonl: resuming it into another run.checkpoint_dir would split the run in
    // two folders. A kept epoch_<N>.safetensors (or any other name) starts a branch there.
    if (!options.resume.empty() && !resumes_here) {
      const fs::path r(options.resume);
      const std::string from = r.parent_path().empty() ? "." : r.parent_path().string();
      if (r.filename() == "checkpoint.safetensors")
        throw Error("--resume " + options.resume + " continues the run in " + from + ", but run.checkpoint_dir = " +
                    dir + " is another folder (a resumed run writes its checkpoints and log into "
                    "run.checkpoint_dir): add --set run.checkpoint_dir=\"" + from + "\" to continue it there (to "
                    "branch from it into " + dir + " instead, resume a kept epoch_<N>.safetensors or a copy of the "
                    "checkpoint under another name)");
      s.resumed_from_dir = from;
    }
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
  s.started = true;
}

Trainer::~Trainer() = default;

layers::Module& Trainer::model() { return *s_->model; }
std::string Trainer::checkpoint_path() const { return s_->checkpoint_file; }
int64_t Trainer::epochs_done() const { return s_->epoch; }
int64_t Trainer::checkpoint_epoch() const { return s_->saved_epoch; }

void Trainer::resume(const std::string& path, bool allow_changes) {
  State& s = *s_;
  const TrainConfig& c = s.cfg;
  CheckpointInfo info = read_checkpoint_info(path);
  MACER_CHECK(info.model == c.model.name,
              path << ": checkpoint of model " << info.model << ", config asks for " << c.model.name);
  // What the weights were trained for: changing it silently would make a different experiment.
  std::string stored_objective = c.objective.name, stored_attack = c.attack.name;
  if (!info.config.empty()) {
    const TrainConfig stored = parse_stored_train_config(info.config, path + " (stored config)");
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
  // Weights trained on in one precision continue in it: the optimizer state and the schedule were
  // tuned to its gradients (no --allow-changes here; start a new run to change it).
  MACER_CHECK(info.precision == c.run.precision,
              path << " was trained with run.precision = \"" << info.precision << "\"; the config asks for \""
                   << c.run.precision << "\" (a resume keeps the precision: set run.precision = \""
                   << info.precision << "\", or start a new run)");
  load_checkpoint(path, *s.model, s.sgd.get());
  s.epoch = info.epoch;
  if (same_file_location(path, s.checkpoint_file)) s.saved_epoch = info.epoch;
  s.step = info.step;
  if (!dist::is_root()) return;
  if (!s.resumed_from_dir.empty()) {  // a branch: this folder's log starts after the checkpoint's epoch
    std::fprintf(stderr, "resume: branching from %s (epoch %ld) into run.checkpoint_dir = %s: %s starts at epoch "
                         "%ld; the log lines of epochs 1 to %ld stay in %s's log\n",
                 path.c_str(), long(s.epoch), c.run.checkpoint_dir.c_str(), s.log_path.c_str(), long(s.epoch + 1),
                 long(s.epoch), s.resumed_from_dir.c_str());
    return;
  }
  // The log keeps epochs 1..E of the checkpoint's E. A run stopped after writing epoch E's
  // checkpoint but before its log line (killed in E's certification, a full disk) lost that
  // line: the checkpoint holds it, and run() writes it (with its certification) first.
  std::vector<int64_t> logged = truncate_log(s.log_path, s.epoch);
  std::vector<int64_t> missing;
  for (int64_t e = 1, j = 0; e <= s.epoch; ++e) {
    while (j < int64_t(logged.size()) && logged[size_t(j)] < e) ++j;
    if (j >= int64_t(logged.size()) || logged[size_t(j)] != e) missing.push_back(e);
  }
  if (!missing.empty() && missing.back() == s.epoch && !info.epoch_log.empty()) {
    s.pending_log = info.epoch_log;
    missing.pop_back();
  }
  if (!missing.empty())
    std::fprintf(stderr, "warning: %s lacks the line%s of epoch%s %s (lost before the checkpoint of epoch %ld was "
                         "written; the checkpoint holds only its own epoch's line): they cannot be rebuilt\n",
                 s.log_path.c_str(), missing.size() > 1 ? "s" : "", missing.size() > 1 ? "s" : "",
                 epoch_list(missing).c_str(), long(s.epoch));
}

std::vector<EpochStats> Trainer::run() {
  State& s = *s_;
  const TrainConfig& c = s.cfg;
  const bool root = dist::is_root();
  const int world = dist::size();
  const Arithmetic arith = arithmetic_of(s.device, c.run.precision);
  // The log is rewritten on a fresh start and appended to on resume (truncated to the checkpoint).
  const bool fresh = s.epoch == 0 || s.replace_old_run;
  std::ofstream log;
  if (root) {
    log.open(s.log_path, fresh ? std::ios::trunc : std::ios::app);
    MACER_CHECK(log, s.log_path << ": cannot open log file for writing: " << std::strerror(errno));
  }
  auto write_log = [&](const nlohmann::ordered_json& line) {
    errno = 0;
    log << line.dump() << std::endl;
    MACER_CHECK(log, s.log_path << ": writing the log failed: " << (errno ? std::strerror(errno) : "stream error"));
  };
  if (root && !s.pending_log.empty()) {  // resume: the checkpoint's epoch line, lost when the run stopped
    nlohmann::ordered_json line = nlohmann::ordered_json::parse(s.pending_log, nullptr, /*allow_exceptions=*/false);
    MACER_CHECK(line.is_object() && line.value("epoch", int64_t(-1)) == s.epoch,
                s.checkpoint_file << ": metadata 'epoch_log' is not the log line of epoch " << s.epoch);
    const bool certify = c.certify.every > 0 && s.epoch % c.certify.every == 0;
    if (certify) {
      line["certify"] =
          nlohmann::ordered_json::parse(certify_during_training(c, *s.model, *s.test_set, s.device, s.epoch));
      s.model->train();
    }
    write_log(line);
    s.pending_log.clear();
    std::fprintf(stderr, "resume: wrote epoch %ld's log line%s to %s (lost when the run stopped after its checkpoint)\n",
                 long(s.epoch), certify ? " and its certification" : "", s.log_path.c_str());
  }
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
  lopt.random_resized_crop = random_resized_crop(c);
  lopt.drop_last = true;  // batch statistics and the MACER mean need full batches
  lopt.seed = uint64_t(c.run.seed);
  lopt.indices = s.train_indices;  // empty: every image
  lopt.shard = dist::rank(), lopt.shards = world;  // this rank's share of every global batch
  data::Loader loader(*s.train_set, lopt);
  if (root)
    print_startup_lines(c, arith, s.device, *s.train_set, s.train_indices, loader, world,
                        c.certify.every > 0 ? s.test_set.get() : nullptr, s.certify_indices, s.epoch);

  LambdaSchedule lambda_schedule{c.objective.lambda_schedule, c.objective.lambda, c.objective.lambda_warmup_epochs};
  MultiStepLr lr_schedule{c.optim.lr, c.optim.milestones, c.optim.lr_factor};
  const int k = int(c.objective.k);
  const float sigma = float(c.objective.sigma);
  if (s.replace_old_run) {
    // --overwrite: the old run's checkpoints (the latest and run.keep_every's epoch_N) go with its
    // log; files the trainer did not write (a certification's TSV, a plot) stay, and are named.
    std::error_code ec;
    fs::remove(s.checkpoint_file, ec);
    std::vector<std::string> others;
    for (const auto& entry : fs::directory_iterator(c.run.checkpoint_dir, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind("epoch_", 0) == 0 && entry.path().extension() == ".safetensors")
        fs::remove(entry.path(), ec);
      else if (entry.path() != fs::path(s.log_path) && name != "macer_train.lock")
        others.push_back(name);
    }
    std::sort(others.begin(), others.end());
    if (root && !others.empty()) {
      std::string list;
      for (const std::string& o : others) list += (list.empty() ? "" : ", ") + o;
      std::fprintf(stderr, "note: --overwrite replaced the old run's checkpoints and log; other files in %s stay "
                           "(%s): they describe the old run\n", c.run.checkpoint_dir.c_str(), list.c_str());
    }
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
      check_interrupt();  // Ctrl-C: the last checkpoint stays (one process only, macer/interrupt.h)
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
    if (root && c.run.test_every > 0 && s.epoch % c.run.test_every == 0) {  // Cohen's per-epoch test line
      NoisyTestResult t = evaluate_noisy(*s.model, *s.test_set, s.device, sigma, uint64_t(c.run.seed),
                                         int(std::min<int64_t>(c.optim.batch * k, 1024)));
      st.test_loss = t.loss, st.test_accuracy = t.accuracy;
    }
    // MACER's terms (lambda, cl, rl, active fraction) only where the objective has them: the
    // Gaussian baseline's loss is its cross-entropy and nothing else.
    const bool terms = !sums.cls.empty() || !sums.rls.empty();
    nlohmann::ordered_json line = epoch_log_line(c, st, terms, s.step, world, arith);

    // The checkpoint first: certification can take long, and its work must not put the epoch at risk.
    const bool keep = c.run.keep_every > 0 && s.epoch % c.run.keep_every == 0;
    if (root && (s.epoch % c.run.checkpoint_every == 0 || s.epoch == c.optim.epochs || keep)) {
      CheckpointInfo info;
      info.model = c.model.name;
      info.dataset = c.data.dataset;
      info.channels = s.train_set->channels();
      info.height = s.train_set->height();
      info.width = s.train_set->width();
      info.classes = s.train_set->classes();
      info.class_names = s.train_set->class_names();
      info.data_fingerprint = s.data_fingerprint;
      info.sigma = c.objective.sigma;
      info.epoch = s.epoch;
      info.step = s.step;
      info.config = to_toml(c);
      info.precision = c.run.precision;
      info.normalize = layers::normalization_preset(c.model.normalize);
      info.threads = arith.threads, info.conv = arith.conv;
      info.epoch_log = line.dump();  // for a resume, should this run stop before the line is logged
      save_checkpoint(s.checkpoint_file, *s.model, s.sgd.get(), info);
      s.saved_epoch = s.epoch;
      if (keep)  // kept beside the latest, as MACER's {epoch}.pth
        save_checkpoint(c.run.checkpoint_dir + "/epoch_" + std::to_string(s.epoch) + ".safetensors", *s.model,
                        s.sgd.get(), info);
    }
    if (root) print_epoch_line(c.objective.name, st, terms);  // before the certification's table and progress
    if (root && c.certify.every > 0 && s.epoch % c.certify.every == 0) {  // the other ranks wait at the next step
      st.certify_json = certify_during_training(c, *s.model, *s.test_set, s.device, s.epoch);
      s.model->train();
    }
    if (!st.certify_json.empty()) line["certify"] = nlohmann::json::parse(st.certify_json);
    all.push_back(st);
    if (!root) continue;
    write_log(line);
  }
  return all;
}

}  // namespace macer
