// data/ tests, part 3: image folders (classes sorted by name, the hidden-name, integer-name and
// extension rules, torchvision-style resize and centre crop, train/val splits) and their errors.
#include <catch2/catch.hpp>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb/stb_image_write.h>

#include "data/dataset.h"
#include "data/image_folder.h"
#include "data/jpeg_check.h"
#include "data/loader.h"
#include "data/seed.h"
#include "data_test_util.h"
#include "kernels/check.h"

using namespace macer;
using namespace data_test;
using Catch::Matchers::Contains;

namespace {

// An RGB (comp 3) or grey (comp 1) image with pixel (x, y, c) = f(x, y, c), row-major HWC.
template <typename F> Bytes make_pixels(int w, int h, int comp, F f) {
  Bytes b(size_t(w) * h * comp);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < comp; ++c) b[size_t((y * w + x) * comp + c)] = uint8_t(f(x, y, c));
  return b;
}

void write_png(const std::string& path, int w, int h, int comp, const Bytes& px) {
  fs::create_directories(fs::path(path).parent_path());
  REQUIRE(stbi_write_png(path.c_str(), w, h, comp, px.data(), w * comp) != 0);
}

void write_jpg(const std::string& path, int w, int h, const Bytes& px) {
  fs::create_directories(fs::path(path).parent_path());
  REQUIRE(stbi_write_jpg(path.c_str(), w, h, 3, px.data(), 95) != 0);
}

int pattern(int x, int y, int c) { return (x * 11 + y * 5 + c * 80) % 256; }

std::unique_ptr<data::Dataset> open_folder(const std::string& dir, int image_size, const std::string& split = "train") {
  data::DatasetOptions o;
  o.image_size = image_size;
  return data::open_dataset("imagefolder", dir, split, o);
}

}  // namespace

TEST_CASE("image folders: classes sorted by name, PNG pixels cropped exactly") {
  TempDir dir("images");
  const std::string d = dir.path.string();
  // image_size 14 resizes the shorter side to 14*256/224 = 16: a 16-pixel side needs no resize.
  write_png(dir.file("b_cat/2.png"), 16, 16, 3, make_pixels(16, 16, 3, pattern));
  write_png(dir.file("b_cat/10.png"), 20, 16, 3, make_pixels(20, 16, 3, pattern));  // wide: crop left 3, top 0
  write_png(dir.file("a_dog/x.png"), 16, 16, 1, make_pixels(16, 16, 1, pattern));   // grey: three equal channels
  write_bytes(dir.file("a_dog/readme.txt"), Bytes{'h', 'i'});                        // not an image: ignored
  auto ds = open_folder(d, 14);
  REQUIRE(ds->name() == "imagefolder");
  REQUIRE(ds->size() == 3);
  REQUIRE(ds->classes() == 2);
  REQUIRE((ds->channels() == 3 && ds->height() == 14 && ds->width() == 14));
  REQUIRE(!ds->in_memory());
  // Order: a_dog/x.png, b_cat/10.png, b_cat/2.png (file names sorted as strings).
  REQUIRE(ds->label(0) == 0);
  REQUIRE(ds->label(1) == 1);
  REQUIRE(ds->label(2) == 1);
  auto expect = [&](int64_t i, int top, int left, bool grey) {
    Bytes img = image_bytes(*ds, i);
    bool all = true;
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < 14; ++y)
        for (int x = 0; x < 14; ++x)
          all = all && img[size_t(c * 196 + y * 14 + x)] == uint8_t(pattern(x + left, y + top, grey ? 0 : c));
    REQUIRE(all);
  };
  expect(0, 1, 1, true);
  expect(1, 1, 3, false);
  expect(2, 1, 1, false);
}

