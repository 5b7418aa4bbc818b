// data/decode.h: one decoder per format, each a Debian library driven as Pillow 9.4 drives it
// (JpegDecode.c, PngImagePlugin.py, WebPImagePlugin.py, Convert.c); errors name the file.
#include "data/decode.h"

#include <cctype>
#include <csetjmp>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>

// The one definition of stb_image in the engine, kept file-local: BMP and binary PPM/PGM.
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_FAILURE_USERMSG
#define STBI_ONLY_BMP
#define STBI_ONLY_PNM
#include <stb/stb_image.h>

#include <algorithm>
#include <jpeglib.h>
#include <jerror.h>
#include <png.h>
#include <tiffio.h>
#include <webp/decode.h>

#include "data/io.h"
#include "data/jpeg_check.h"
#include "kernels/check.h"

namespace macer::data {

namespace {

// PIL refuses images of more than 2 * Image.MAX_IMAGE_PIXELS (89478485) pixels as decompression
// bombs; so do we, before allocating them.
void check_pixel_count(int64_t w, int64_t h, const std::string& path) {
  MACER_CHECK(w > 0 && h > 0 && w * h <= 2 * int64_t(89478485),
              path << ": image of " << w << "x" << h << " pixels (PIL refuses more than 178956970 as a decompression bomb)");
}

bool starts(const uint8_t* b, size_t n, const char* magic, size_t m, size_t at = 0) {
  return n >= at + m && std::memcmp(b + at, magic, m) == 0;
}

// ---- JPEG (libjpeg-turbo's libjpeg API; errors leave through longjmp to decode_jpeg) ----

struct JpegContext {
  jpeg_decompress_struct cinfo{};
  jpeg_error_mgr err{};
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX] = "";
  bool truncated = false;
  std::vector<uint8_t> row;  // one decoded scanline (here, not a local: longjmp leaves locals indeterminate)
};

void jpeg_fail(j_common_ptr c) {
  auto* ctx = reinterpret_cast<JpegContext*>(c->client_data);
  c->err->format_message(c, ctx->message);
  std::longjmp(ctx->jump, 1);
}

// Warnings (level -1) are kept going as PIL does, except a file cut short (libjpeg fills the
// missing data with an EOI marker: PIL refuses such a file as "image file is truncated").
void jpeg_message(j_common_ptr c, int level) {
  auto* ctx = reinterpret_cast<JpegContext*>(c->client_data);
  if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) ctx->truncated = true;
}

RgbImage decode_jpeg(const uint8_t* bytes, size_t size, const std::string& path, int scale = 1) {
  check_jpeg_tables(bytes, size, path);
  auto ctx = std::make_unique<JpegContext>();
  auto img = std::make_unique<RgbImage>();
  std::vector<uint8_t>& row = ctx->row;
  jpeg_decompress_struct& ci = ctx->cinfo;
  ci.err = jpeg_std_error(&ctx->err);
  ctx->err.error_exit = jpeg_fail;
  ctx->err.emit_message = jpeg_message;
  ci.client_data = ctx.get();
  if (setjmp(ctx->jump)) {
    jpeg_destroy_decompress(&ci);
    MACER_CHECK(false, path << ": cannot decode JPEG (" << ctx->message << ")");
  }
  jpeg_create_decompress(&ci);
  jpeg_mem_src(&ci, bytes, static_cast<unsigned long>(size));
  jpeg_read_header(&ci, TRUE);
  const int comps = ci.num_components;
  ci.out_color_space = comps == 1 ? JCS_GRAYSCALE : comps == 4 ? JCS_CMYK : JCS_RGB;
  ci.scale_num = 1, ci.scale_denom = unsigned(scale);
  jpeg_start_decompress(&ci);
  const int w = int(ci.output_width), h = int(ci.output_height), n = ci.output_components;
  if (int64_t(w) * h > 2 * int64_t(89478485)) {
    jpeg_destroy_decompress(&ci);
    check_pixel_count(w, h, path);
  }
  img->width = w, img->height = h;
  img->pixels.resize(size_t(w) * h * 3);
  row.resize(size_t(w) * n);
  while (ci.output_scanline < ci.output_height) {
    const size_t y = ci.output_scanline;
    JSAMPROW rows[1] = {row.data()};
    jpeg_read_scanlines(&ci, rows, 1);
    uint8_t* out = img->pixels.data() + y * size_t(w) * 3;
    for (int x = 0; x < w; ++x) {
      const uint8_t* p = row.data() + size_t(x) * n;
      if (n == 1) {
        out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = p[0];
      } else if (n == 3) {
        out[3 * x] = p[0], out[3 * x + 1] = p[1], out[3 * x + 2] = p[2];
      } else {
        // "CMYK;I" inverts the stored bytes; Pillow's cmyk2rgb: nk - C*nk/255 with MULDIV255's rounding.
        const int nk = p[3];  // 255 - (255 - stored K)
        for (int c = 0; c < 3; ++c) {
          const int ci8 = 255 - p[c], t = ci8 * nk + 128;
          out[3 * x + c] = uint8_t(std::clamp(nk - (((t >> 8) + t) >> 8), 0, 255));
        }
      }
    }
    if (ctx->truncated) break;
  }
  if (!ctx->truncated) jpeg_finish_decompress(&ci);
  jpeg_destroy_decompress(&ci);
  MACER_CHECK(!ctx->truncated, path << ": truncated JPEG (the data ends before the image does)");
  return std::move(*img);
}

