// Mutation fuzz tests, part 2: the data set readers (data/): IDX raw and .gz, CIFAR-10 binary,
// SVHN .mat (plain, miCOMPRESSED, and mat5::parse alone) and image folders: the decoders of
// data/decode.cpp (baseline, progressive and CMYK JPEG, PNG, WebP lossy and lossless, TIFF, BMP).
#include <catch2/catch.hpp>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb/stb_image_write.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <jpeglib.h>
#include <zlib.h>
#include <tiffio.h>
#include <webp/encode.h>

#include "data/dataset.h"
#include "data/mat5.h"
#include "data_test_util.h"
#include "fuzz_util.h"
#include "kernels/check.h"
#include "mat5_test_util.h"

using namespace macer;
using namespace data_test;

namespace {

// Opens the test split and reads every label and image: lazy readers (image folders) decode
// here, and every value must be a label in range or a pixel in [0, 1].
void open_and_read(const std::string& kind, const std::string& dir, int image_size = 8) {
  data::DatasetOptions o;
  o.image_size = image_size;
  std::unique_ptr<data::Dataset> ds = data::open_dataset(kind, dir, "test", o);
  REQUIRE(ds->size() > 0);
  std::vector<float> img(size_t(ds->image_numel()));
  for (int64_t i = 0; i < ds->size(); ++i) {
    const int32_t label = ds->label(i);
    REQUIRE((label >= 0 && label < ds->classes()));
    ds->image(i, img.data());
    bool in_range = true;
    for (float v : img) in_range = in_range && v >= 0.0f && v <= 1.0f;
    REQUIRE(in_range);
  }
}

Bytes idx_images() {
  Bytes b;
  for (uint32_t v : {2051u, 3u, 5u, 4u}) put_be32(b, v);
  for (int k = 0; k < 3 * 5 * 4; ++k) b.push_back(uint8_t(k * 37));
  return b;
}

Bytes idx_labels() {
  Bytes b;
  for (uint32_t v : {2049u, 3u}) put_be32(b, v);
  for (uint8_t l : {7, 0, 9}) b.push_back(l);
  return b;
}

Bytes gzip_bytes(const Bytes& raw, const TempDir& dir) {
  const std::string p = dir.file("scratch.gz");
  std::remove(p.c_str());
  write_gz(p, raw);
  return read_bytes(p);
}

uint8_t svhn_pixel(int k) { return uint8_t((k * 13 + 5) % 256); }

Bytes svhn_y() { return matrix("y", m5::mxDOUBLE_CLASS, {2, 1}, m5::miDOUBLE, doubles({10, 3})); }

Bytes svhn_x() {
  Bytes px(2 * 3072);
  for (size_t k = 0; k < px.size(); ++k) px[k] = svhn_pixel(int(k));
  return matrix("X", m5::mxUINT8_CLASS, {32, 32, 3, 2}, m5::miUINT8, px);
}

// Pixels of a w x h RGB test image, and the image encoded by stb_image_write.
Bytes pixels(int w, int h) {
  Bytes b(size_t(w) * h * 3);
  for (size_t k = 0; k < b.size(); ++k) b[k] = uint8_t((k * 29 + k / 7) % 256);
  return b;
}

Bytes encoded(const TempDir& dir, bool png, int w, int h) {
  const std::string p = dir.file(png ? "scratch.png" : "scratch.jpg");
  const Bytes px = pixels(w, h);
  REQUIRE((png ? stbi_write_png(p.c_str(), w, h, 3, px.data(), w * 3) : stbi_write_jpg(p.c_str(), w, h, 3, px.data(), 90)) != 0);
  return read_bytes(p);
}

// A JPEG made with libjpeg: `components` 3 (RGB, stored as YCbCr) or 4 (CMYK with Adobe marker),
// progressive or baseline.
Bytes libjpeg_encoded(int w, int h, int components, bool progressive) {
  jpeg_compress_struct c{};
  jpeg_error_mgr err{};
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* mem = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &mem, &size);
  c.image_width = JDIMENSION(w), c.image_height = JDIMENSION(h);
  c.input_components = components;
  c.in_color_space = components == 4 ? JCS_CMYK : JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 90, TRUE);
  if (progressive) jpeg_simple_progression(&c);
  jpeg_start_compress(&c, TRUE);
  Bytes row(size_t(w) * components);
  while (c.next_scanline < c.image_height) {
    for (size_t k = 0; k < row.size(); ++k) row[k] = uint8_t((k * 29 + c.next_scanline * 13) % 256);
    JSAMPROW rows[1] = {row.data()};
    jpeg_write_scanlines(&c, rows, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  Bytes out(mem, mem + size);
  std::free(mem);
  return out;
}

size_t io_be32(const uint8_t* p) { return size_t(p[0]) << 24 | size_t(p[1]) << 16 | size_t(p[2]) << 8 | p[3]; }

Bytes webp_encoded(int w, int h, bool lossless) {
  const Bytes px = pixels(w, h);
  uint8_t* out = nullptr;
  const size_t n = lossless ? WebPEncodeLosslessRGB(px.data(), w, h, w * 3, &out)
                            : WebPEncodeRGB(px.data(), w, h, w * 3, 80.0f, &out);
  REQUIRE(n > 0);
  Bytes b(out, out + n);
  WebPFree(out);
  return b;
}

Bytes tiff_encoded(const TempDir& dir, int w, int h, uint16_t compression) {
  const std::string p = dir.file("scratch.tif");
  TIFF* t = TIFFOpen(p.c_str(), "w");
  REQUIRE(t != nullptr);
  TIFFSetField(t, TIFFTAG_IMAGEWIDTH, uint32_t(w));
  TIFFSetField(t, TIFFTAG_IMAGELENGTH, uint32_t(h));
  TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, uint16_t(3));
  TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, uint16_t(8));
  TIFFSetField(t, TIFFTAG_PHOTOMETRIC, uint16_t(PHOTOMETRIC_RGB));
  TIFFSetField(t, TIFFTAG_PLANARCONFIG, uint16_t(PLANARCONFIG_CONTIG));
  TIFFSetField(t, TIFFTAG_COMPRESSION, compression);
  TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, uint32_t(4));
  Bytes px = pixels(w, h);
  for (int y = 0; y < h; ++y) REQUIRE(TIFFWriteScanline(t, px.data() + size_t(y) * w * 3, uint32_t(y), 0) == 1);
  TIFFClose(t);
  return read_bytes(p);
}

}  // namespace

