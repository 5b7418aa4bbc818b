// data/decode.h against PIL: fixtures made at test time by tests/pil_images.py (python3-pil);
// every decodable encoding bit-identical to Image.open(f).convert('RGB'), every refusal named.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include <jpeglib.h>

#include "data/dataset.h"
#include "data/decode.h"
#include "data/image_folder.h"
#include "data/resize.h"
#include "data_test_util.h"
#include "kernels/check.h"

using namespace macer;
using namespace data_test;
using Catch::Matchers::Contains;

namespace {

// A Python with PIL: Debian's first (a pyenv shim may shadow it). scripts/test.sh installs python3-pil.
std::string python_with_pil() {
  for (const char* py : {"/usr/bin/python3", "python3"}) {
    const std::string cmd = std::string(py) + " -c 'import PIL.Image' >/dev/null 2>&1";
    if (std::system(cmd.c_str()) == 0) return py;
  }
  return "";
}

struct Fixture {
  std::string kind, name;
  int w = 0, h = 0;
};

std::vector<Fixture> make_fixtures(const std::string& dir) {
  const std::string py = python_with_pil();
  INFO("needs python3 with PIL (Debian python3-pil: scripts/setup.sh python3-pil)");
  REQUIRE(!py.empty());
  const std::string cmd = py + " " + MACER_SOURCE_DIR + "/tests/pil_images.py " + dir;
  INFO(cmd);
  REQUIRE(std::system(cmd.c_str()) == 0);
  std::ifstream in(dir + "/manifest.txt");
  std::vector<Fixture> out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    Fixture f;
    ls >> f.kind >> f.name >> f.w >> f.h;
    out.push_back(f);
  }
  REQUIRE(out.size() >= 29);
  return out;
}

}  // namespace

TEST_CASE("decoding matches PIL's convert('RGB') bit for bit, and refuses what PIL refuses") {
  TempDir dir("decode_pil");
  const std::string d = dir.path.string();
  int decoded = 0, refused = 0;
  for (const Fixture& f : make_fixtures(d)) {
    const std::string path = dir.file(f.name);
    INFO(f.kind << " " << f.name);
    if (f.kind == "ok") {
      const data::RgbImage img = data::decode_image_file(path);
      REQUIRE(img.width == f.w);
      REQUIRE(img.height == f.h);
      const Bytes want = read_bytes(path + ".rgb");
      REQUIRE(want.size() == img.pixels.size());
      size_t diff = 0, max_diff = 0;
      for (size_t i = 0; i < want.size(); ++i) {
        const size_t dv = size_t(std::abs(int(want[i]) - int(img.pixels[i])));
        diff += dv != 0;
        max_diff = std::max(max_diff, dv);
      }
      INFO(diff << " of " << want.size() << " values differ, by up to " << max_diff);
      REQUIRE(diff == 0);
      ++decoded;
    } else {
      REQUIRE(f.kind == "refuse");
      REQUIRE_THROWS_WITH(data::decode_image_file(path), Contains(path + ": "));
      ++refused;
    }
  }
  REQUIRE(decoded >= 24);
  REQUIRE(refused >= 6);
}

TEST_CASE("decode refusals say what is wrong") {
  TempDir dir("decode_refusals");
  const std::string d = dir.path.string();
  make_fixtures(d);
  auto fails_with = [&](const std::string& name, const std::string& what) {
    REQUIRE_THROWS_WITH(data::decode_image_file(dir.file(name)), Contains(dir.file(name)) && Contains(what));
  };
  fails_with("truncated.jpg", "truncated JPEG");
  fails_with("truncated_progressive.jpg", "truncated JPEG");
  fails_with("bad_crc.png", "cannot decode PNG");  // damaged compressed data: zlib finds it first
  fails_with("bad_text_crc.png", "CRC");            // intact data under a wrong CRC
  fails_with("truncated.png", "truncated");
  fails_with("grey16.png", "16-bit greyscale PNG");
  // Not an image at all (a macOS "._x.jpg" resource fork starts 00 05 16 07), and an empty file.
  write_bytes(dir.file("fork.jpg"), Bytes{0x00, 0x05, 0x16, 0x07, 0, 2, 0, 0});
  fails_with("fork.jpg", "not a JPEG, PNG, WebP, TIFF, BMP or binary PPM/PGM file");
  write_bytes(dir.file("empty.png"), Bytes{});
  fails_with("empty.png", "empty file");
  // A PPM of maxval 15: PIL scales it, stb_image would not: refused by name.
  const std::string ppm = "P6 2 1 15\n";
  Bytes b(ppm.begin(), ppm.end());
  for (int k = 0; k < 6; ++k) b.push_back(uint8_t(k));
  write_bytes(dir.file("m15.ppm"), b);
  fails_with("m15.ppm", "maxval 15");
}

