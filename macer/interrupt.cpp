// The SIGINT/SIGTERM flag of macer/interrupt.h: the signals are blocked in every thread and taken
// synchronously by one watcher thread (sigwait), so no thread is ever interrupted asynchronously
// (an asynchronous handler, even one that only stored a flag, corrupted the heap now and then:
// cli_walk_three's Ctrl-C case aborted in about 1 run of 6).
#include "macer/interrupt.h"

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <thread>

namespace macer {

namespace {
std::atomic<int> received{0};

void watch(sigset_t set) {
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (received.exchange(sig) != 0) _exit(128 + sig);  // a second Ctrl-C: at once, as without the watcher
  }
}
}  // namespace

void install_interrupt_handlers() {
  static bool installed = false;
  if (installed) return;
  installed = true;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  // A handler of its own, so that a signal ignored by the parent (a shell's background job has
  // SIGINT ignored) still arrives; it runs only in a thread started before this call (blocked
  // everywhere else), and then only records the signal.
  struct sigaction sa = {};
  sa.sa_handler = [](int sig) {
    int none = 0;
    received.compare_exchange_strong(none, sig);
  };
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // this thread and every thread it starts from now on
  std::thread(watch, set).detach();
}

int interrupt_signal() { return received.load(); }

void check_interrupt() {
  if (const int sig = received.load()) throw Interrupted(sig);
}

}  // namespace macer
