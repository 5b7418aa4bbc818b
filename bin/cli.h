// What the programs share around their work: CLI11 parsing that turns a bad flag into one
// `error:` line (exit 2; "did you mean" for a typo), and exceptions into one `error:` line
// (3: out of memory, else 1), for one process or for every rank of a job.
#pragma once
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <regex>
#include <string>
#include <vector>

#include "kernels/check.h"
#include "macer/config.h"
#include "macer/distributed.h"

namespace macer::cli {

// The option of `app` closest to `flag` ("--outfile", "--outfile=x") by edit distance of the
// names without their dashes, when close enough to be a typo of it (at most half the given
// name's length, at least 2: "outfile" -> "output" is 4 of 7); "" otherwise.
inline std::string closest_option(const CLI::App& app, const std::string& flag) {
  std::string given = flag.substr(0, flag.find('='));
  given.erase(0, given.find_first_not_of('-'));
  std::string best;
  size_t best_distance = std::max<size_t>(2, (given.size() + 1) / 2) + 1;
  for (const CLI::Option* opt : app.get_options()) {
    std::vector<std::string> names;
    for (const auto& n : opt->get_lnames()) names.push_back("--" + n);
    for (const auto& n : opt->get_snames()) names.push_back("-" + n);
    for (const auto& n : names) {
      size_t d = edit_distance(given, n.substr(n.find_first_not_of('-')));
      if (d < best_distance) best_distance = d, best = n;
    }
  }
  return best;
}

// What to do about arguments the program does not take (`extras`, CLI11's remaining() in the
// order given): for each unknown flag the closest known one; when there is no flag among them,
// `positional_hint` (how the program takes what a user may have meant, e.g. "macer_certify
// takes the checkpoint as --checkpoint FILE"); then where the flags are listed.
inline std::string extras_hint(const CLI::App& app, const std::vector<std::string>& extras,
                               const std::string& program, const char* positional_hint) {
  std::string hint;
  for (const auto& e : extras) {
    bool is_flag = e.size() > 1 && e[0] == '-' && !std::isdigit(static_cast<unsigned char>(e[1])) && e[1] != '.';
    if (!is_flag) continue;
    std::string given = e.substr(0, e.find('=')), near = closest_option(app, e);
    hint += (hint.empty() ? "" : "; ") +
            (near.empty() ? given + " is not an option of " + program : given + ": did you mean " + near + "?");
  }
  if (hint.empty() && positional_hint) hint = positional_hint;
  return (hint.empty() ? "" : hint + "; ") + "see " + program + " --help";
}

// CLI11's range refusal ("--radius-step: Value 0 not in range 0.001000 to 1000.000000") in the
// house's words: "--radius-step 0 is out of range: pass a value from 0.001 to 1000"; any other
// message as it is.
inline std::string range_message(const std::string& message) {
  static const std::regex range(R"(^(\S+): Value (\S+) not in range (\S+) to (\S+)$)");
  std::smatch m;
  if (!std::regex_match(message, m, range)) return message;
  auto plain = [](std::string v) {  // 0.001000 -> 0.001, 1000.000000 -> 1000
    if (v.find('.') != std::string::npos && v.find_first_of("eE") == std::string::npos) {
      v.erase(v.find_last_not_of('0') + 1);
      if (v.back() == '.') v.pop_back();
    }
    return v;
  };
  return m[1].str() + " " + m[2].str() + " is out of range: pass a value from " + plain(m[3].str()) + " to " +
         plain(m[4].str());
}

// Parses argv; returns -1 when the program should go on, else its exit code (0 after --help).
// A refusal is one `error:` line (exit 2); arguments the program does not take get a hint
// (extras_hint, with `positional_hint` for stray words).
inline int parse(CLI::App& app, int argc, char** argv, const char* positional_hint = nullptr) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Every rank parses the same flags: rank 0 speaks for them.
    int code = e.get_exit_code() == 0 ? (dist::is_root() ? app.exit(e) : 0) : 2;
    if (code == 2 && dist::is_root()) {
      std::string message = range_message(e.what());
      std::string program = argc > 0 ? std::filesystem::path(argv[0]).filename().string() : app.get_name();
      if (dynamic_cast<const CLI::RequiredError*>(&e)) {  // "config is required": how to call the program
        std::string usage = CLI::Formatter().make_usage(&app, program);  // "Usage: prog [OPTIONS] config\n"
        usage.erase(0, usage.find_first_not_of('\n'));
        usage.erase(usage.find_last_not_of('\n') + 1);
        if (usage.rfind("Usage: ", 0) == 0) usage.erase(0, 7);
        message += "; usage: " + usage + "; see " + program + " --help";
      }
      if (dynamic_cast<const CLI::ExtrasError*>(&e)) {  // CLI11 names them last to first: in order here
        std::vector<std::string> extras = app.remaining();
        message = program + " does not take";
        for (const auto& x : extras) message += " " + x;
        message += ": " + extras_hint(app, extras, program, positional_hint);
      }
      std::fprintf(stderr, "error: %s\n", message.c_str());
    }
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