// ---- PNG (libpng's low-level API; errors leave through png_jmpbuf) ----

struct PngReader {
  const uint8_t* bytes;
  size_t size, at;
  std::string message;
};

void png_read_bytes(png_structp png, png_bytep out, png_size_t n) {
  auto* r = static_cast<PngReader*>(png_get_io_ptr(png));
  if (n > r->size - r->at) png_error(png, "file truncated");
  std::memcpy(out, r->bytes + r->at, n);
  r->at += n;
}

void png_fail(png_structp png, png_const_charp msg) {
  static_cast<PngReader*>(png_get_error_ptr(png))->message = msg;
  png_longjmp(png, 1);
}

void png_warn(png_structp, png_const_charp) {}

RgbImage decode_png(const uint8_t* bytes, size_t size, const std::string& path) {
  auto reader = std::make_unique<PngReader>(PngReader{bytes, size, 0, ""});
  auto img = std::make_unique<RgbImage>();
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, reader.get(), png_fail, png_warn);
  MACER_CHECK(png != nullptr, path << ": libpng could not start");
  png_infop info = png_create_info_struct(png);
  auto rows = std::make_unique<std::vector<png_bytep>>();
  if (setjmp(png_jmpbuf(png))) {  // (only heap state is read here: locals set later are indeterminate)
    png_destroy_read_struct(&png, &info, nullptr);
    MACER_CHECK(reader->message != "grey16", path << ": 16-bit greyscale PNG, which PIL's convert('RGB') "
                                                  << "saturates at 255; save it as 8-bit to use it");
    MACER_CHECK(false, path << ": cannot decode PNG (" << reader->message << ")");
  }
  MACER_CHECK(info != nullptr, path << ": libpng could not start");
  png_set_read_fn(png, reader.get(), png_read_bytes);
  // A wrong CRC ends the read, in critical and ancillary chunks alike.
  png_set_crc_action(png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
  png_set_user_limits(png, 1u << 16, 1u << 16);
  png_read_info(png, info);
  const int type = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
  if (depth == 16 && (type == PNG_COLOR_TYPE_GRAY || type == PNG_COLOR_TYPE_GRAY_ALPHA)) png_error(png, "grey16");
  if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);  // tRNS ignored: no alpha made
  if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (depth == 16) png_set_strip_16(png);  // the high byte, as PIL's "RGB;16B"
  // Alpha, and the transparency a palette or tRNS would expand to, dropped (not composited).
  if ((type & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS)) png_set_strip_alpha(png);
  if (type == PNG_COLOR_TYPE_GRAY || type == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  const int w = int(png_get_image_width(png, info)), h = int(png_get_image_height(png, info));
  if (int64_t(w) * h > 2 * int64_t(89478485)) png_error(png, "more than 178956970 pixels (PIL refuses such a decompression bomb)");
  if (png_get_rowbytes(png, info) != size_t(w) * 3) png_error(png, "unexpected row layout");
  img->width = w, img->height = h;
  img->pixels.resize(size_t(w) * h * 3);
  rows->resize(size_t(h));
  for (int y = 0; y < h; ++y) (*rows)[size_t(y)] = img->pixels.data() + size_t(y) * w * 3;
  png_read_image(png, rows->data());
  png_read_end(png, nullptr);  // the chunks after the image, their CRCs, up to IEND
  png_destroy_read_struct(&png, &info, nullptr);
  return std::move(*img);
}

// ---- WebP ----

RgbImage decode_webp(const uint8_t* bytes, size_t size, const std::string& path) {
  WebPBitstreamFeatures f;
  const VP8StatusCode st = WebPGetFeatures(bytes, size, &f);
  MACER_CHECK(st == VP8_STATUS_OK, path << ": cannot decode WebP (status " << int(st) << ")");
  check_pixel_count(f.width, f.height, path);
  MACER_CHECK(!f.has_animation, path << ": an animated WebP (PIL would take its first frame); save that frame alone");
  RgbImage img;
  img.width = f.width, img.height = f.height;
  img.pixels.resize(size_t(f.width) * f.height * 3);
  MACER_CHECK(WebPDecodeRGBInto(bytes, size, img.pixels.data(), img.pixels.size(), f.width * 3) != nullptr,
              path << ": cannot decode WebP (corrupt or truncated data)");
  return img;
}

