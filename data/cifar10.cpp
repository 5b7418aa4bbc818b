// CIFAR-10 in its binary form (data_batch_1..5.bin for train, test_batch.bin for test):
// records of 1 label byte and 3072 pixel bytes (R, G, B planes of 32x32). Part of data/.
#include <string>
#include <vector>

#include "data/formats.h"
#include "data/in_memory.h"
#include "data/io.h"
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

}  // namespace

std::unique_ptr<Dataset> open_cifar10(const std::string& dir_in, const std::string& split, const DatasetOptions&) {
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
