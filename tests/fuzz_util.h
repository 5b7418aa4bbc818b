// The bounded mutation fuzzer behind tests/test_fuzz_*.cpp: deterministic seeded mutations of a
// valid input, and the check that a parser given one either succeeds or throws a clear macer::Error.
#pragma once
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <typeinfo>
#include <vector>

#include "kernels/check.h"

namespace fuzz {

using Bytes = std::vector<uint8_t>;

// splitmix64: small, fast and the same everywhere, so mutation i of a run is reproducible.
struct Rng {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return n == 0 ? 0 : size_t(next() % n); }
};

// Values that break length, count and size fields: zero, one, sign and width boundaries.
inline const std::vector<uint64_t>& interesting() {
  static const std::vector<uint64_t> v = {0,          1,          2,          3,          4,
                                          7,          8,          16,         32,         64,
                                          0x7f,       0x80,       0xff,       0x100,      0x3ff,
                                          0x400,      0x7fff,     0x8000,     0xffff,     0x10000,
                                          0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0x100000000ull,
                                          0x7fffffffffffffffull, 0x8000000000000000ull, 0xffffffffffffffffull};
  return v;
}

// Where a mutation lands: half the time among the first `hot` bytes (where headers and length
// fields sit), else anywhere; half the time rounded down to a multiple of 4, where most
// integer fields sit.
inline size_t pick_offset(const Bytes& b, Rng& r, size_t hot) {
  if (b.empty()) return 0;
  size_t at = r.below(2) && hot > 0 ? r.below(std::min(hot, b.size())) : r.below(b.size());
  if (r.below(2)) at &= ~size_t(3);
  return at;
}

// Applies one mutation: a bit flip, a byte set, an interesting integer (2, 4 or 8 bytes, either
// byte order, +-1), a truncation, an insertion, a chunk duplicated or deleted, or a token spliced in.
inline void mutate_once(Bytes& b, Rng& r, size_t hot, const std::vector<std::string>& tokens) {
  const size_t at = pick_offset(b, r, hot);
  switch (r.below(9)) {
    case 0:
      if (!b.empty()) b[at] ^= uint8_t(1u << r.below(8));
      break;
    case 1: {
      static const uint8_t bytes[] = {0, 1, 0x7f, 0x80, 0xff, '0', '9', '"', '\n'};
      if (!b.empty()) b[at] = r.below(2) ? uint8_t(r.next()) : bytes[r.below(sizeof bytes)];
      break;
    }
    case 2: {
      const size_t width = size_t(2) << r.below(3);  // 2, 4 or 8
      uint64_t v = interesting()[r.below(interesting().size())] + (uint64_t(r.below(3)) - 1);
      const bool big_endian = r.below(2);
      for (size_t k = 0; k < width && at + k < b.size(); ++k)
        b[at + k] = uint8_t(v >> (8 * (big_endian ? width - 1 - k : k)));
      break;
    }
    case 3:
      b.resize(r.below(b.size() + 1));
      break;
    case 4: {
      Bytes ins(1 + r.below(16));
      for (auto& x : ins) x = uint8_t(r.next());
      b.insert(b.begin() + std::ptrdiff_t(std::min(at, b.size())), ins.begin(), ins.end());
      break;
    }
    case 5: {  // duplicate a chunk somewhere else
      if (b.empty()) break;
      const size_t from = r.below(b.size()), len = 1 + r.below(std::min<size_t>(b.size() - from, 64));
      Bytes chunk(b.begin() + std::ptrdiff_t(from), b.begin() + std::ptrdiff_t(from + len));
      b.insert(b.begin() + std::ptrdiff_t(std::min(at, b.size())), chunk.begin(), chunk.end());
      break;
    }
    case 6: {  // delete a chunk
      if (b.empty()) break;
      const size_t len = 1 + r.below(std::min<size_t>(b.size() - at, 64));
      b.erase(b.begin() + std::ptrdiff_t(at), b.begin() + std::ptrdiff_t(at + len));
      break;
    }
    default: {  // a token of the format (text formats), else a random byte
      if (tokens.empty()) {
        b.insert(b.begin() + std::ptrdiff_t(std::min(at, b.size())), uint8_t(r.next()));
        break;
      }
      const std::string& t = tokens[r.below(tokens.size())];
      b.insert(b.begin() + std::ptrdiff_t(std::min(at, b.size())), t.begin(), t.end());
    }
  }
}

// Mutant number `i` of `seed_input`: one to four mutations drawn from generator (salt, i).
inline Bytes mutant(const Bytes& seed_input, uint64_t salt, uint64_t i, size_t hot = 64,
                    const std::vector<std::string>& tokens = {}) {
  Rng r{salt * 0x100000001b3ull + i};
  Bytes b = seed_input;
  const size_t n = 1 + r.below(4);
  for (size_t k = 0; k < n; ++k) mutate_once(b, r, hot, tokens);
  return b;
}

// Writes `b` to `path` as a new file. Unlinking first keeps ext4 from flushing a file that is
// truncated and rewritten thousands of times (its auto_da_alloc), which made the runs I/O-bound.
inline void write_file(const std::string& path, const Bytes& b) {
  std::remove(path.c_str());
  std::FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  // An empty mutant has no data() to pass (fwrite's buffer must not be null): an empty file.
  if (!b.empty()) REQUIRE(std::fwrite(b.data(), 1, b.size(), f) == b.size());
  REQUIRE(std::fclose(f) == 0);
}

// What one input did: accepted, rejected with a clear error, or a problem to report.
struct Tally {
  int accepted = 0, rejected = 0;
};

// Runs `parse` and returns "" when it succeeded or threw a macer::Error whose message is
// non-empty and contains `must_name` (the file, when the API names one). Anything else
// (another exception type, an empty or anonymous message) comes back as a description.
template <typename F> std::string check_input(F&& parse, const std::string& must_name, Tally& tally) {
  try {
    parse();
    ++tally.accepted;
    return "";
  } catch (const macer::Error& e) {
    const std::string msg = e.what();
    if (msg.empty()) return "macer::Error with an empty message";
    if (msg.find(must_name) == std::string::npos) return "error does not name '" + must_name + "': " + msg;
    ++tally.rejected;
    return "";
  } catch (const std::exception& e) {
    return std::string("a ") + typeid(e).name() + " instead of macer::Error: " + e.what();
  }
}

// The fuzz loop for one parser: the valid input must parse, then `count` mutants of it (salt
// `salt`) each succeed or fail clearly. Both outcomes must occur, so that mutants get past
// the first check. `parse` takes the bytes (and writes them where the parser reads them).
template <typename F>
Tally run(const std::string& what, const Bytes& valid, uint64_t salt, int count, size_t hot,
          const std::vector<std::string>& tokens, const std::string& must_name, F&& parse) {
  Tally tally;
  const auto start = std::chrono::steady_clock::now();
  {
    INFO(what << ": the valid input");
    REQUIRE_NOTHROW(parse(valid));
  }
  for (int i = 0; i < count; ++i) {
    const Bytes b = mutant(valid, salt, uint64_t(i), hot, tokens);
    INFO(what << ": mutant " << i << " of salt " << salt << " (" << b.size() << " bytes)");
    const std::string problem = check_input([&] { parse(b); }, must_name, tally);
    if (!problem.empty()) FAIL(problem);
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("fuzz %-28s %5d mutants: %5d accepted, %5d rejected, %.2f s\n", what.c_str(), count,
              tally.accepted, tally.rejected, s);
  std::fflush(stdout);
  REQUIRE(tally.accepted > 0);
  REQUIRE(tally.rejected > 0);
  return tally;
}

}  // namespace fuzz
