// data/ tests, part 2: SVHN .mat files (MATLAB level 5), plain and miCOMPRESSED elements,
// from the writer in mat5_test_util.h and from scipy's savemat (tests/data/svhn); broken files fail clearly.
#include <catch2/catch.hpp>

#include <cstring>

#include "data/dataset.h"
#include "data/mat5.h"
#include "data_test_util.h"
#include "mat5_test_util.h"
#include "kernels/check.h"

using namespace macer;
using namespace data_test;
using Catch::Matchers::Contains;
namespace m5 = macer::data::mat5;

namespace {

uint8_t svhn_pixel(int r, int c, int ch, int i) { return uint8_t((7 * r + 13 * c + 50 * ch + 31 * i) % 256); }

// X of n images in MATLAB column-major order: X(r, c, ch, i) at r + 32 c + 1024 ch + 3072 i.
Bytes svhn_x(int n) {
  Bytes b(size_t(n) * 3072);
  for (int i = 0; i < n; ++i)
    for (int ch = 0; ch < 3; ++ch)
      for (int c = 0; c < 32; ++c)
        for (int r = 0; r < 32; ++r) b[size_t(r + 32 * c + 1024 * ch + 3072 * i)] = svhn_pixel(r, c, ch, i);
  return b;
}

std::unique_ptr<data::Dataset> open_svhn(const std::string& dir, const std::string& split) {
  return data::open_dataset("svhn", dir, split, data::DatasetOptions{});
}

// Every pixel of every image against svhn_pixel, and the labels (10 read as 0).
void check_svhn(const data::Dataset& ds, const std::vector<int32_t>& labels) {
  REQUIRE(ds.size() == int64_t(labels.size()));
  REQUIRE((ds.channels() == 3 && ds.height() == 32 && ds.width() == 32 && ds.classes() == 10));
  for (int64_t i = 0; i < ds.size(); ++i) {
    REQUIRE(ds.label(i) == labels[size_t(i)]);
    Bytes img = image_bytes(ds, i);
    bool all = true;
    for (int ch = 0; ch < 3; ++ch)
      for (int r = 0; r < 32; ++r)
        for (int c = 0; c < 32; ++c) all = all && img[size_t(ch * 1024 + r * 32 + c)] == svhn_pixel(r, c, ch, int(i));
    REQUIRE(all);
  }
}

}  // namespace

TEST_CASE("SVHN from plain miMATRIX elements reads back exactly") {
  TempDir dir("svhn_plain");
  Bytes note = matrix("note", 4, {1, 3}, m5::miUINT16, Bytes{'a', 0, 'b', 0, 'c', 0});  // a char array: skipped
  Bytes file = concat({header(), note, matrix("X", m5::mxUINT8_CLASS, {32, 32, 3, 3}, m5::miUINT8, svhn_x(3)),
                       matrix("a_long_variable_name", m5::mxDOUBLE_CLASS, {1, 1}, m5::miDOUBLE, doubles({2.5})),
                       matrix("y", m5::mxDOUBLE_CLASS, {3, 1}, m5::miDOUBLE, doubles({10, 1, 9}))});
  write_bytes(dir.file("train_32x32.mat"), file);
  check_svhn(*open_svhn(dir.path.string(), "train"), {0, 1, 9});

  auto vars = m5::read_file(dir.file("train_32x32.mat"));
  REQUIRE(vars.size() == 3);  // the char array is skipped
  REQUIRE(vars[1].name == "a_long_variable_name");
  REQUIRE(vars[1].value(0) == 2.5);
}

TEST_CASE("SVHN from miCOMPRESSED elements, with MATLAB's narrower storage types, reads back exactly") {
  TempDir dir("svhn_z");
  // MATLAB stores a double array holding small integers as miUINT8: both X and y here.
  Bytes x = compressed(matrix("X", m5::mxDOUBLE_CLASS, {32, 32, 3, 2}, m5::miUINT8, svhn_x(2)));
  Bytes y = compressed(matrix("y", m5::mxDOUBLE_CLASS, {2, 1}, m5::miUINT8, Bytes{4, 10}));
  write_bytes(dir.file("test_32x32.mat"), concat({header(), y, x}));
  check_svhn(*open_svhn(dir.path.string(), "test"), {4, 0});

  // One image: MATLAB drops the trailing singleton dimension (32x32x3); X stored as double.
  Bytes xd;
  {
    Bytes raw = svhn_x(1);
    std::vector<double> v(raw.begin(), raw.end());
    xd = doubles(v);
  }
  write_bytes(dir.file("train_32x32.mat"),
              concat({header(), compressed(matrix("X", m5::mxDOUBLE_CLASS, {32, 32, 3}, m5::miDOUBLE, xd)),
                      matrix("y", m5::mxUINT8_CLASS, {1, 1}, m5::miUINT8, Bytes{7})}));
  check_svhn(*open_svhn(dir.path.string(), "train"), {7});
}

TEST_CASE("SVHN fixtures written by scipy.io.savemat read back exactly") {
  const std::string dir = std::string(MACER_SOURCE_DIR) + "/tests/data/svhn";
  check_svhn(*open_svhn(dir, "train"), {0, 1, 5});  // compressed, y double, extra variables
  check_svhn(*open_svhn(dir, "test"), {3, 0});      // plain, y uint8
}

