// Training augmentation: a random crop from the image zero-padded on every side, and a
// random horizontal flip. Each draw is keyed by (seed, epoch, index): reproducible, thread-free.
#pragma once
#include <cstdint>

namespace macer::data {

struct AugmentOptions {
  bool crop = false;  // random crop of the original size from the image padded by `padding`
  int padding = 4;
  bool flip = false;  // horizontal flip with probability 1/2
};

// One image's draw: the crop's shift (out[y][x] = in[y+dy][x+dx], 0 outside) and the flip.
struct AugmentDraw {
  int dy = 0, dx = 0;  // in [-padding, padding]
  bool flip = false;
};

// The draw for image `index` of epoch `epoch`: a std::mt19937_64 seeded from the three.
AugmentDraw draw_augment(const AugmentOptions& opt, uint64_t seed, int64_t epoch, int64_t index);

// out = flip(shift(in)) for one (C, H, W) image; out and in must not overlap.
void apply_augment(const float* in, float* out, int c, int h, int w, const AugmentDraw& d);

// draw_augment then apply_augment.
void augment_image(const float* in, float* out, int c, int h, int w, const AugmentOptions& opt, uint64_t seed,
                   int64_t epoch, int64_t index);

}  // namespace macer::data
