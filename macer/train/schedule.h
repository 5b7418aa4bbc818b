// Per-epoch schedules of training: the MACER weight lambda (constant, or deferred: 0 for a
// warm-up) and the MultiStep learning rate. Pure functions of the (0-based) epoch.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace macer {

// "constant": lambda every epoch. "deferred": 0 for epochs [0, warmup_epochs), then lambda.
// Throws macer::Error on an unknown kind, a negative or non-finite lambda, a negative warm-up,
// or a warm-up given to the constant schedule (where it would be silently ignored).
class LambdaSchedule {
 public:
  LambdaSchedule(const std::string& kind, double lambda, int64_t warmup_epochs = 0);
  double at(int64_t epoch) const;

 private:
  bool deferred_;
  double lambda_;
  int64_t warmup_;
};

// lr * factor^(number of milestones <= epoch), as PyTorch's MultiStepLR stepped once per epoch:
// milestones {200, 400} give lr for epochs 0..199, lr*factor for 200..399, lr*factor^2 after.
// Throws macer::Error unless lr > 0, factor > 0 (both finite) and milestones are >= 0 and
// strictly increasing.
class MultiStepLr {
 public:
  MultiStepLr(double lr, std::vector<int64_t> milestones, double factor);
  double at(int64_t epoch) const;

 private:
  double lr_, factor_;
  std::vector<int64_t> milestones_;
};

}  // namespace macer
