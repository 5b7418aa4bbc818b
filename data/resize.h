// PIL's bilinear resize with antialiasing (Image.resize(size, Image.BILINEAR)), which
// torchvision's Resize applies to PIL images. Part of data/, used by data/image_folder.cpp.
#pragma once
#include <cstdint>
#include <utility>

#include "data/decode.h"

namespace macer::data {

// Resizes `in` to out_width x out_height as Pillow 9.4's ImagingResample (Resample.c) does with
// the bilinear filter, bit for bit: a triangle filter of support 1 widened by the scale factor
// when shrinking (the antialiasing), coefficients normalised per output pixel and rounded to
// 22-bit fixed point, a horizontal pass (8-bit intermediate, only the rows the vertical pass
// reads) then a vertical pass, each sum rounded and clipped to 0..255. Sizes must be >= 1.
RgbImage resize_bilinear_pil(const RgbImage& in, int out_width, int out_height);

// torchvision's Resize(size) output size for an int size: the shorter side becomes `size`, the
// longer int(size * long / short) (truncated). Returns {width, height}.
std::pair<int, int> resized_shorter_side(int width, int height, int size);

}  // namespace macer::data

namespace macer::data {

// A crop box in an image: rows [top, top + height), columns [left, left + width).
struct CropBox {
  int top = 0, left = 0, height = 0, width = 0;
};

// torchvision's RandomResizedCrop.get_params(img, scale=(0.08, 1), ratio=(3/4, 4/3)) for a
// width x height image, drawn from std::mt19937_64 seeded with `seed` (the distribution is
// torchvision's; the stream is not torch's): up to 10 tries of area fraction ~ U(0.08, 1) and
// log aspect ratio ~ U(log 3/4, log 4/3), w = round(sqrt(area * ratio)), h = round(sqrt(area /
// ratio)), kept when it fits, at a uniform position; else the whole image cut to the nearest
// allowed ratio, centred.
CropBox random_resized_crop_box(int width, int height, uint64_t seed);

// The pixels of `box` (which must lie inside `in`), as PIL's Image.crop.
RgbImage crop(const RgbImage& in, const CropBox& box);

}  // namespace macer::data