TEST_CASE("image folders: resize of the shorter side, JPEG decoding, train and val splits") {
  TempDir dir("images_resize");
  const std::string d = dir.path.string();
  // A tall 32x64 two-colour image (left half dark, right half light) and a constant JPEG.
  write_png(dir.file("train/one/a.png"), 32, 64, 3,
            make_pixels(32, 64, 3, [](int x, int, int c) { return x < 16 ? 40 + c : 200 + c; }));
  write_jpg(dir.file("train/two/b.jpg"), 24, 24, make_pixels(24, 24, 3, [](int, int, int c) { return 60 + 50 * c; }));
  write_png(dir.file("val/one/c.png"), 16, 16, 3, make_pixels(16, 16, 3, pattern));
  write_png(dir.file("val/two/d.PNG"), 16, 16, 3, make_pixels(16, 16, 3, pattern));

  auto train = open_folder(d, 14);
  REQUIRE(train->size() == 2);
  // 32x64 -> 16x32 -> centre crop 14x14 at (top 9, left 1): dark columns 0..6, light 7..13
  // away from the edge between them, which the triangle filter blurs over a pixel.
  Bytes img = image_bytes(*train, 0);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 14; ++y) {
      for (int x = 0; x < 6; ++x) REQUIRE(std::abs(int(img[size_t(c * 196 + y * 14 + x)]) - (40 + c)) <= 1);
      for (int x = 8; x < 14; ++x) REQUIRE(std::abs(int(img[size_t(c * 196 + y * 14 + x)]) - (200 + c)) <= 1);
    }
  // The JPEG: 24x24 -> 16x16 -> crop; a flat colour survives compression within a few levels.
  img = image_bytes(*train, 1);
  for (int c = 0; c < 3; ++c)
    for (int k = 0; k < 196; ++k) REQUIRE(std::abs(int(img[size_t(c * 196 + k)]) - (60 + 50 * c)) <= 3);

  auto test = open_folder(d, 14, "test");  // no test/ folder: val/ serves
  REQUIRE(test->size() == 2);
  REQUIRE(test->label(1) == 1);  // upper-case extensions count
  REQUIRE(image_bytes(*test, 0)[0] == uint8_t(pattern(1, 1, 0)));
  // Named by its train/ folder (as configs do), the test split is the sibling val/, and back.
  REQUIRE(image_bytes(*open_folder(dir.file("train"), 14, "test"), 0) == image_bytes(*test, 0));
  REQUIRE(image_bytes(*open_folder(dir.file("val") + "/", 14, "train"), 1) == image_bytes(*train, 1));
  REQUIRE(open_folder(dir.file("val"), 14, "test")->size() == 2);
  fs::rename(dir.path / "val", dir.path / "elsewhere");
  REQUIRE_THROWS_WITH(open_folder(dir.file("train"), 14, "test"),
                      Contains(dir.file("train") + ": a 'train' folder, but no sibling test/ or val/ folder"));
}

TEST_CASE("a JPEG Huffman table of more than 256 codes is refused before the decoder sees it") {
  TempDir dir("images_dht");
  const std::string d = dir.path.string();
  const std::string jpg = dir.file("train/a/x.jpg");
  write_jpg(jpg, 16, 16, make_pixels(16, 16, 3, pattern));
  REQUIRE_NOTHROW(image_bytes(*open_folder(d, 8), 0));  // the file as written decodes
  // Raise the first DHT table's 16-code count so the table declares over 256 codes.
  Bytes b = read_bytes(jpg);
  size_t dht = 0;
  for (size_t i = 2; i + 1 < b.size(); ++i)
    if (b[i] == 0xFF && b[i + 1] == 0xC4) {
      dht = i;
      break;
    }
  REQUIRE(dht > 0);
  b[dht + 4 + 16] = 250;  // count of 16-bit codes of the first table
  write_bytes(jpg, b);
  REQUIRE_THROWS_WITH(image_bytes(*open_folder(d, 8), 0), Contains(jpg) && Contains("Huffman table declares"));
  // The check alone: not a JPEG, or a truncated one, is left to the decoder.
  const uint8_t png_magic[4] = {0x89, 'P', 'N', 'G'};
  REQUIRE_NOTHROW(data::check_jpeg_tables(png_magic, 4, "x"));
  REQUIRE_NOTHROW(data::check_jpeg_tables(b.data(), dht + 3, "x"));
}