TEST_CASE("fuzz: MNIST IDX files, raw and gzip") {
  TempDir raw("fuzz_idx"), gz("fuzz_idx_gz"), scratch("fuzz_idx_scratch");
  const std::string images = "t10k-images-idx3-ubyte", labels = "t10k-labels-idx1-ubyte";
  auto with_raw = [&](const Bytes& im, const Bytes& lb) {
    fuzz::write_file(raw.file(images), im);
    fuzz::write_file(raw.file(labels), lb);
    open_and_read("mnist", raw.path.string());
  };
  fuzz::run("idx images", idx_images(), 41, 2000, 16, {}, raw.path.string(),
            [&](const Bytes& b) { with_raw(b, idx_labels()); });
  fuzz::run("idx labels", idx_labels(), 42, 1000, 8, {}, raw.path.string(),
            [&](const Bytes& b) { with_raw(idx_images(), b); });

  // .gz: mutants of the IDX bytes compressed (the parser behind gzip), then of the gzip bytes.
  write_gz(gz.file(labels + ".gz"), idx_labels());
  fuzz::run("idx images, gzipped mutants", idx_images(), 43, 1000, 16, {}, gz.path.string(), [&](const Bytes& b) {
    std::remove(gz.file(images + ".gz").c_str());  // a new file each time, as fuzz::write_file
    write_gz(gz.file(images + ".gz"), b);
    open_and_read("mnist", gz.path.string());
  });
  fuzz::run("idx images, gzip bytes", gzip_bytes(idx_images(), scratch), 44, 2000, 32, {}, gz.path.string(),
            [&](const Bytes& b) {
              fuzz::write_file(gz.file(images + ".gz"), b);
              open_and_read("mnist", gz.path.string());
            });
}

TEST_CASE("fuzz: CIFAR-10 binary batches") {
  TempDir dir("fuzz_cifar");
  Bytes valid;
  for (int r = 0; r < 3; ++r) {
    valid.push_back(uint8_t(r * 4));
    for (int k = 0; k < 3072; ++k) valid.push_back(uint8_t(k + r));
  }
  fuzz::run("cifar10 test_batch.bin", valid, 51, 1500, 8, {}, dir.path.string(), [&](const Bytes& b) {
    fuzz::write_file(dir.file("test_batch.bin"), b);
    open_and_read("cifar10", dir.path.string());
  });
}

TEST_CASE("fuzz: SVHN .mat files, plain and compressed") {
  TempDir dir("fuzz_svhn");
  const std::string d = dir.path.string(), path = dir.file("test_32x32.mat");
  auto open_bytes = [&](const Bytes& b) {
    fuzz::write_file(path, b);
    open_and_read("svhn", d);
  };
  // y first, so that both variables' tags sit in the first 300 bytes.
  fuzz::run("svhn plain", concat({header(), svhn_y(), svhn_x()}), 61, 2500, 300, {}, path, open_bytes);
  fuzz::run("svhn compressed file", concat({header(), compressed(svhn_y()), compressed(svhn_x())}), 62, 1500, 200, {},
            path, open_bytes);
  fuzz::run("svhn compressed X element", svhn_x(), 63, 1500, 80, {}, path,
            [&](const Bytes& x) { open_bytes(concat({header(), compressed(svhn_y()), compressed(x)})); });
}

