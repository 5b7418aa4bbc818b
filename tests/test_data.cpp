// data/ tests, part 1: the registry, MNIST/Fashion-MNIST IDX (raw and .gz), CIFAR-10 binary,
// the synthetic set, and the real Fashion-MNIST when installed. Bad files give clear errors.
#include <catch2/catch.hpp>

#include <cstdio>
#include <map>

#include "data/dataset.h"
#include "data/fingerprint.h"
#include "data_test_util.h"
#include "kernels/check.h"

using namespace macer;
using namespace data_test;
using Catch::Matchers::Contains;

namespace {

// IDX images: n images of rows x cols, pixel (i, r, c) = (i*31 + r*7 + c*3) mod 256.
Bytes idx_images(uint32_t n, uint32_t rows, uint32_t cols, uint32_t magic = 2051) {
  Bytes b;
  put_be32(b, magic);
  put_be32(b, n);
  put_be32(b, rows);
  put_be32(b, cols);
  for (uint32_t i = 0; i < n; ++i)
    for (uint32_t r = 0; r < rows; ++r)
      for (uint32_t c = 0; c < cols; ++c) b.push_back(uint8_t((i * 31 + r * 7 + c * 3) % 256));
  return b;
}

Bytes idx_labels(uint32_t n, uint32_t magic = 2049) {
  Bytes b;
  put_be32(b, magic);
  put_be32(b, n);
  for (uint32_t i = 0; i < n; ++i) b.push_back(uint8_t((i * 3) % 10));
  return b;
}

std::unique_ptr<data::Dataset> open(const std::string& kind, const std::string& dir, const std::string& split = "train") {
  return data::open_dataset(kind, dir, split, data::DatasetOptions{});
}

// CIFAR record r of a file: label (r + salt) % 10, pixel k = (k + 17 r + salt) mod 256.
Bytes cifar_records(int n, int salt) {
  Bytes b;
  for (int r = 0; r < n; ++r) {
    b.push_back(uint8_t((r + salt) % 10));
    for (int k = 0; k < 3072; ++k) b.push_back(uint8_t((k + 17 * r + salt) % 256));
  }
  return b;
}

}  // namespace

TEST_CASE("the registry knows every data set and rejects unknown names and splits") {
  auto kinds = data::dataset_kinds();
  REQUIRE(kinds == std::vector<std::string>{"cifar10", "fashion-mnist", "imagefolder", "mnist", "svhn", "synthetic"});
  REQUIRE_THROWS_WITH(open("cifar100", "/nowhere"), Contains("unknown data set 'cifar100'") && Contains("svhn"));
  REQUIRE_THROWS_WITH(open("synthetic", "", "val"), Contains("unknown split 'val'"));
}

TEST_CASE("IDX files, raw and gzip, read back exactly") {
  TempDir dir("idx");
  // train raw, test gzipped; rows != cols to catch a transposition.
  write_bytes(dir.file("train-images-idx3-ubyte"), idx_images(5, 3, 4));
  write_bytes(dir.file("train-labels-idx1-ubyte"), idx_labels(5));
  write_gz(dir.file("t10k-images-idx3-ubyte.gz"), idx_images(3, 3, 4));
  write_gz(dir.file("t10k-labels-idx1-ubyte.gz"), idx_labels(3));
  for (const std::string kind : {"mnist", "fashion-mnist"})
    for (const std::string split : {"train", "test"}) {
      auto ds = open(kind, dir.path.string(), split);
      const int64_t n = split == "train" ? 5 : 3;
      REQUIRE(ds->name() == kind);
      REQUIRE(ds->size() == n);
      REQUIRE(ds->channels() == 1);
      REQUIRE(ds->height() == 3);
      REQUIRE(ds->width() == 4);
      REQUIRE(ds->classes() == 10);
      for (int64_t i = 0; i < n; ++i) {
        REQUIRE(ds->label(i) == int32_t((i * 3) % 10));
        std::vector<float> img(12);
        ds->image(i, img.data());
        for (int r = 0; r < 3; ++r)
          for (int c = 0; c < 4; ++c) REQUIRE(img[size_t(r * 4 + c)] == float((i * 31 + r * 7 + c * 3) % 256) / 255.0f);
      }
    }
}

