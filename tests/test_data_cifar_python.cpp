// CIFAR-10's python version (cifar-10-batches-py, torchvision's download) through data/pickle.h:
// batches pickled as the original files are (Python 2, protocol 2) and as Python 3 writes bytes
// at protocol 2 (_codecs.encode) read back equal to the binary version; other pickles are refused.
#include <catch2/catch.hpp>

#include "data/dataset.h"
#include "data/pickle.h"
#include "kernels/check.h"
#include "tests/data_test_util.h"
#include "tests/fuzz_util.h"

using namespace data_test;
using Catch::Matchers::Contains;
namespace data = macer::data;

namespace {

// Record r: label (r + salt) % 10, pixel k = (k + 17 r + salt) mod 256 (as tests/test_data.cpp).
Bytes records(int n, int salt) {
  Bytes b;
  for (int r = 0; r < n; ++r) {
    b.push_back(uint8_t((r + salt) % 10));
    for (int k = 0; k < 3072; ++k) b.push_back(uint8_t((k + 17 * r + salt) % 256));
  }
  return b;
}

void put(Bytes& b, const std::string& s) { b.insert(b.end(), s.begin(), s.end()); }
void put_le32(Bytes& b, uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(uint8_t(v >> (8 * i)));
}
// A key: Python 2's SHORT_BINSTRING, or Python 3's BINUNICODE.
void key(Bytes& b, const std::string& k, bool py3) {
  if (py3) {
    b.push_back('X');
    put_le32(b, uint32_t(k.size()));
  } else {
    b.push_back('U');
    b.push_back(uint8_t(k.size()));
  }
  put(b, k);
}

// The batch of `recs` (binary records) pickled as cPickle.dump(d, f, 2) of
// {'data': uint8 array n x 3072, 'labels': [...], 'batch_label': ..., 'filenames': [...]}.
Bytes python_batch(const Bytes& recs, bool py3) {
  const int n = int(recs.size() / 3073);
  std::string pixels;
  Bytes b = {0x80, 0x02, '}', 'q', 1, '('};
  key(b, "data", py3);
  b.push_back('q'), b.push_back(2);
  put(b, "cnumpy.core.multiarray\n_reconstruct\nq\x03" "cnumpy\nndarray\nq\x04K");
  b.push_back(0), b.push_back(0x85);
  put(b, "U\x01" "b\x87Rq\x05(K\x01M");
  b.push_back(uint8_t(n)), b.push_back(uint8_t(n >> 8));
  b.push_back('M'), b.push_back(0x00), b.push_back(0x0c), b.push_back(0x86);
  put(b, "cnumpy\ndtype\nq\x06U\x02u1K");
  b.push_back(0), b.push_back('K'), b.push_back(1);
  put(b, "\x87Rq\x07(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK");
  b.push_back(0), b.push_back('t'), b.push_back('b'), b.push_back(0x89);
  for (int r = 0; r < n; ++r) pixels.append(reinterpret_cast<const char*>(&recs[size_t(r) * 3073 + 1]), 3072);
  if (py3) {  // Python 3 pickles bytes at protocol 2 as _codecs.encode(latin-1 text, 'latin1')
    std::string utf8;
    for (unsigned char c : pixels) {
      if (c < 0x80) utf8.push_back(char(c));
      else utf8.push_back(char(0xC0 | (c >> 6))), utf8.push_back(char(0x80 | (c & 0x3F)));
    }
    put(b, "c_codecs\nencode\nq\x10X");
    put_le32(b, uint32_t(utf8.size()));
    put(b, utf8);
    put(b, "X");
    put_le32(b, 6);
    put(b, "latin1\x86R");
  } else {
    b.push_back('T');
    put_le32(b, uint32_t(pixels.size()));
    put(b, pixels);
  }
  put(b, "tb");
  key(b, "labels", py3);
  b.push_back('q'), b.push_back(8), b.push_back(']'), b.push_back('q'), b.push_back(9), b.push_back('(');
  for (int r = 0; r < n; ++r) b.push_back('K'), b.push_back(recs[size_t(r) * 3073]);
  b.push_back('e');
  key(b, "batch_label", py3);
  key(b, "training batch", py3);
  key(b, "filenames", py3);
  b.push_back(']'), b.push_back('(');
  for (int r = 0; r < n; ++r) key(b, "img_" + std::to_string(r) + ".png", py3);
  put(b, "eu.");
  return b;
}

}  // namespace

