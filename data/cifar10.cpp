// CIFAR-10 in its binary form (data_batch_1..5.bin for train, test_batch.bin for test: records
// of 1 label byte and 3072 pixel bytes, R, G, B planes of 32x32) or its python form (the same
// names without .bin, pickled; torchvision's download). Part of data/.
#include <string>
#include <vector>

#include "data/formats.h"
#include "data/in_memory.h"
#include "data/io.h"
#include "data/pickle.h"
#include "kernels/check.h"

namespace macer::data {

namespace {

constexpr int kSide = 32;
constexpr size_t kPixels = 3 * kSide * kSide;  // 3072
constexpr size_t kRecord = 1 + kPixels;        // 3073

// The folder holding the .bin files: `dir` itself, or the archive's cifar-10-batches-bin in it.
std::string batches_dir(const std::string& dir) {
  std::string nested = io::join(dir, "cifar-10-batches-bin");
  if (!io::is_file(io::join(dir, "test_batch.bin")) && io::is_dir(nested)) return nested;
  return dir;
}

// The python version's folder (torchvision's download: cifar-10-batches-py, files without
// .bin), or "" when `dir` holds the binary version or nothing of CIFAR-10.
std::string python_dir(const std::string& dir) {
  if (io::is_file(io::join(dir, "test_batch.bin")) || io::is_dir(io::join(dir, "cifar-10-batches-bin"))) return "";
  if (io::is_file(io::join(dir, "test_batch"))) return dir;
  std::string nested = io::join(dir, "cifar-10-batches-py");
  return io::is_dir(nested) ? nested : "";
}

// One pickled batch: a dict with 'data' (numpy uint8, N x 3072, the R, G, B planes of each
// image, as in the binary version) and 'labels' (a list of N ints).
void read_python_batch(const std::string& path, std::vector<uint8_t>* pixels, std::vector<int32_t>* labels) {
  std::vector<uint8_t> bytes = io::read_file(path);
  pickle::Pickle parsed = pickle::parse(bytes, path);
  const pickle::Value* root = parsed.root;
  MACER_CHECK(root->kind == pickle::Value::Kind::Dict, path << ": not a CIFAR-10 python batch (no dict)");
  const pickle::Value* data = root->find("data");
  const pickle::Value* lab = root->find("labels");
  MACER_CHECK(data && lab, path << ": a CIFAR-10 python batch has 'data' and 'labels'");
  pickle::U8Array a = pickle::numpy_u8(*data, path, "data");
  MACER_CHECK(a.shape.size() == 2 && a.shape[1] == int64_t(kPixels),
              path << ": 'data' has shape " << (a.shape.empty() ? 0 : a.shape[0]) << "x..., expected N x " << kPixels);
  MACER_CHECK(lab->kind == pickle::Value::Kind::List && int64_t(lab->items.size()) == a.shape[0],
              path << ": 'labels' is not a list of " << a.shape[0] << " labels");
  for (size_t r = 0; r < lab->items.size(); ++r) {
    const pickle::Value& l = *lab->items[r];
    MACER_CHECK(l.kind == pickle::Value::Kind::Int && l.i >= 0 && l.i < 10,
                path << ": label " << r << " is not one of 0..9");
    labels->push_back(int32_t(l.i));
  }
  pixels->insert(pixels->end(), a.bytes->begin(), a.bytes->end());
}

}  // namespace

std::unique_ptr<Dataset> open_cifar10(const std::string& dir_in, const std::string& split, const DatasetOptions&) {
  if (std::string py = python_dir(dir_in); !py.empty()) {
    std::vector<uint8_t> pixels;
    std::vector<int32_t> labels;
    if (split == "train")
      for (int b = 1; b <= 5; ++b) read_python_batch(io::join(py, "data_batch_" + std::to_string(b)), &pixels, &labels);
    else
      read_python_batch(io::join(py, "test_batch"), &pixels, &labels);
    return std::make_unique<InMemoryDataset>("cifar10", 3, kSide, kSide, 10, std::move(pixels), std::move(labels));
  }
  const std::string dir = batches_dir(dir_in);
  std::vector<std::string> files;
  if (split == "train")
    for (int b = 1; b <= 5; ++b) files.push_back("data_batch_" + std::to_string(b) + ".bin");
  else
    files.push_back("test_batch.bin");

  std::vector<uint8_t> pixels;
  std::vector<int32_t> labels;
  for (const auto& name : files) {
    const std::string path = io::join(dir, name);
    std::vector<uint8_t> bytes = io::read_file(path);
    MACER_CHECK(!bytes.empty(), path << ": empty file (expected records of " << kRecord << " bytes)");
    MACER_CHECK(bytes.size() % kRecord == 0,
                path << ": size " << bytes.size() << " is not a whole number of " << kRecord
                     << "-byte CIFAR-10 records (truncated?)");
    const size_t n = bytes.size() / kRecord;
    pixels.reserve(pixels.size() + n * kPixels);
    for (size_t r = 0; r < n; ++r) {
      const uint8_t* rec = bytes.data() + r * kRecord;
      MACER_CHECK(rec[0] < 10, path << ": record " << r << " has label " << int(rec[0]) << " (expected 0..9)");
      labels.push_back(rec[0]);
      pixels.insert(pixels.end(), rec + 1, rec + kRecord);  // already CHW
    }
  }
  // torchvision's CIFAR10.classes (the data set's batches.meta label_names).
  std::vector<std::string> names = {"airplane", "automobile", "bird",  "cat",  "deer",
                                    "dog",      "frog",       "horse", "ship", "truck"};
  return std::make_unique<InMemoryDataset>("cifar10", 3, kSide, kSide, 10, std::move(pixels), std::move(labels),
                                           std::move(names));
}

}  // namespace macer::data