TEST_CASE("content fingerprints follow the decoded content, not the file form; class names in label order") {
  TempDir dir("idx_fp");
  write_bytes(dir.file("train-images-idx3-ubyte"), idx_images(6, 5, 4));
  write_bytes(dir.file("train-labels-idx1-ubyte"), idx_labels(6));
  TempDir gz("idx_fp_gz");  // the same content gzipped: the same fingerprint
  write_gz(gz.file("train-images-idx3-ubyte.gz"), idx_images(6, 5, 4));
  write_gz(gz.file("train-labels-idx1-ubyte.gz"), idx_labels(6));
  const std::string fp = data::content_fingerprint(*open("mnist", dir.path.string()));
  CHECK(fp.rfind("fnv1a64:", 0) == 0);
  CHECK(fp.find("/6 images") != std::string::npos);
  CHECK(data::content_fingerprint(*open("mnist", gz.path.string())) == fp);
  CHECK(data::content_fingerprint(*open("fashion-mnist", dir.path.string())) == fp);  // content, not the name
  CHECK(data::recognise_fingerprint(fp).empty());
  // One pixel, one label, or the shape changed: another fingerprint.
  Bytes im = idx_images(6, 5, 4);
  im[16 + 33] ^= 1;
  write_bytes(dir.file("train-images-idx3-ubyte"), im);
  const std::string pixel = data::content_fingerprint(*open("mnist", dir.path.string()));
  Bytes lb = idx_labels(6);
  lb[8 + 5] = uint8_t((lb[8 + 5] + 1) % 10);
  write_bytes(dir.file("train-images-idx3-ubyte"), idx_images(6, 5, 4));
  write_bytes(dir.file("train-labels-idx1-ubyte"), lb);
  const std::string label = data::content_fingerprint(*open("mnist", dir.path.string()));
  write_bytes(dir.file("train-images-idx3-ubyte"), idx_images(6, 4, 5));
  write_bytes(dir.file("train-labels-idx1-ubyte"), idx_labels(6));
  const std::string shape = data::content_fingerprint(*open("mnist", dir.path.string()));
  CHECK(pixel != fp);
  CHECK(label != fp);
  CHECK(shape != fp);
  CHECK(pixel != label);
  // torchvision's class lists, in label order.
  auto mnist = open("mnist", gz.path.string())->class_names();
  REQUIRE(mnist.size() == 10);
  CHECK(mnist[0] == "0 - zero");
  CHECK(mnist[9] == "9 - nine");
  auto fashion = open("fashion-mnist", gz.path.string())->class_names();
  REQUIRE(fashion.size() == 10);
  CHECK(fashion[0] == "T-shirt/top");
  CHECK(fashion[9] == "Ankle boot");
  data::DatasetOptions so;
  so.synthetic_size = 8, so.synthetic_classes = 3;
  CHECK(data::open_dataset("synthetic", "", "train", so)->class_names().empty());  // none published
}