// ---- TIFF (libtiff over the bytes in memory) ----

struct TiffMemory {
  const uint8_t* bytes;
  toff_t size, at;
};

tsize_t tiff_read(thandle_t h, tdata_t out, tsize_t n) {
  auto* m = static_cast<TiffMemory*>(h);
  const toff_t left = m->at < m->size ? m->size - m->at : 0;
  const toff_t k = std::min<toff_t>(left, toff_t(n));
  std::memcpy(out, m->bytes + m->at, size_t(k));
  m->at += k;
  return tsize_t(k);
}
tsize_t tiff_write(thandle_t, tdata_t, tsize_t) { return 0; }
toff_t tiff_seek(thandle_t h, toff_t off, int whence) {
  auto* m = static_cast<TiffMemory*>(h);
  m->at = whence == SEEK_SET ? off : whence == SEEK_CUR ? m->at + off : m->size + off;
  return m->at;
}
int tiff_close(thandle_t) { return 0; }
toff_t tiff_size(thandle_t h) { return static_cast<TiffMemory*>(h)->size; }
int tiff_map(thandle_t, tdata_t*, toff_t*) { return 0; }
void tiff_unmap(thandle_t, tdata_t, toff_t) {}

thread_local std::string tiff_message;
void tiff_error(const char*, const char* fmt, va_list ap) {
  char buf[512];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  if (tiff_message.empty()) tiff_message = buf;
}

RgbImage decode_tiff(const uint8_t* bytes, size_t size, const std::string& path) {
  static const bool handlers_set = [] {
    TIFFSetErrorHandler(tiff_error);
    TIFFSetWarningHandler(nullptr);
    return true;
  }();
  (void)handlers_set;
  tiff_message.clear();
  TiffMemory mem{bytes, toff_t(size), 0};
  std::unique_ptr<TIFF, void (*)(TIFF*)> tif(
      TIFFClientOpen(path.c_str(), "rm", &mem, tiff_read, tiff_write, tiff_seek, tiff_close, tiff_size, tiff_map,
                     tiff_unmap),
      TIFFClose);
  MACER_CHECK(tif != nullptr, path << ": cannot decode TIFF (" << tiff_message << ")");
  uint32_t w = 0, h = 0;
  uint16_t bits = 0, samples = 1, photometric = 0, extra = 0;
  uint16_t* extra_types = nullptr;
  TIFFGetField(tif.get(), TIFFTAG_IMAGEWIDTH, &w);
  TIFFGetField(tif.get(), TIFFTAG_IMAGELENGTH, &h);
  TIFFGetFieldDefaulted(tif.get(), TIFFTAG_BITSPERSAMPLE, &bits);
  TIFFGetFieldDefaulted(tif.get(), TIFFTAG_SAMPLESPERPIXEL, &samples);
  TIFFGetFieldDefaulted(tif.get(), TIFFTAG_EXTRASAMPLES, &extra, &extra_types);
  MACER_CHECK(TIFFGetField(tif.get(), TIFFTAG_PHOTOMETRIC, &photometric),
              path << ": TIFF without a photometric interpretation");
  const bool supported = bits == 8 && extra == 0 &&
                         ((photometric == PHOTOMETRIC_RGB && samples == 3) ||
                          ((photometric == PHOTOMETRIC_MINISBLACK || photometric == PHOTOMETRIC_PALETTE) && samples == 1));
  MACER_CHECK(supported, path << ": TIFF of " << samples << " samples of " << bits << " bits (photometric "
                              << photometric << ", " << extra << " extra); only 8-bit RGB, grey or palette TIFFs "
                              << "without alpha decode as PIL does: convert it to PNG");
  check_pixel_count(w, h, path);
  std::vector<uint32_t> rgba(size_t(w) * h);
  MACER_CHECK(TIFFReadRGBAImageOriented(tif.get(), w, h, rgba.data(), ORIENTATION_TOPLEFT, 1) == 1 &&
                  tiff_message.empty(),
              path << ": cannot decode TIFF (" << (tiff_message.empty() ? "corrupt data" : tiff_message) << ")");
  RgbImage img;
  img.width = int(w), img.height = int(h);
  img.pixels.resize(size_t(w) * h * 3);
  for (size_t i = 0; i < rgba.size(); ++i) {
    img.pixels[3 * i] = uint8_t(TIFFGetR(rgba[i]));
    img.pixels[3 * i + 1] = uint8_t(TIFFGetG(rgba[i]));
    img.pixels[3 * i + 2] = uint8_t(TIFFGetB(rgba[i]));
  }
  return img;
}

