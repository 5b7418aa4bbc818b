// Image file decoding with PIL's results (Image.open(path).convert('RGB')), for image folders:
// JPEG through libjpeg-turbo, PNG through libpng, WebP through libwebp, TIFF through libtiff,
// BMP and binary PPM/PGM through stb_image. Part of data/, used by data/image_folder.cpp.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace macer::data {

// An 8-bit RGB image: pixels (height, width, 3), row-major.
struct RgbImage {
  int width = 0, height = 0;
  std::vector<uint8_t> pixels;
};

// Decodes a whole image file (its format told by its first bytes, as PIL does, not by its name)
// to the pixels PIL's convert('RGB') gives:
// - JPEG: libjpeg's default (islow DCT, fancy upsampling); grey replicated; 4-channel (CMYK, or
//   YCCK converted to CMYK by libjpeg) read inverted as Adobe writes it, with or without an
//   Adobe marker (PIL's "CMYK;I"), then R = (255-K) - C*(255-K)/255 rounded (Pillow's cmyk2rgb).
//   A file cut short (libjpeg's "premature end of JPEG file") is refused, as PIL refuses it.
// - PNG: every chunk's CRC checked; palette expanded, grey replicated, alpha dropped (not
//   composited), 16-bit RGB to its high byte (PIL's "RGB;16B"); 16-bit grey, which PIL's
//   convert('RGB') saturates, is refused; a file cut before IEND is refused.
// - WebP: still images only (an animation is refused); alpha dropped.
// - TIFF: 8-bit grey, palette or RGB without extra samples (others refused by name).
// - BMP, PPM (P6) and PGM (P5) with maxval 255 (others refused by name).
// Throws macer::Error "<path>: <what is wrong>".
RgbImage decode_image(const uint8_t* bytes, size_t size, const std::string& path);

// As above, but a JPEG is decoded at 1/jpeg_scale of its size (1, 2, 4 or 8) by libjpeg's scaled
// inverse DCT: ceil(width / jpeg_scale) x ceil(height / jpeg_scale) pixels, much faster, and not
// PIL's pixels (PIL's draft mode does the same). For training crops only; other formats as above.
RgbImage decode_image_scaled(const uint8_t* bytes, size_t size, const std::string& path, int jpeg_scale);

// A JPEG's width and height from its header; false for anything else (or a header libjpeg refuses).
bool jpeg_dimensions(const uint8_t* bytes, size_t size, int* width, int* height);

// Reads `path` whole and decodes it (as above).
RgbImage decode_image_file(const std::string& path);

}  // namespace macer::data
