// The lambda and learning-rate schedules of macer/schedule.h: validation at construction,
// then plain arithmetic on the epoch number.
#include "macer/train/schedule.h"

#include <cmath>
#include <utility>

#include "kernels/check.h"

namespace macer {

LambdaSchedule::LambdaSchedule(const std::string& kind, double lambda, int64_t warmup_epochs)
    : deferred_(kind == "deferred"), lambda_(lambda), warmup_(warmup_epochs) {
  MACER_CHECK(kind == "constant" || kind == "deferred",
              "unknown lambda schedule '" << kind << "' (valid: constant, deferred)");
  MACER_CHECK(std::isfinite(lambda) && lambda >= 0, "lambda must be finite and >= 0, got " << lambda);
  MACER_CHECK(warmup_epochs >= 0, "lambda warm-up epochs must be >= 0, got " << warmup_epochs);
  MACER_CHECK(deferred_ || warmup_epochs == 0,
              "lambda warm-up of " << warmup_epochs
                                   << " epochs needs lambda_schedule = \"deferred\" (it is \"constant\")");
}

double LambdaSchedule::at(int64_t epoch) const {
  return deferred_ && epoch < warmup_ ? 0.0 : lambda_;
}

MultiStepLr::MultiStepLr(double lr, std::vector<int64_t> milestones, double factor)
    : lr_(lr), factor_(factor), milestones_(std::move(milestones)) {
  MACER_CHECK(std::isfinite(lr) && lr > 0, "learning rate must be finite and > 0, got " << lr);
  MACER_CHECK(std::isfinite(factor) && factor > 0, "learning-rate factor must be finite and > 0, got " << factor);
  for (size_t i = 0; i < milestones_.size(); ++i) {
    MACER_CHECK(milestones_[i] >= 0, "learning-rate milestone " << milestones_[i] << " is negative");
    MACER_CHECK(i == 0 || milestones_[i] > milestones_[i - 1],
                "learning-rate milestones must increase strictly, got " << milestones_[i - 1]
                                                                         << " then " << milestones_[i]);
  }
}

double MultiStepLr::at(int64_t epoch) const {
  double lr = lr_;
  for (int64_t m : milestones_)
    if (m <= epoch) lr *= factor_;
  return lr;
}

}  // namespace macer
