// The four noise streams of the method: training, certification by macer_certify, the
// certification run during training, and the attacks' own draws (random directions, mixing). All draw Philox(seed, counter); the top two bits of the
// 64-bit counter name the stream, so no two streams ever share a draw, whatever the seed.
#pragma once
#include <cstdint>

namespace macer::noise {

constexpr uint64_t kStreamBits = uint64_t(3) << 62;
constexpr uint64_t kTraining = 0;                        // counter = optimizer step
constexpr uint64_t kCertify = uint64_t(1) << 62;         // | image * 2^20 + phase * 2^19 + batch
constexpr uint64_t kTrainingCertify = uint64_t(2) << 62; // the same layout as kCertify
constexpr uint64_t kAttack = uint64_t(3) << 62;          // | step * 2^10 + attack step (1023: mixing)
constexpr uint64_t kMaxCounter = (uint64_t(1) << 62) - 1;  // counters within a stream

// The stream a counter belongs to (one of the constants above).
constexpr uint64_t stream_of(uint64_t counter) { return counter & kStreamBits; }

}  // namespace macer::noise
