// What the programs share around their work: CLI11 parsing that turns a bad flag into one
// `error:` line (exit 2), and exceptions into one `error:` line (3: out of memory, else 1).
#pragma once
#include <CLI/CLI.hpp>
#include <cstdio>
#include <functional>

#include "kernels/check.h"

namespace macer::cli {

// Parses argv; returns -1 when the program should go on, else its exit code (0 after --help).
inline int parse(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
  return -1;
}

// Runs the program's body; an exception ends it with one `error:` line.
inline int run(const std::function<int()>& body, const char* out_of_memory_hint) {
  try {
    return body();
  } catch (const OutOfMemory& e) {
    std::fprintf(stderr, "error: %s (%s)\n", e.what(), out_of_memory_hint);
    return 3;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}

}  // namespace macer::cli
