// Training augmentation (see augment.h): random crop from the zero-padded image and random
// horizontal flip, each image's draw keyed by (seed, epoch, index). Part of data/.
#include "data/augment.h"

#include <random>

#include "data/seed.h"

namespace macer::data {

AugmentDraw draw_augment(const AugmentOptions& opt, uint64_t seed, int64_t epoch, int64_t index) {
  std::mt19937_64 rng(mix_seed(seed, uint64_t(epoch), uint64_t(index)));
  AugmentDraw d;
  // Raw engine output (not std::uniform_int_distribution) so every library draws the same.
  if (opt.crop && opt.padding > 0) {
    const uint64_t span = uint64_t(2 * opt.padding + 1);
    d.dy = int(rng() % span) - opt.padding;
    d.dx = int(rng() % span) - opt.padding;
  }
  if (opt.flip) d.flip = (rng() >> 63) != 0;
  return d;
}

void apply_augment(const float* in, float* out, int c, int h, int w, const AugmentDraw& d) {
  for (int ch = 0; ch < c; ++ch) {
    const float* src = in + size_t(ch) * h * w;
    float* dst = out + size_t(ch) * h * w;
    for (int y = 0; y < h; ++y) {
      const int sy = y + d.dy;
      float* row = dst + size_t(y) * w;
      if (sy < 0 || sy >= h) {
        for (int x = 0; x < w; ++x) row[x] = 0.0f;
        continue;
      }
      for (int x = 0; x < w; ++x) {
        const int xc = d.flip ? w - 1 - x : x;  // the flip acts on the cropped image
        const int sx = xc + d.dx;
        row[x] = (sx >= 0 && sx < w) ? src[size_t(sy) * w + sx] : 0.0f;
      }
    }
  }
}

void augment_image(const float* in, float* out, int c, int h, int w, const AugmentOptions& opt, uint64_t seed,
                   int64_t epoch, int64_t index) {
  apply_augment(in, out, c, h, w, draw_augment(opt, seed, epoch, index));
}

}  // namespace macer::data