// ---- BMP and PPM/PGM (stb_image) ----

// The maxval of a binary PNM header ("P6 <w> <h> <maxval>", # comments allowed); -1 if unreadable.
int pnm_maxval(const uint8_t* b, size_t n) {
  size_t at = 2;
  int values[3] = {-1, -1, -1};
  for (int& v : values) {
    while (at < n && (std::isspace(b[at]) || b[at] == '#')) {
      if (b[at] == '#')
        while (at < n && b[at] != '\n') ++at;
      else
        ++at;
    }
    if (at >= n || !std::isdigit(b[at])) return -1;
    v = 0;
    while (at < n && std::isdigit(b[at]) && v < 1000000) v = v * 10 + (b[at++] - '0');
  }
  return values[2];
}

RgbImage decode_stb(const uint8_t* bytes, size_t size, const std::string& path) {
  MACER_CHECK(size <= size_t(INT32_MAX), path << ": image file too large");
  if (bytes[0] == 'P') {
    const int maxval = pnm_maxval(bytes, size);
    MACER_CHECK(maxval == 255, path << ": PPM/PGM with maxval " << maxval << " (only 255 decodes as PIL does)");
  }
  int w = 0, h = 0, n = 0;
  MACER_CHECK(stbi_info_from_memory(bytes, int(size), &w, &h, &n), path << ": cannot decode image ("
                                                                     << stbi_failure_reason() << ")");
  check_pixel_count(w, h, path);
  std::unique_ptr<unsigned char, void (*)(void*)> px(stbi_load_from_memory(bytes, int(size), &w, &h, &n, 3),
                                                     stbi_image_free);
  MACER_CHECK(px != nullptr, path << ": cannot decode image (" << stbi_failure_reason() << ")");
  RgbImage img;
  img.width = w, img.height = h;
  img.pixels.assign(px.get(), px.get() + size_t(w) * h * 3);
  return img;
}

}  // namespace

RgbImage decode_image_scaled(const uint8_t* b, size_t n, const std::string& path, int jpeg_scale) {
  MACER_CHECK(jpeg_scale == 1 || jpeg_scale == 2 || jpeg_scale == 4 || jpeg_scale == 8,
              "JPEG scale 1/" << jpeg_scale << " (1, 2, 4 or 8)");
  if (jpeg_scale > 1 && starts(b, n, "\xFF\xD8\xFF", 3)) return decode_jpeg(b, n, path, jpeg_scale);
  return decode_image(b, n, path);
}

bool jpeg_dimensions(const uint8_t* b, size_t n, int* width, int* height) {
  if (!starts(b, n, "\xFF\xD8\xFF", 3)) return false;
  auto ctx = std::make_unique<JpegContext>();
  jpeg_decompress_struct& ci = ctx->cinfo;
  ci.err = jpeg_std_error(&ctx->err);
  ctx->err.error_exit = jpeg_fail;
  ctx->err.emit_message = jpeg_message;
  ci.client_data = ctx.get();
  if (setjmp(ctx->jump)) {
    jpeg_destroy_decompress(&ci);
    return false;
  }
  jpeg_create_decompress(&ci);
  jpeg_mem_src(&ci, b, static_cast<unsigned long>(n));
  jpeg_read_header(&ci, TRUE);
  *width = int(ci.image_width), *height = int(ci.image_height);
  jpeg_destroy_decompress(&ci);
  return true;
}

RgbImage decode_image(const uint8_t* b, size_t n, const std::string& path) {
  MACER_CHECK(n > 0, path << ": empty file");
  RgbImage img;
  if (starts(b, n, "\xFF\xD8\xFF", 3)) {
    img = decode_jpeg(b, n, path);
  } else if (starts(b, n, "\x89PNG\r\n\x1A\n", 8)) {
    img = decode_png(b, n, path);
  } else if (starts(b, n, "RIFF", 4) && starts(b, n, "WEBP", 4, 8)) {
    img = decode_webp(b, n, path);
  } else if (starts(b, n, "II*\0", 4) || starts(b, n, "MM\0*", 4)) {
    img = decode_tiff(b, n, path);
  } else if (starts(b, n, "BM", 2) || starts(b, n, "P5", 2) || starts(b, n, "P6", 2)) {
    img = decode_stb(b, n, path);
  } else {
    MACER_CHECK(false, path << ": not a JPEG, PNG, WebP, TIFF, BMP or binary PPM/PGM file (by its first bytes)");
  }
  MACER_CHECK(img.width > 0 && img.height > 0, path << ": empty image");
  return img;
}

RgbImage decode_image_file(const std::string& path) {
  const std::vector<uint8_t> bytes = io::read_file(path);
  return decode_image(bytes.data(), bytes.size(), path);
}

}  // namespace macer::data
