// The training loop of bin/macer_train: data, model, objective, SGD, schedules, progress lines,
// one JSON log line per epoch, checkpoints and resume, and certification every N epochs.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "layers/module.h"
#include "macer/config.h"

namespace macer {

struct EpochStats {
  int64_t epoch = 0;  // 1-based
  double lr = 0, lambda = 0;
  double loss = 0, cl = 0, rl = 0;   // means per input over the epoch
  double active_fraction = 0;        // MACER: inputs whose robustness term is active
  double train_accuracy = 0;         // of the smoothed (majority-vote over k copies) prediction
  double seconds = 0, samples_per_second = 0;  // samples = noisy copies through the network
  std::string certify_json;          // summary of the in-training certification, when run
};

class Trainer {
 public:
  explicit Trainer(const TrainConfig& config);
  ~Trainer();
  // Continues from a checkpoint written by this trainer: weights, buffers, momentum, epoch, step.
  void resume(const std::string& checkpoint_path);
  // Trains the remaining epochs; returns the stats of the epochs run now.
  std::vector<EpochStats> run();
  layers::Module& model();
  // Where the last checkpoint was written.
  std::string checkpoint_path() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace macer