TEST_CASE("fuzz: mat5::parse over every numeric type, skipped classes and small elements") {
  const Bytes valid = concat(
      {header(), matrix("note", 4, {1, 3}, m5::miUINT16, Bytes{'a', 0, 'b', 0, 'c', 0}),
       matrix("a", m5::mxDOUBLE_CLASS, {1, 1}, m5::miDOUBLE, doubles({2.0})),
       matrix("b", m5::mxUINT8_CLASS, {2, 2}, m5::miUINT8, Bytes{1, 2, 3, 4}),
       compressed(matrix("c", m5::mxSINGLE_CLASS, {2, 1}, m5::miINT16, Bytes{7, 0, 42, 0})),
       matrix("e", m5::mxDOUBLE_CLASS, {0, 0}, m5::miDOUBLE, Bytes{})});
  fuzz::run("mat5::parse", valid, 71, 5000, 0, {}, "mem.mat", [](const Bytes& b) {
    for (const m5::Array& a : m5::parse(std::make_shared<const std::vector<uint8_t>>(b), "mem.mat")) {
      REQUIRE(a.nbytes == size_t(a.numel()) * m5::type_size(a.data_type));
      a.to_f64();
      a.to_u8("mem.mat: " + a.name);
    }
  });
}

TEST_CASE("fuzz: image folders, every decoder of data/decode.cpp") {
  TempDir dir("fuzz_images"), scratch("fuzz_images_scratch");
  const std::string d = dir.path.string();
  const Bytes png = encoded(scratch, true, 12, 10), jpg = encoded(scratch, false, 10, 12);
  write_bytes(dir.file("a/x.png"), png);
  write_bytes(dir.file("b/y.jpg"), jpg);
  fuzz::run("imagefolder png", png, 81, 2000, 64, {}, d, [&](const Bytes& b) {
    fuzz::write_file(dir.file("a/x.png"), b);
    open_and_read("imagefolder", d);
  });
  write_bytes(dir.file("a/x.png"), png);
  fuzz::run("imagefolder jpeg", jpg, 82, 2000, 640, {}, d, [&](const Bytes& b) {
    fuzz::write_file(dir.file("b/y.jpg"), b);
    open_and_read("imagefolder", d);
  });
}

TEST_CASE("fuzz: image folders, progressive and CMYK JPEG, WebP, TIFF, BMP") {
  TempDir dir("fuzz_decoders"), scratch("fuzz_decoders_scratch");
  const std::string d = dir.path.string();
  struct Seed {
    std::string name;
    Bytes bytes;
    int budget;   // the hot prefix, as fuzz::run takes it
    int count = 500;
  };
  const Bytes bmp = [&] {
    const Bytes px = pixels(9, 7);
    REQUIRE(stbi_write_bmp(scratch.file("s.bmp").c_str(), 9, 7, 3, px.data()) != 0);
    return read_bytes(scratch.file("s.bmp"));
  }();
  const std::vector<Seed> seeds = {
      {"a/x.jpg", libjpeg_encoded(11, 9, 3, true), 640},   {"a/x.jpg", libjpeg_encoded(9, 11, 4, false), 640},
      {"a/x.webp", webp_encoded(10, 8, false), 64},        {"a/x.webp", webp_encoded(10, 8, true), 64},
      {"a/x.tif", tiff_encoded(scratch, 10, 9, COMPRESSION_NONE), 64},
      {"a/x.tif", tiff_encoded(scratch, 10, 9, COMPRESSION_LZW), 64},
      {"a/x.bmp", bmp, 64, 150}};  // mutated BMP sizes allocate up to PIL's limit: fewer mutants
  uint64_t rng_seed = 91;
  for (const Seed& s : seeds) {
    fs::remove_all(dir.path);
    write_bytes(dir.file(s.name), s.bytes);
    REQUIRE_NOTHROW(open_and_read("imagefolder", d));  // the seed itself decodes
    fuzz::run("imagefolder " + s.name, s.bytes, rng_seed++, s.count, s.budget, {}, d, [&](const Bytes& b) {
      fuzz::write_file(dir.file(s.name), b);
      open_and_read("imagefolder", d);
    });
  }
  // PNG with every chunk's CRC recomputed after mutation, so that mutants reach libpng's
  // decoding instead of all stopping at the CRC check.
  const Bytes png = encoded(scratch, true, 12, 10);
  fs::remove_all(dir.path);
  write_bytes(dir.file("a/x.png"), png);
  fuzz::run("imagefolder png, CRCs fixed", png, 99, 1500, 64, {}, d, [&](const Bytes& b) {
    Bytes fixed = b;
    for (size_t at = 8; at + 12 <= fixed.size();) {
      const size_t len = io_be32(fixed.data() + at);
      if (len > fixed.size() - at - 12) break;
      const uint32_t crc = uint32_t(crc32(0, fixed.data() + at + 4, uInt(len + 4)));
      for (int k = 0; k < 4; ++k) fixed[at + 8 + len + size_t(k)] = uint8_t(crc >> (24 - 8 * k));
      at += 12 + len;
    }
    fuzz::write_file(dir.file("a/x.png"), fixed);
    open_and_read("imagefolder", d);
  });
}
