// What the programs share around their work: CLI11 parsing that turns a bad flag into one
// `error:` line (exit 2), and exceptions into one `error:` line (3: out of memory, else 1),
// for one process or for every rank of a job.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdio>
#include <functional>
#include <string>

#include "kernels/check.h"
#include "macer/distributed.h"

namespace macer::cli {

// Parses argv; returns -1 when the program should go on, else its exit code (0 after --help).
inline int parse(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Every rank parses the same flags: rank 0 speaks for them.
    int code = e.get_exit_code() == 0 ? (dist::is_root() ? app.exit(e) : 0) : 2;
    if (code == 2 && dist::is_root()) std::fprintf(stderr, "error: %s\n", e.what());
    dist::finalize();
    return code;
  }
  return -1;
}

// Runs the program's body; an exception ends it with one `error:` line. In a job of several
// ranks (macer/distributed.h) an error on one rank ends them all, named by its rank unless it
// is rank 0's; an error every rank meets together is printed once, by rank 0.
inline int run(const std::function<int()>& body, const char* out_of_memory_hint) {
  auto fail = [](int code, const std::string& message) {
    if (dist::size() == 1) {
      std::fprintf(stderr, "error: %s\n", message.c_str());
      dist::finalize();  // a world of one under mpirun -np 1 still ends cleanly
      return code;
    }
    if (dist::is_root())
      std::fprintf(stderr, "error: %s\n", message.c_str());
    else
      std::fprintf(stderr, "error: rank %d: %s\n", dist::rank(), message.c_str());
    std::fflush(stderr);
    dist::abort_all(code);
  };
  try {
    int code = body();
    dist::finalize();
    return code;
  } catch (const dist::CollectiveError& e) {
    if (dist::is_root()) std::fprintf(stderr, "error: %s\n", e.what());
    dist::finalize();
    return 1;
  } catch (const OutOfMemory& e) {
    return fail(3, std::string(e.what()) + " (" + out_of_memory_hint + ")");
  } catch (const std::exception& e) {
    return fail(1, e.what());
  }
}

}  // namespace macer::cli
