// The training loop of bin/macer_train: data, model, objective, SGD, schedules, progress lines,
// one JSON log line per epoch, checkpoints and resume, and certification every N epochs.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "layers/module.h"
#include "macer/config.h"

namespace macer {

struct EpochStats {
  int64_t epoch = 0;  // 1-based
  double lr = 0, lambda = 0;
  double attack_eps = 0;             // SmoothAdv's PGD: this epoch's eps_e (0 without an attack)
  double attack_weight = 0;          // SmoothMix: this epoch's w_e (0 for other methods)
  double loss = 0, cl = 0, rl = 0;   // means per input over the epoch
  double active_fraction = 0;        // MACER: inputs whose robustness term is active
  double train_accuracy = 0;         // of the smoothed (majority-vote over k copies) prediction
  double seconds = 0, samples_per_second = 0;  // samples = noisy copies through the network
  std::string certify_json;          // summary of the in-training certification, when run
  double test_loss = -1, test_accuracy = -1;  // one noisy copy per test image (run.test_every; -1: not run)
};

struct TrainerOptions {
  std::string resume;          // a checkpoint of this trainer to continue from
  bool overwrite = false;      // replace the run already in run.checkpoint_dir
  // resume although the data set, input shape or class count, objective, attack, sigma or input
  // normalization differ (another model or precision is always refused)
  bool allow_changes = false;
};

// Everything that can fail is checked when the trainer is made, before any work: the data sets
// (the test split too when [certify] every > 0), the output paths, the lock on
// run.checkpoint_dir (one run per folder), a run already there (refused unless resumed or
// overwritten), and the checkpoint to resume from.
// Opens split "train" or "test" of the configured data set as the trainer does.
std::unique_ptr<data::Dataset> open_training_split(const TrainConfig& config, const std::string& split);

class Trainer {
 public:
  explicit Trainer(const TrainConfig& config, const TrainerOptions& options = {});
  ~Trainer();
  // Trains the remaining epochs; returns the stats of the epochs run now (none when a resumed
  // run had already finished). Every step marks non-finite losses and gradients on the device;
  // the mark is read once per epoch, and a diverged run stops with an error before it writes a
  // checkpoint or a log line, so the last checkpoint stays the last finite one.
  std::vector<EpochStats> run();
  layers::Module& model();
  // Where checkpoints are written (<checkpoint_dir>/checkpoint.safetensors).
  std::string checkpoint_path() const;
  // Epochs completed (after resume: those of the checkpoint).
  int64_t epochs_done() const;
  // The epoch of the checkpoint this run has in run.checkpoint_dir (the one resumed there, or the
  // last written); 0 when there is none yet. What an interrupted run keeps.
  int64_t checkpoint_epoch() const;

 private:
  void resume(const std::string& checkpoint_path, bool allow_changes);
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace macer