TEST_CASE("broken image folders give one error naming the path and the fault") {
  TempDir dir("images_bad");
  const std::string d = dir.path.string();
  SECTION("missing folder") {
    REQUIRE_THROWS_WITH(open_folder(d + "/nothing", 14), Contains(d + "/nothing: image folder not found"));
  }
  SECTION("no class folders") {
    write_png(dir.file("loose.png"), 16, 16, 3, make_pixels(16, 16, 3, pattern));
    REQUIRE_THROWS_WITH(open_folder(d, 14), Contains(d + ": no class subfolders"));
  }
  SECTION("an empty class") {
    write_png(dir.file("a/x.png"), 16, 16, 3, make_pixels(16, 16, 3, pattern));
    fs::create_directories(dir.path / "b");
    REQUIRE_THROWS_WITH(open_folder(d, 14), Contains(dir.file("b") + ": class folder holds no"));
  }
  SECTION("a corrupt image fails on access, naming the file") {
    write_png(dir.file("a/x.png"), 16, 16, 3, make_pixels(16, 16, 3, pattern));
    write_bytes(dir.file("a/y.png"), Bytes(200, 0x42));
    auto ds = open_folder(d, 14);
    std::vector<float> out(3 * 14 * 14);
    REQUIRE_NOTHROW(ds->image(0, out.data()));
    REQUIRE_THROWS_WITH(ds->image(1, out.data()), Contains(dir.file("a/y.png") + ": not a JPEG, PNG"));
    REQUIRE_THROWS_WITH(ds->image(2, out.data()), Contains("image index 2 outside [0, 2)"));
  }
  SECTION("a bad image size") {
    write_png(dir.file("a/x.png"), 16, 16, 3, make_pixels(16, 16, 3, pattern));
    REQUIRE_THROWS_WITH(open_folder(d, 0), Contains("image_size 0"));
  }
}

TEST_CASE("image folders through the loader: parallel decoding gives the synchronous batches") {
  TempDir dir("images_loader");
  for (int k = 0; k < 12; ++k)
    write_png(dir.file("c" + std::to_string(k % 3) + "/" + std::to_string(k) + ".png"), 18 + k, 16, 3,
              make_pixels(18 + k, 16, 3, [k](int x, int y, int c) { return pattern(x + k, y, c); }));
  auto ds = open_folder(dir.path.string(), 14);
  data::LoaderOptions o;
  o.batch = 5;
  o.shuffle = o.augment_flip = true;
  o.prefetch = 0;
  o.workers = 1;
  data::Loader sync(*ds, o);
  o.prefetch = 2;
  o.workers = 0;  // not in memory: several decoding threads
  data::Loader threaded(*ds, o);
  for (int epoch : {0, 1}) {
    sync.begin_epoch(epoch);
    threaded.begin_epoch(epoch);
    data::Batch a, b;
    int batches = 0;
    while (sync.next(a)) {
      REQUIRE(threaded.next(b));
      REQUIRE(a.images.to_vector() == b.images.to_vector());
      REQUIRE(a.labels.to_ints() == b.labels.to_ints());
      ++batches;
    }
    REQUIRE_FALSE(threaded.next(b));
    REQUIRE(batches == 3);
  }
}

