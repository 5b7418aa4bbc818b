// data/decode.h against PIL: fixtures made at test time by tests/pil_images.py (python3-pil);
// every decodable encoding bit-identical to Image.open(f).convert('RGB'), every refusal named.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <jpeglib.h>

#include "data/dataset.h"
#include "data/decode.h"
#include "data/image_folder.h"
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
