// PIL's bilinear resize with antialiasing (Image.resize(size, Image.BILINEAR)), which
// torchvision's Resize applies to PIL images. Part of data/, used by data/image_folder.cpp.
#pragma once
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