TEST_CASE("broken IDX files give one error naming the file and the fault") {
  TempDir dir("idx_bad");
  const std::string d = dir.path.string();
  const std::string images = dir.file("train-images-idx3-ubyte"), labels = dir.file("train-labels-idx1-ubyte");
  SECTION("missing files") {
    REQUIRE_THROWS_WITH(open("mnist", d), Contains("train-images-idx3-ubyte") && Contains("not found"));
  }
  SECTION("bad magic") {
    write_gz(images + ".gz", idx_images(2, 3, 3, 1234));
    write_bytes(labels, idx_labels(2));
    REQUIRE_THROWS_WITH(open("mnist", d), Contains(images + ".gz: bad magic 1234 (expected 2051 for IDX images)"));
  }
  SECTION("labels with the images' magic") {
    write_bytes(images, idx_images(2, 3, 3));
    write_bytes(labels, idx_labels(2, 2051));
    REQUIRE_THROWS_WITH(open("mnist", d), Contains(labels + ": bad magic 2051 (expected 2049 for IDX labels)"));
  }
  SECTION("truncated raw images") {
    Bytes b = idx_images(4, 3, 3);
    b.resize(b.size() - 5);
    write_bytes(images, b);
    write_bytes(labels, idx_labels(4));
    REQUIRE_THROWS_WITH(open("mnist", d), Contains(images + ": truncated: 31 pixel bytes") && Contains("36 bytes"));
  }
  SECTION("truncated header") {
    write_bytes(images, Bytes{0, 0, 8, 3, 0});
    write_bytes(labels, idx_labels(4));
    REQUIRE_THROWS_WITH(open("mnist", d), Contains(images + ": truncated IDX header"));
  }
  SECTION("truncated gzip stream") {
    write_gz(images + ".gz", idx_images(50, 28, 28));
    Bytes gz = read_bytes(images + ".gz");
    gz.resize(gz.size() / 2);
    write_bytes(images + ".gz", gz);
    write_bytes(labels, idx_labels(50));
    REQUIRE_THROWS_WITH(open("mnist", d), Contains(images + ".gz: corrupt or truncated gzip data"));
  }
  SECTION("a .gz that is not gzip") {
    write_bytes(images + ".gz", idx_images(2, 3, 3));  // raw bytes under a .gz name
    write_bytes(labels, idx_labels(2));
    REQUIRE_THROWS_WITH(open("mnist", d), Contains(images + ".gz: not gzip"));
  }
  SECTION("extra bytes after the data") {
    Bytes b = idx_images(2, 3, 3);
    b.push_back(7);
    write_bytes(images, b);
    write_bytes(labels, idx_labels(2));
    REQUIRE_THROWS_WITH(open("mnist", d), Contains(images + ": 1 unexpected bytes"));
  }
  SECTION("counts that disagree") {
    write_bytes(images, idx_images(4, 3, 3));
    write_bytes(labels, idx_labels(3));
    REQUIRE_THROWS_WITH(open("mnist", d), Contains(labels + ": 3 labels, but " + images + " holds 4 images"));
  }
  SECTION("a label out of range") {
    write_bytes(images, idx_images(2, 3, 3));
    Bytes l = idx_labels(2);
    l.back() = 10;
    write_bytes(labels, l);
    REQUIRE_THROWS_WITH(open("fashion-mnist", d), Contains(labels + ": label 10 at 1 (expected 0..9)"));
  }
}

TEST_CASE("CIFAR-10 binary batches read back exactly") {
  TempDir dir("cifar");
  for (int b = 1; b <= 5; ++b) write_bytes(dir.file("data_batch_" + std::to_string(b) + ".bin"), cifar_records(2, b));
  write_bytes(dir.file("test_batch.bin"), cifar_records(3, 100));
  auto train = open("cifar10", dir.path.string(), "train");
  REQUIRE(train->size() == 10);
  REQUIRE((train->channels() == 3 && train->height() == 32 && train->width() == 32 && train->classes() == 10));
  for (int64_t i = 0; i < 10; ++i) {
    const int salt = int(i / 2) + 1, r = int(i % 2);
    REQUIRE(train->label(i) == (r + salt) % 10);
    Bytes img = image_bytes(*train, i);
    for (int k = 0; k < 3072; k += 97) REQUIRE(img[size_t(k)] == uint8_t((k + 17 * r + salt) % 256));
    REQUIRE(img[3071] == uint8_t((3071 + 17 * r + salt) % 256));
  }
  auto test = open("cifar10", dir.path.string(), "test");
  REQUIRE(test->size() == 3);
  REQUIRE(test->label(2) == (2 + 100) % 10);
  REQUIRE(image_bytes(*test, 2)[5] == uint8_t((5 + 34 + 100) % 256));

  SECTION("the archive's nested folder is found") {
    TempDir outer("cifar_outer");
    fs::copy(dir.path, outer.path / "cifar-10-batches-bin");
    REQUIRE(open("cifar10", outer.path.string(), "test")->size() == 3);
  }
  SECTION("a truncated batch") {
    Bytes b = cifar_records(2, 3);
    b.resize(b.size() - 10);
    write_bytes(dir.file("data_batch_3.bin"), b);
    REQUIRE_THROWS_WITH(open("cifar10", dir.path.string()),
                        Contains(dir.file("data_batch_3.bin") + ": size 6136 is not a whole number of 3073-byte"));
  }
  SECTION("a bad label") {
    Bytes b = cifar_records(2, 3);
    b[3073] = 12;
    write_bytes(dir.file("test_batch.bin"), b);
    REQUIRE_THROWS_WITH(open("cifar10", dir.path.string(), "test"),
                        Contains(dir.file("test_batch.bin") + ": record 1 has label 12"));
  }
  SECTION("a missing batch") {
    fs::remove(dir.file("data_batch_5.bin"));
    REQUIRE_THROWS_WITH(open("cifar10", dir.path.string()),
                        Contains(dir.file("data_batch_5.bin") + ": cannot open (no such file)"));
  }
}

