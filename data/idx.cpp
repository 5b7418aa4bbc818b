// MNIST and Fashion-MNIST in IDX form ({train,t10k}-{images-idx3,labels-idx1}-ubyte, raw or
// .gz): big-endian magic 2051 (images) or 2049 (labels), counts, then bytes. Part of data/.
#include <string>
#include <vector>

#include "data/formats.h"
#include "data/in_memory.h"
#include "data/io.h"
#include "kernels/check.h"

namespace macer::data {

namespace {

constexpr uint32_t kImagesMagic = 2051;  // 0x00000803: unsigned byte, 3 dimensions
constexpr uint32_t kLabelsMagic = 2049;  // 0x00000801: unsigned byte, 1 dimension

struct IdxImages {
  uint32_t count = 0, rows = 0, cols = 0;
  std::vector<uint8_t> pixels;  // count * rows * cols
};

IdxImages read_images(const std::string& path) {
  std::vector<uint8_t> b = io::read_file_gz(path);
  MACER_CHECK(b.size() >= 16, path << ": truncated IDX header (" << b.size() << " bytes, expected at least 16)");
  uint32_t magic = io::be32(b.data());
  MACER_CHECK(magic == kImagesMagic, path << ": bad magic " << magic << " (expected " << kImagesMagic
                                          << " for IDX images)");
  IdxImages im;
  im.count = io::be32(b.data() + 4);
  im.rows = io::be32(b.data() + 8);
  im.cols = io::be32(b.data() + 12);
  MACER_CHECK(im.count > 0, path << ": header declares no images");
  MACER_CHECK(im.rows > 0 && im.rows <= 4096 && im.cols > 0 && im.cols <= 4096,
              path << ": implausible image size " << im.rows << "x" << im.cols);
  const uint64_t want = uint64_t(im.count) * im.rows * im.cols;
  const uint64_t have = b.size() - 16;
  MACER_CHECK(have >= want, path << ": truncated: " << have << " pixel bytes, the header declares " << im.count
                                 << " images of " << im.rows << "x" << im.cols << " (" << want << " bytes)");
  MACER_CHECK(have == want, path << ": " << (have - want) << " unexpected bytes after the " << im.count
                                 << " images the header declares");
  im.pixels.assign(b.begin() + 16, b.end());
  return im;
}

std::vector<int32_t> read_labels(const std::string& path, int classes) {
  std::vector<uint8_t> b = io::read_file_gz(path);
  MACER_CHECK(b.size() >= 8, path << ": truncated IDX header (" << b.size() << " bytes, expected at least 8)");
  uint32_t magic = io::be32(b.data());
  MACER_CHECK(magic == kLabelsMagic, path << ": bad magic " << magic << " (expected " << kLabelsMagic
                                          << " for IDX labels)");
  const uint32_t count = io::be32(b.data() + 4);
  const uint64_t have = b.size() - 8;
  MACER_CHECK(have >= count, path << ": truncated: " << have << " label bytes, the header declares " << count);
  MACER_CHECK(have == count, path << ": " << (have - count) << " unexpected bytes after the " << count
                                  << " labels the header declares");
  std::vector<int32_t> labels(count);
  for (uint32_t i = 0; i < count; ++i) {
    const uint8_t v = b[8 + i];
    MACER_CHECK(v < classes, path << ": label " << int(v) << " at " << i << " (expected 0.." << classes - 1 << ")");
    labels[i] = v;
  }
  return labels;
}

// The file for `stem` (e.g. "train-images-idx3-ubyte"): raw, .gz, or with the '.' some copies use.
std::string idx_path(const std::string& dir, const std::string& stem) {
  std::string dotted = stem;
  size_t dash = dotted.rfind("-idx");
  if (dash != std::string::npos) dotted[dash] = '.';
  return io::find_file(dir, {stem, stem + ".gz", dotted, dotted + ".gz"}, "IDX file");
}

// torchvision's MNIST.classes and FashionMNIST.classes.
const std::vector<std::string> kMnistClasses = {"0 - zero", "1 - one", "2 - two",   "3 - three", "4 - four",
                                                "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine"};
const std::vector<std::string> kFashionClasses = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                  "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

std::unique_ptr<Dataset> open_idx(const std::string& name, const std::string& dir, const std::string& split) {
  const std::string prefix = split == "train" ? "train" : "t10k";
  const std::string images_path = idx_path(dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = idx_path(dir, prefix + "-labels-idx1-ubyte");
  IdxImages im = read_images(images_path);
  std::vector<int32_t> labels = read_labels(labels_path, 10);
  MACER_CHECK(labels.size() == im.count, labels_path << ": " << labels.size() << " labels, but " << images_path
                                                     << " holds " << im.count << " images");
  return std::make_unique<InMemoryDataset>(name, 1, int(im.rows), int(im.cols), 10, std::move(im.pixels),
                                           std::move(labels), name == "mnist" ? kMnistClasses : kFashionClasses);
}

}  // namespace

std::unique_ptr<Dataset> open_mnist(const std::string& dir, const std::string& split, const DatasetOptions&) {
  return open_idx("mnist", dir, split);
}

std::unique_ptr<Dataset> open_fashion_mnist(const std::string& dir, const std::string& split, const DatasetOptions&) {
  return open_idx("fashion-mnist", dir, split);
}

}  // namespace macer::data
