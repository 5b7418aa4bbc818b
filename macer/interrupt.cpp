// The SIGINT/SIGTERM flag of macer/interrupt.h: an async-signal-safe handler that stores the
// signal number, read between training steps and certified images.
#include "macer/interrupt.h"

#include <csignal>

namespace macer {

namespace {
volatile std::sig_atomic_t received = 0;

extern "C" void on_signal(int sig) { received = sig; }  // async-signal-safe: one store
}  // namespace

void install_interrupt_handlers() {
  struct sigaction sa = {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND | SA_RESTART;  // a second Ctrl-C: the default action, at once
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

int interrupt_signal() { return received; }

void check_interrupt() {
  if (received != 0) throw Interrupted(received);
}

}  // namespace macer