TEST_CASE("CIFAR-10's python batches read back as the binary ones") {
  for (bool py3 : {false, true}) {
    TempDir bin("cifar_bin"), py("cifar_py");
    for (int b = 1; b <= 5; ++b) {
      write_bytes(bin.file("data_batch_" + std::to_string(b) + ".bin"), records(3, b));
      write_bytes(py.file("cifar-10-batches-py/data_batch_" + std::to_string(b)), python_batch(records(3, b), py3));
    }
    write_bytes(bin.file("test_batch.bin"), records(4, 100));
    write_bytes(py.file("cifar-10-batches-py/test_batch"), python_batch(records(4, 100), py3));
    for (const char* split : {"train", "test"}) {
      auto a = data::open_dataset("cifar10", bin.path.string(), split, {});
      // The folder torchvision makes, and the batches folder itself.
      for (std::string dir : {py.path.string(), py.file("cifar-10-batches-py")}) {
        auto b = data::open_dataset("cifar10", dir, split, {});
        REQUIRE(b->size() == a->size());
        REQUIRE((b->channels() == 3 && b->height() == 32 && b->classes() == 10));
        for (int64_t i = 0; i < a->size(); ++i) {
          REQUIRE(b->label(i) == a->label(i));
          REQUIRE(image_bytes(*b, i) == image_bytes(*a, i));
        }
      }
    }
  }
}

TEST_CASE("pickles outside the subset are refused, naming the file") {
  TempDir dir("cifar_py_bad");
  const std::string path = dir.file("test_batch");
  auto expect = [&](const Bytes& b, const std::string& fragment) {
    write_bytes(path, b);
    REQUIRE_THROWS_WITH(data::open_dataset("cifar10", dir.path.string(), "test", {}),
                        Contains(path) && Contains(fragment));
  };
  // A pickle that would run a command when Python loads it: its global is refused.
  Bytes evil = {0x80, 0x02};
  put(evil, "cposix\nsystem\nX");
  put_le32(evil, 2);
  put(evil, "ls\x85R.");
  expect(evil, "global posix.system is not allowed");
  Bytes good = python_batch(records(2, 1), false);
  expect(Bytes(good.begin(), good.begin() + 200), "truncated");
  Bytes no_labels = {0x80, 0x02, '}', '.'};
  expect(no_labels, "'data' and 'labels'");
  Bytes bad_label = good;
  // The labels list's first BININT1 follows "]q\x09(K".
  for (size_t i = 0; i + 4 < bad_label.size(); ++i)
    if (bad_label[i] == ']' && bad_label[i + 1] == 'q' && bad_label[i + 2] == 9 && bad_label[i + 3] == '(') {
      bad_label[i + 5] = 42;
      break;
    }
  expect(bad_label, "label 0 is not one of 0..9");
  Bytes unknown_op = {0x80, 0x02, 'I', '1', '\n', '.'};  // INT in text form: outside the subset
  expect(unknown_op, "opcode 0x49");
}

TEST_CASE("fuzz: CIFAR-10 python batches") {
  TempDir dir("fuzz_cifar_py");
  for (bool py3 : {false, true}) {
    const Bytes valid = python_batch(records(2, 5), py3);
    fuzz::run(py3 ? "cifar10 test_batch (py3)" : "cifar10 test_batch (py2)", valid, py3 ? 62 : 61, 2000, 320,
              {"q", "h", "a", "(", "t", "b", "R", "\x85", "\x86", "\x87"}, dir.path.string(), [&](const Bytes& b) {
                fuzz::write_file(dir.file("test_batch"), b);
                auto ds = data::open_dataset("cifar10", dir.path.string(), "test", {});
                std::vector<float> img(size_t(ds->image_numel()));
                for (int64_t i = 0; i < ds->size(); ++i) ds->image(i, img.data());
              });
  }
}
