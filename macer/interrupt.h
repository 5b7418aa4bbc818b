// Ctrl-C (SIGINT) and SIGTERM for both programs: the handler only records the signal; training
// checks it between steps and certification between images, so the loop ends cleanly.
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

// Installs the handlers for SIGINT and SIGTERM (sigaction, SA_RESETHAND: a second signal ends
// the process at once, as without them). For a single process only: under mpirun a rank that
// stopped alone would leave the others waiting in a collective, so there the defaults stay.
void install_interrupt_handlers();
// The signal received since install_interrupt_handlers(), 0 when none.
int interrupt_signal();
// Throws Interrupted when a signal was received.
void check_interrupt();

}  // namespace macer
