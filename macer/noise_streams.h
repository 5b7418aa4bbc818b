// The five noise streams of the method: training, certification by macer_certify, the
// certification run during training, the noisy test loss logged each epoch, and the attacks' own
// draws (random directions, mixing). All draw Philox(seed, counter); the top three bits of the
// 64-bit counter name the stream (the values of the first four are those of the two-bit layout
// they had before the attacks' stream came), so no two streams ever share a draw, whatever the seed.
#pragma once
#include <cstdint>

namespace macer::noise {

constexpr uint64_t kStreamBits = uint64_t(7) << 61;
constexpr uint64_t kTraining = 0;                        // counter = optimizer step
constexpr uint64_t kCertify = uint64_t(2) << 61;         // | image * 2^20 + phase * 2^19 + batch
constexpr uint64_t kTrainingCertify = uint64_t(4) << 61; // the same layout as kCertify
constexpr uint64_t kTest = uint64_t(6) << 61;            // | batch number: the test loss of each epoch
constexpr uint64_t kAttack = uint64_t(7) << 61;          // | step * 2^10 + attack step (1023: mixing)
constexpr uint64_t kMaxCounter = (uint64_t(1) << 61) - 1;  // counters within a stream

// The stream a counter belongs to (one of the constants above).
constexpr uint64_t stream_of(uint64_t counter) { return counter & kStreamBits; }

}  // namespace macer::noise
