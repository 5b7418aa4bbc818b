// Ctrl-C (SIGINT) and SIGTERM for both programs: a watcher thread only records the signal;
// training checks it between steps and certification between images, so the loop ends cleanly.
#pragma once
#include <exception>

namespace macer {

// Thrown by check_interrupt() once a handled signal arrived; the program then says in one line
// what is kept and exits 128 + signal (130 for SIGINT, 143 for SIGTERM).
struct Interrupted : std::exception {
  explicit Interrupted(int sig) : signal(sig) {}
  int signal;
  const char* what() const noexcept override { return "interrupted"; }
};

// Takes SIGINT and SIGTERM from now on: blocks them in the calling thread (and so in every thread
// it starts later: call it before any other thread starts) and starts a watcher thread that
// records the first and ends the process at a second, as without it. For a single process only:
// under mpirun a rank that stopped alone would leave the others waiting in a collective, so there
// the defaults stay.
void install_interrupt_handlers();
// The signal received since install_interrupt_handlers(), 0 when none.
int interrupt_signal();
// Throws Interrupted when a signal was received.
void check_interrupt();

}  // namespace macer
