// Progress reporting for long work: on a terminal one line redrawn in place (done/total, rate,
// ETA, caller's fields); otherwise a plain line every `every` updates, for logs and CI.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace macer {

class Progress {
 public:
  // `unit` names what is counted ("img", "samples"); rate is counted in `rate_units` per item.
  // `quiet`: prints nothing (the ranks of a data-parallel job other than rank 0).
  Progress(std::string label, int64_t total, std::string unit, int64_t plain_every, bool quiet = false);
  // Reports `done` items; `fields` are printed after the rate (e.g. "loss 0.52").
  void update(int64_t done, const std::string& fields = "", double rate_units_done = -1);
  // Ends the line on a terminal.
  void finish();
  double elapsed_seconds() const;

 private:
  std::string label_, unit_;
  int64_t total_, plain_every_, last_plain_ = -1;
  bool terminal_, quiet_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

std::string format_duration(double seconds);  // "1h02m", "3m05s", "12s"

}  // namespace macer