TEST_CASE("broken .mat files give one error naming the file and the fault") {
  TempDir dir("svhn_bad");
  const std::string path = dir.file("train_32x32.mat");
  auto good_x = [] { return matrix("X", m5::mxUINT8_CLASS, {32, 32, 3, 2}, m5::miUINT8, svhn_x(2)); };
  auto good_y = [] { return matrix("y", m5::mxDOUBLE_CLASS, {2, 1}, m5::miDOUBLE, doubles({1, 2})); };
  auto fails = [&](const Bytes& file, const std::string& what) {
    write_bytes(path, file);
    REQUIRE_THROWS_WITH(open_svhn(dir.path.string(), "train"), Contains(path) && Contains(what));
  };
  SECTION("missing") { REQUIRE_THROWS_WITH(open_svhn(dir.path.string(), "train"), Contains(path + ": cannot open")); }
  SECTION("short") { fails(Bytes(100, 'M'), "too short for a MAT-file header"); }
  SECTION("not a MAT-file") { fails(concat({header("hello world"), good_x()}), "not a MATLAB level-5 MAT-file"); }
  SECTION("v7.3") { fails(header("MATLAB 7.3 MAT-file, Platform: GLNXA64", 0x0200), "v7.3 (HDF5)"); }
  SECTION("big-endian") { fails(header("MATLAB 5.0 MAT-file", 0x0001, "MI"), "big-endian"); }
  SECTION("truncated plain element") {
    Bytes f = concat({header(), good_y(), good_x()});
    f.resize(f.size() - 1000);
    fails(f, "truncated data element");
  }
  SECTION("truncated compressed element") {
    Bytes z = compressed(good_x());
    Bytes f = concat({header(), good_y(), z});
    f.resize(f.size() - z.size() / 2);
    fails(f, "truncated");
  }
  SECTION("compressed stream cut short but its tag adjusted") {
    Bytes z = compressed(good_x());
    z.resize(z.size() / 2);
    uint32_t n = uint32_t(z.size() - 8);
    std::memcpy(z.data() + 4, &n, 4);
    fails(concat({header(), good_y(), z}), "truncated compressed element");
  }
  SECTION("corrupt compressed data") {
    Bytes z = compressed(good_x());
    for (size_t k = 10; k < 40; ++k) z[k] ^= 0x5a;
    fails(concat({header(), good_y(), z}), "corrupt compressed element");
  }
  SECTION("no y") { fails(concat({header(), good_x()}), "no numeric variable 'y'"); }
  SECTION("X of the wrong shape") {
    fails(concat({header(), good_y(), matrix("X", m5::mxUINT8_CLASS, {28, 28, 1, 2}, m5::miUINT8, Bytes(1568, 0))}),
          "X has dimensions 28x28x1x2 (expected real 32x32x3xN)");
  }
  SECTION("data shorter than the dimensions") {
    fails(concat({header(), good_y(), matrix("X", m5::mxUINT8_CLASS, {32, 32, 3, 3}, m5::miUINT8, svhn_x(2))}),
          "variable 'X' holds 6144 bytes of data, its dimensions need 9216");
  }
  SECTION("label count disagrees") {
    fails(concat({header(), matrix("y", m5::mxDOUBLE_CLASS, {3, 1}, m5::miDOUBLE, doubles({1, 2, 3})), good_x()}),
          "y holds 3 labels for 2 images");
  }
  SECTION("a label out of range") {
    fails(concat({header(), matrix("y", m5::mxDOUBLE_CLASS, {2, 1}, m5::miDOUBLE, doubles({1, 11})), good_x()}),
          "label 11 of image 1");
  }
  SECTION("a pixel that is not a byte") {
    std::vector<double> v(3072 * 2, 0.0);
    v[5] = 300;
    fails(concat({header(), good_y(), matrix("X", m5::mxDOUBLE_CLASS, {32, 32, 3, 2}, m5::miDOUBLE, doubles(v))}),
          "value 300 at element 5 is not an integer in 0..255");
  }
}

TEST_CASE("mangled .mat files never crash: they read or throw macer::Error") {
  TempDir dir("svhn_fuzz");
  const std::string path = dir.file("train_32x32.mat");
  const Bytes x = matrix("X", m5::mxUINT8_CLASS, {32, 32, 3, 2}, m5::miUINT8, svhn_x(2));
  const Bytes y = matrix("y", m5::mxDOUBLE_CLASS, {2, 1}, m5::miDOUBLE, doubles({1, 2}));
  const Bytes plain = concat({header(), y, x}), packed = concat({header(), compressed(y), compressed(x)});
  uint64_t state = 12345;
  auto rnd = [&](uint64_t n) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (state >> 33) % n;
  };
  int errors = 0;
  for (int trial = 0; trial < 400; ++trial) {
    Bytes f = trial % 2 ? plain : packed;
    if (trial % 3 == 0) {
      f.resize(rnd(f.size()));  // cut anywhere
    } else {
      for (int k = 0, flips = 1 + int(rnd(4)); k < flips; ++k) {
        // Mostly the tags and headers near the front, where structure lives.
        size_t at = 128 + rnd(std::min<size_t>(f.size() - 128, trial % 5 ? 200 : f.size() - 128));
        f[at] = uint8_t(rnd(256));
      }
    }
    write_bytes(path, f);
    try {
      open_svhn(dir.path.string(), "train");
    } catch (const macer::Error& e) {
      ++errors;
      REQUIRE_THAT(e.what(), Contains(path));
    }
  }
  REQUIRE(errors > 100);
}
