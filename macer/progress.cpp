// Progress lines to stderr: in-place on a terminal (at most 10 redraws a second), plain
// periodic lines otherwise.
#include "macer/progress.h"

#include <cstdio>
#include <unistd.h>

namespace macer {

Progress::Progress(std::string label, int64_t total, std::string unit, int64_t plain_every, bool quiet)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      plain_every_(plain_every > 0 ? plain_every : 1),
      terminal_(isatty(fileno(stderr)) != 0),
      quiet_(quiet),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

std::string format_duration(double s) {
  char buf[32];
  if (!(s >= 0) || s > 1e7) return "?";
  int64_t t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", long(t / 3600), long(t / 60 % 60));
  else if (t >= 60)
    std::snprintf(buf, sizeof buf, "%ldm%02lds", long(t / 60), long(t % 60));
  else
    std::snprintf(buf, sizeof buf, "%lds", long(t));
  return buf;
}

void Progress::update(int64_t done, const std::string& fields, double rate_units_done) {
  if (quiet_) return;
  auto now = std::chrono::steady_clock::now();
  bool last = done >= total_;
  if (terminal_) {
    if (!last && now - last_draw_ < std::chrono::milliseconds(100)) return;
  } else {
    if (!last && done / plain_every_ == last_plain_ / plain_every_) return;
    last_plain_ = done;
  }
  last_draw_ = now;
  double elapsed = elapsed_seconds();
  double units = rate_units_done >= 0 ? rate_units_done : double(done);
  double rate = elapsed > 0 ? units / elapsed : 0;
  double eta = done > 0 ? elapsed * double(total_ - done) / double(done) : -1;
  std::fprintf(stderr, "%s%s %ld/%ld | %.1f %s/s | %s | ETA %s%s", terminal_ ? "\r\033[K" : "",
               label_.c_str(), long(done), long(total_), rate, unit_.c_str(), fields.c_str(),
               format_duration(eta).c_str(), terminal_ ? "" : "\n");
  std::fflush(stderr);
}

void Progress::finish() {
  if (terminal_ && !quiet_) std::fprintf(stderr, "\n");
}

}  // namespace macer
