// What the trainer (macer/train/trainer.cpp) tells its user: the startup lines, the epoch's JSON
// log line and its console line (README, "Training"), and what decides a run's bits.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/dataset.h"
#include "data/loader.h"
#include "engine/device.h"
#include "macer/config.h"
#include "macer/train/trainer.h"

namespace macer {

// What decides the bits of a run, besides the config: recorded in every log line, in the
// checkpoint and on the startup line (README, "What decides the bits").
struct Arithmetic {
  int64_t threads = 1;
  std::string conv, precision;  // the convolution path (kernels/conv2d.h); run.precision
};
Arithmetic arithmetic_of(Device device, const std::string& precision);

// To stderr, on rank 0: the model, objective, device and arithmetic; the data (images, classes,
// the train_count sample); the batches per step and per epoch; the test images certified
// (test_set non-null when certify.every > 0); notes on settings that take no effect within
// optim.epochs; where a resumed run continues (epochs_done > 0).
void print_startup_lines(const TrainConfig& c, const Arithmetic& arith, Device device, const data::Dataset& train,
                         const std::vector<int64_t>& train_indices, const data::Loader& loader, int world,
                         const data::Dataset* test_set, const std::vector<int64_t>& certify_indices,
                         int64_t epochs_done);

// The epoch's log line (one JSON object; train.jsonl): the objective's two terms (cl, rl) when
// `terms`, with lambda where the objective has one (MACER, Consistency) and the active fraction
// for MACER; the test figures when run (st.test_loss >= 0); the attack's schedule.
nlohmann::ordered_json epoch_log_line(const TrainConfig& c, const EpochStats& st, bool terms, int64_t step, int world,
                                      const Arithmetic& arith);
// The same epoch in one console line, to stderr.
void print_epoch_line(const std::string& method, const EpochStats& st, bool terms);

}  // namespace macer
