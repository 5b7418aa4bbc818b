// Seed derivation for data/: splitmix64 and a mix of (seed, a, b) into one 64-bit seed, so
// every random draw (shuffle, augmentation, synthetic images) depends only on its own key.
#pragma once
#include <cstdint>

namespace macer::data {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// A seed for the stream keyed by (seed, a, b); distinct keys give unrelated streams.
inline uint64_t mix_seed(uint64_t seed, uint64_t a, uint64_t b) {
  return splitmix64(splitmix64(splitmix64(seed) ^ a) ^ b);
}

// Salts that keep the loader's and the synthetic set's streams apart from augmentation's.
constexpr uint64_t kShuffleSalt = 0x53485546464C4521ull;    // "SHUFFLE!"
constexpr uint64_t kSyntheticSalt = 0x53594E5448455449ull;  // "SYNTHETI"
constexpr uint64_t kResizedCropSalt = 0x5252435F43524F50ull;  // "RRC_CROP"

}  // namespace macer::data