TEST_CASE("a YCCK JPEG (Adobe transform 2, which PIL cannot write) decodes as PIL decodes it") {
  TempDir dir("decode_ycck");
  const std::string d = dir.path.string();
  const int w = 23, h = 17;
  // libjpeg writes CMYK input as YCCK with an Adobe marker of transform 2.
  jpeg_compress_struct c{};
  jpeg_error_mgr err{};
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* mem = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &mem, &size);
  c.image_width = w, c.image_height = h, c.input_components = 4, c.in_color_space = JCS_CMYK;
  jpeg_set_defaults(&c);
  jpeg_set_colorspace(&c, JCS_YCCK);
  jpeg_set_quality(&c, 90, TRUE);
  jpeg_start_compress(&c, TRUE);
  Bytes row(size_t(w) * 4);
  while (c.next_scanline < c.image_height) {
    for (size_t k = 0; k < row.size(); ++k) row[k] = uint8_t((k * 37 + c.next_scanline * 11) % 256);
    JSAMPROW rows[1] = {row.data()};
    jpeg_write_scanlines(&c, rows, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  Bytes file(mem, mem + size);
  std::free(mem);
  bool adobe_transform_2 = false;  // APP14 "Adobe" ... transform byte at offset 11 of the payload
  for (size_t i = 0; i + 16 < file.size(); ++i)
    if (file[i] == 0xFF && file[i + 1] == 0xEE && std::memcmp(&file[i + 4], "Adobe", 5) == 0)
      adobe_transform_2 = file[i + 4 + 11] == 2;
  REQUIRE(adobe_transform_2);
  write_bytes(dir.file("ycck.jpg"), file);
  const std::string py = python_with_pil();
  REQUIRE(!py.empty());
  REQUIRE(std::system((py + " " + MACER_SOURCE_DIR + "/tests/pil_images.py " + d + " --decode ycck.jpg").c_str()) == 0);
  const data::RgbImage img = data::decode_image_file(dir.file("ycck.jpg"));
  REQUIRE((img.width == w && img.height == h));
  REQUIRE(img.pixels == read_bytes(dir.file("ycck.jpg.rgb")));
}

TEST_CASE("the evaluation transform is torchvision's Resize + CenterCrop on PIL images") {
  // Photo-like PNGs: downscaled by up to 5.9x (the antialiasing), upscaled, thin, square.
  const std::vector<std::string> sizes = {"500x375", "375x500", "200x130", "61x47", "300x40", "64x64"};
  const std::string py = python_with_pil();
  REQUIRE(!py.empty());
  for (int image_size : {56, 224}) {
    TempDir dir("decode_eval");
    const std::string cls = dir.file("train/c");
    std::string cmd = py + " " + MACER_SOURCE_DIR + "/tests/pil_images.py " + cls + " --photos";
    for (const auto& s : sizes) cmd += " " + s;
    REQUIRE(std::system(cmd.c_str()) == 0);
    data::DatasetOptions o;
    o.image_size = image_size;
    auto ds = data::open_dataset("imagefolder", dir.path.string(), "train", o);
    const int resize = image_size * 256 / 224;
    cmd = py + " " + MACER_SOURCE_DIR + "/tests/pil_images.py " + cls + " --eval-transform " + std::to_string(resize) +
          " " + std::to_string(image_size);
    const std::vector<std::string> files = data::scan_image_folder(dir.file("train"), "auto").files;  // ds's order
    std::vector<std::string> names;
    for (const auto& f : files) {
      names.push_back(fs::path(f).filename().string());
      cmd += " " + names.back();
    }
    if (image_size == 224) {  // upscaling 300x40 and 61x47 to 256 is fine but slow in Python: the big ones
      names = {"500x375.png", "375x500.png", "200x130.png"};
      cmd = py + " " + MACER_SOURCE_DIR + "/tests/pil_images.py " + cls + " --eval-transform 256 224 500x375.png "
            "375x500.png 200x130.png";
    }
    INFO(cmd);
    REQUIRE(std::system(cmd.c_str()) == 0);
    std::vector<float> img(size_t(ds->image_numel()));
    const size_t plane = size_t(image_size) * image_size;
    for (int64_t i = 0; i < ds->size(); ++i) {
      const std::string name = fs::path(files[size_t(i)]).filename().string();
      if (std::find(names.begin(), names.end(), name) == names.end()) continue;
      INFO(name << " at image_size " << image_size);
      const Bytes want = read_bytes(cls + "/" + name + ".eval.rgb");  // (H, W, 3)
      REQUIRE(want.size() == plane * 3);
      ds->image(i, img.data());
      double worst = 0;
      size_t differ = 0;
      for (size_t p = 0; p < plane; ++p)
        for (size_t c = 0; c < 3; ++c) {
          const double e = std::abs(img[c * plane + p] - want[p * 3 + c] / 255.0);
          worst = std::max(worst, e);
          differ += e > 1e-6;
        }
      INFO(differ << " values differ from torchvision's, by up to " << worst * 255 << "/255");
      CHECK(worst <= 1.0 / 255 + 1e-6);  // the bound; PIL's arithmetic is followed bit for bit:
      CHECK(differ == 0);                 // none differ in fact
    }
  }
}

TEST_CASE("RandomResizedCrop: torchvision's box distribution and fallback, its pixels as torchvision's resized_crop") {
  // The boxes: inside the image, area fraction in [0.08, 1] and ratio in [3/4, 4/3] up to the
  // rounding of w and h, positions spread over the image, the same box for the same seed.
  const int W = 500, H = 375;
  double area_sum = 0;
  int left_half = 0;
  for (uint64_t seed = 0; seed < 4000; ++seed) {
    const data::CropBox b = data::random_resized_crop_box(W, H, seed);
    REQUIRE((b.top >= 0 && b.left >= 0 && b.width >= 1 && b.height >= 1));
    REQUIRE((b.top + b.height <= H && b.left + b.width <= W));
    const double frac = double(b.width) * b.height / (double(W) * H), ratio = double(b.width) / b.height;
    REQUIRE((frac >= 0.08 * 0.97 && frac <= 1.0));
    REQUIRE((ratio >= 0.75 * 0.97 && ratio <= 4.0 / 3.0 * 1.03));
    area_sum += frac;
    left_half += b.left + b.width / 2 < W / 2;
    const data::CropBox again = data::random_resized_crop_box(W, H, seed);
    REQUIRE((again.top == b.top && again.left == b.left && again.width == b.width && again.height == b.height));
  }
  // Mean area fraction: 0.4348 from torchvision's own get_params on a 500x375 image (20,000 draws,
  // measured 2026-11-29; large boxes of the wrong shape are rejected and redrawn); the standard
  // error of 4,000 draws is about 0.004.
  CHECK(std::abs(area_sum / 4000 - 0.4348) < 0.015);
  CHECK(std::abs(left_half - 2000) < 200);
  // No try fits a 1000 x 1 image: the fallback is the whole height at ratio 4/3, centred.
  const data::CropBox f = data::random_resized_crop_box(1000, 1, 7);
  CHECK((f.top == 0 && f.height == 1 && f.width == 1 && f.left == 499));
  const data::CropBox g = data::random_resized_crop_box(2, 900, 7);  // too tall: ratio 3/4 kept, centred
  CHECK((g.left == 0 && g.width == 2 && g.height == 3 && g.top == 448));

  // The pixels of a drawn box against torchvision's resized_crop of the same box.
  TempDir dir("decode_rrc");
  const std::string cls = dir.file("train/c");
  const std::string py = python_with_pil();
  REQUIRE(!py.empty());
  const std::string script = py + " " + MACER_SOURCE_DIR + "/tests/pil_images.py " + cls;
  REQUIRE(std::system((script + " --photos 500x375").c_str()) == 0);
  data::DatasetOptions o;
  o.image_size = 64;
  auto ds = data::open_dataset("imagefolder", dir.path.string(), "train", o);
  std::vector<float> img(size_t(ds->image_numel()));
  for (uint64_t seed : {3u, 11u}) {
    const data::CropBox b = data::random_resized_crop_box(500, 375, seed);
    INFO("box top " << b.top << " left " << b.left << " " << b.width << "x" << b.height);
    REQUIRE(std::system((script + " --resized-crop 64 " + std::to_string(b.top) + " " + std::to_string(b.left) + " " +
                         std::to_string(b.height) + " " + std::to_string(b.width) + " 500x375.png")
                            .c_str()) == 0);
    const Bytes want = read_bytes(cls + "/500x375.png.rrc.rgb");
    REQUIRE(want.size() == 64 * 64 * 3);
    ds->random_resized_crop(0, seed, img.data());
    size_t differ = 0;
    for (size_t p = 0; p < 64 * 64; ++p)
      for (size_t c = 0; c < 3; ++c) differ += std::abs(img[c * 4096 + p] - want[p * 3 + c] / 255.0f) > 1e-6f;
    CHECK(differ == 0);
  }
  // Other data sets have no full images to crop.
  data::DatasetOptions so;
  so.synthetic_size = 4;
  REQUIRE_THROWS_WITH(data::open_dataset("synthetic", "", "train", so)->random_resized_crop(0, 1, img.data()),
                      Contains("RandomResizedCrop needs the full images of an image folder"));
}

TEST_CASE("training crops of large JPEGs decode at a reduced DCT scale, close to the full decode") {
  TempDir dir("decode_scaled");
  const int w = 1600, h = 1200;
  jpeg_compress_struct c{};
  jpeg_error_mgr err{};
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* mem = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &mem, &size);
  c.image_width = w, c.image_height = h, c.input_components = 3, c.in_color_space = JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 90, TRUE);
  jpeg_start_compress(&c, TRUE);
  Bytes row(size_t(w) * 3);
  while (c.next_scanline < c.image_height) {  // smooth gradients with a few soft waves: photo-like
    const double y = c.next_scanline;
    for (int x = 0; x < w; ++x) {
      row[size_t(x) * 3] = uint8_t(127 + 100 * std::sin(x / 97.0) * std::cos(y / 131.0));
      row[size_t(x) * 3 + 1] = uint8_t(255.0 * x / w);
      row[size_t(x) * 3 + 2] = uint8_t(255.0 * y / h);
    }
    JSAMPROW rows[1] = {row.data()};
    jpeg_write_scanlines(&c, rows, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  const Bytes file(mem, mem + size);
  std::free(mem);
  write_bytes(dir.file("train/a/big.jpg"), file);

  int jw = 0, jh = 0;
  REQUIRE(data::jpeg_dimensions(file.data(), file.size(), &jw, &jh));
  REQUIRE((jw == w && jh == h));
  REQUIRE_FALSE(data::jpeg_dimensions(file.data() + 1, file.size() - 1, &jw, &jh));
  const data::RgbImage eighth = data::decode_image_scaled(file.data(), file.size(), "big.jpg", 8);
  REQUIRE((eighth.width == 200 && eighth.height == 150));

  data::DatasetOptions o;
  o.image_size = 64;
  auto scaled = data::open_dataset("imagefolder", dir.path.string(), "train", o);
  o.jpeg_scaled_crops = false;
  auto full = data::open_dataset("imagefolder", dir.path.string(), "train", o);
  std::vector<float> a(size_t(full->image_numel())), b(a.size());
  for (uint64_t seed = 0; seed < 6; ++seed) {
    scaled->random_resized_crop(0, seed, a.data());
    full->random_resized_crop(0, seed, b.data());
    double mean = 0, worst = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      mean += std::abs(a[i] - b[i]) / double(a.size());
      worst = std::max(worst, double(std::abs(a[i] - b[i])));
    }
    INFO("seed " << seed << ": mean difference " << mean * 255 << "/255, worst " << worst * 255 << "/255");
    CHECK(mean * 255 < 3.0);   // the same crop: the scaled IDCT and the box's rounding differ slightly (2.1-2.3 seen)
    CHECK(worst * 255 < 24.0);
    CHECK(a != b);  // the scaled path was taken (every box of a 1600x1200 image covers 2 x 64 pixels)
  }
}