TEST_CASE("image folders: hidden names skipped, every torchvision extension in any case, the summary line") {
  TempDir dir("images_rules");
  const std::string d = dir.path.string();
  const Bytes px = make_pixels(16, 16, 3, pattern);
  for (const char* name : {"a/1.JPG", "a/2.jpeg", "a/3.Png", "a/4.ppm", "a/5.BMP", "a/6.pgm", "a/7.tif", "a/8.TIFF",
                           "a/9.webp", "b/sub/x.png", "b/y.png"})
    write_bytes(dir.file(name), Bytes{1});  // contents do not matter to the scan
  for (const char* name : {"a/._1.JPG", "a/.DS_Store", "b/.hidden/z.png", ".ipynb_checkpoints/w.png"})
    write_bytes(dir.file(name), Bytes{1});
  write_bytes(dir.file("a/notes.txt"), Bytes{1});
  write_bytes(dir.file("b/x.gif"), Bytes{1});  // not in torchvision's IMG_EXTENSIONS either
  const data::ImageFolderScan s = data::scan_image_folder(d, "auto");
  REQUIRE(s.classes == std::vector<std::string>{"a", "b"});
  REQUIRE(s.files.size() == 11);
  REQUIRE(s.files[0] == dir.file("a/1.JPG"));
  REQUIRE(s.files[8] == dir.file("a/9.webp"));
  REQUIRE(s.files[9] == dir.file("b/y.png"));  // os.walk order: files of b/ before those of b/sub/
  REQUIRE(s.files[10] == dir.file("b/sub/x.png"));
  REQUIRE(s.labels[8] == 0);
  REQUIRE(s.labels[9] == 1);
  REQUIRE(s.hidden_files == 2);
  REQUIRE(s.hidden_folders == 2);
  REQUIRE(s.other_files == 2);
  REQUIRE(s.summary() == d + ": 2 classes, 11 images; skipped 2 hidden files, 2 hidden folders (names starting "
                             "with '.'); skipped 2 files without an image extension (e.g. " + dir.file("a/notes.txt") +
                             ")");
  // Through open_dataset: class_names() and the summary; a class of only hidden files is empty.
  write_png(dir.file("c/ok.png"), 16, 16, 3, px);
  auto ds = open_folder(d, 14);
  REQUIRE(ds->class_names() == std::vector<std::string>{"a", "b", "c"});
  REQUIRE(ds->summary().find(": 3 classes, 12 images;") != std::string::npos);
  write_bytes(dir.file("d/._only.jpg"), Bytes{1});
  REQUIRE_THROWS_WITH(open_folder(d, 14), Contains(dir.file("d") + ": class folder holds no image"));
}

TEST_CASE("image folders: integer class names in text order other than numeric order need an explicit order") {
  TempDir dir("images_integers");
  const std::string d = dir.path.string();
  for (int k : {0, 1, 2, 10, 11}) write_bytes(dir.file(std::to_string(k) + "/x.png"), Bytes{1});
  REQUIRE_THROWS_WITH(data::scan_image_folder(d, "auto"),
                      Contains(d + ": the class folders are named by integers (0, 1, 2, 10, ...) and their text "
                                   "order (0, 1, 10, 11, ...) is not their numeric order") &&
                          Contains("data.class_order"));
  REQUIRE(data::scan_image_folder(d, "text").classes == std::vector<std::string>{"0", "1", "10", "11", "2"});
  const data::ImageFolderScan numeric = data::scan_image_folder(d, "numeric");
  REQUIRE(numeric.classes == std::vector<std::string>{"0", "1", "2", "10", "11"});
  REQUIRE(numeric.files[2] == dir.file("2/x.png"));
  REQUIRE(numeric.labels[2] == 2);
  data::DatasetOptions o;
  o.class_order = "numeric";
  write_png(dir.file("2/y.png"), 16, 16, 3, make_pixels(16, 16, 3, pattern));
  REQUIRE(data::open_dataset("imagefolder", d, "train", o)->class_names()[3] == "10");
  REQUIRE_THROWS_WITH(data::open_dataset("imagefolder", d, "train", data::DatasetOptions{}), Contains("class_order"));
  // Integer names whose orders agree (zero-padded) need nothing; numeric needs integer names.
  TempDir padded("images_padded");
  for (const char* k : {"00", "01", "02", "10"}) write_bytes(padded.file(std::string(k) + "/x.png"), Bytes{1});
  REQUIRE(data::scan_image_folder(padded.path.string(), "auto").classes.size() == 4);
  write_bytes(padded.file("cat/x.png"), Bytes{1});
  REQUIRE(data::scan_image_folder(padded.path.string(), "auto").classes.back() == "cat");  // not all integers
  REQUIRE_THROWS_WITH(data::scan_image_folder(padded.path.string(), "numeric"),
                      Contains("class folder 'cat' is not named by an integer"));
  REQUIRE_THROWS_WITH(data::scan_image_folder(padded.path.string(), "sorted"), Contains("class_order 'sorted' unknown"));
}