TEST_CASE("the synthetic set is deterministic, shaped by its options, and learnable") {
  data::DatasetOptions o;
  o.synthetic_size = 300;
  o.synthetic_channels = 2;
  o.synthetic_height = 8;
  o.synthetic_width = 6;
  o.synthetic_classes = 4;
  o.seed = 11;
  auto a = data::open_dataset("synthetic", "", "train", o);
  auto b = data::open_dataset("synthetic", "", "train", o);
  auto t = data::open_dataset("synthetic", "", "test", o);
  REQUIRE((a->size() == 300 && a->channels() == 2 && a->height() == 8 && a->width() == 6 && a->classes() == 4));
  for (int64_t i = 0; i < 300; ++i) {
    REQUIRE(a->label(i) == b->label(i));
    REQUIRE(image_bytes(*a, i) == image_bytes(*b, i));
  }
  REQUIRE(image_bytes(*a, 0) != image_bytes(*t, 0));
  o.seed = 12;
  auto c = data::open_dataset("synthetic", "", "train", o);
  REQUIRE(image_bytes(*a, 0) != image_bytes(*c, 0));

  // Nearest class mean, fitted on train, classifies most test images: the set is learnable.
  const size_t numel = size_t(a->image_numel());
  std::vector<double> mean(4 * numel, 0.0);
  std::vector<int> count(4, 0);
  std::vector<float> img(numel);
  for (int64_t i = 0; i < a->size(); ++i) {
    a->image(i, img.data());
    int y = a->label(i);
    ++count[size_t(y)];
    for (size_t k = 0; k < numel; ++k) mean[size_t(y) * numel + k] += img[k];
  }
  for (int y = 0; y < 4; ++y) {
    REQUIRE(count[size_t(y)] > 30);  // every class is present
    for (size_t k = 0; k < numel; ++k) mean[size_t(y) * numel + k] /= count[size_t(y)];
  }
  int correct = 0;
  for (int64_t i = 0; i < t->size(); ++i) {
    t->image(i, img.data());
    int best = 0;
    double best_d = 1e30;
    for (int y = 0; y < 4; ++y) {
      double d = 0;
      for (size_t k = 0; k < numel; ++k) d += std::pow(img[k] - mean[size_t(y) * numel + k], 2);
      if (d < best_d) best_d = d, best = y;
    }
    correct += best == t->label(i);
  }
  REQUIRE(correct > 0.9 * double(t->size()));
}

TEST_CASE("the real Fashion-MNIST, when installed, has 60000 + 10000 balanced images") {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(fs::path(dir) / "train-images-idx3-ubyte.gz")) {
    WARN("Fashion-MNIST not found in " << dir << ": the real-data test did NOT run");
    std::fprintf(stderr, "WARNING: Fashion-MNIST not found in %s: the real-data test did NOT run\n", dir.c_str());
    return;
  }
  for (const std::string split : {"train", "test"}) {
    auto ds = open("fashion-mnist", dir, split);
    const int64_t n = split == "train" ? 60000 : 10000;
    REQUIRE(ds->size() == n);
    REQUIRE((ds->channels() == 1 && ds->height() == 28 && ds->width() == 28));
    std::map<int32_t, int64_t> histogram;
    for (int64_t i = 0; i < n; ++i) ++histogram[ds->label(i)];
    REQUIRE(histogram.size() == 10);
    for (const auto& kv : histogram) {
      REQUIRE((kv.first >= 0 && kv.first <= 9));
      REQUIRE(kv.second == n / 10);  // the set is balanced: 6000 / 1000 per class
    }
    std::vector<float> img(784);
    ds->image(0, img.data());
    float lo = 1, hi = 0;
    for (float v : img) lo = std::min(lo, v), hi = std::max(hi, v);
    REQUIRE((lo >= 0.0f && hi <= 1.0f && hi > 0.5f));
    // The official files are recognised by the digest of their content, whatever they are
    // opened as (the fault of a Fashion-MNIST folder certified as "mnist").
    const std::string fp = data::content_fingerprint(*ds);
    INFO("fingerprint " << fp);
    CHECK(data::recognise_fingerprint(fp) == "fashion-mnist " + split);
    CHECK(data::content_fingerprint(*open("mnist", dir, split)) == fp);
  }
}