TEST_CASE("unreadable images are all found before any work, each named") {
  TempDir dir("images_unreadable");
  const std::string d = dir.path.string();
  for (int k = 0; k < 6; ++k) write_png(dir.file("a/" + std::to_string(k) + ".png"), 16, 16, 3, make_pixels(16, 16, 3, pattern));
  Bytes png = read_bytes(dir.file("a/1.png"));
  write_bytes(dir.file("a/1.png"), Bytes(png.begin(), png.begin() + long(png.size() / 2)));  // cut in half
  write_bytes(dir.file("a/4.png"), Bytes{0, 5, 22, 7});
  auto ds = open_folder(d, 14);
  const std::vector<int64_t> all = {0, 1, 2, 3, 4, 5};
  const std::vector<std::string> bad = data::find_unreadable_images(*ds, all, 3);
  REQUIRE(bad.size() == 2);
  REQUIRE_THAT(bad[0], Contains(dir.file("a/1.png") + ": cannot decode PNG"));
  REQUIRE_THAT(bad[1], Contains(dir.file("a/4.png") + ": not a JPEG"));
  REQUIRE(data::find_unreadable_images(*ds, {0, 2, 3, 5}).empty());
  REQUIRE_THROWS_WITH(data::check_images_readable(*ds, all, "Fix them."),
                      Contains("2 of the 6 selected images cannot be read: " + dir.file("a/1.png")) &&
                          Contains("Fix them."));
  REQUIRE_NOTHROW(data::check_images_readable(*ds, {0, 5}, "Fix them."));
}

TEST_CASE("the loader's RandomResizedCrop: keyed by (seed, epoch, index), the same on every thread count") {
  TempDir dir("images_rrc");
  for (int k = 0; k < 8; ++k)
    write_png(dir.file("c" + std::to_string(k % 2) + "/" + std::to_string(k) + ".png"), 40 + k, 30, 3,
              make_pixels(40 + k, 30, 3, [k](int x, int y, int c) { return pattern(x * 3 + k, y * 2, c); }));
  auto ds = open_folder(dir.path.string(), 16);
  data::LoaderOptions o;
  o.batch = 8;
  o.random_resized_crop = o.augment_flip = true;
  o.prefetch = 0;
  o.workers = 1;
  data::Loader sync(*ds, o);
  o.prefetch = 2;
  o.workers = 3;
  data::Loader threaded(*ds, o);
  std::vector<std::vector<float>> epochs;
  for (int epoch : {0, 1}) {
    sync.begin_epoch(epoch);
    threaded.begin_epoch(epoch);
    data::Batch a, b;
    REQUIRE(sync.next(a));
    REQUIRE(threaded.next(b));
    REQUIRE(a.images.to_vector() == b.images.to_vector());
    epochs.push_back(a.images.to_vector());
  }
  REQUIRE(epochs[0] != epochs[1]);  // new boxes every epoch
  // Row r is image indices[r] cropped with the box of (seed, epoch 1, index): recomputed alone.
  data::Batch a;
  sync.begin_epoch(1);
  REQUIRE(sync.next(a));
  std::vector<float> one(size_t(ds->image_numel()));
  o.augment_flip = false;
  o.prefetch = 0;
  o.workers = 1;
  data::Loader noflip(*ds, o);
  noflip.begin_epoch(1);
  data::Batch c;
  REQUIRE(noflip.next(c));
  ds->random_resized_crop(c.indices[0], data::mix_seed(o.seed ^ data::kResizedCropSalt, 1, uint64_t(c.indices[0])),
                          one.data());
  const std::vector<float> all = c.images.to_vector();
  const std::vector<float> row0(all.begin(), all.begin() + long(one.size()));
  REQUIRE(row0 == one);
  o.augment_crop = true;
  REQUIRE_THROWS_WITH(data::Loader(*ds, o), Contains("exclude each other"));
}
