// open_dataset: a registry from data set name to the opener of its file format, so callers
// never grow a chain of ifs. Part of data/; the openers live one format per file.
#include "data/dataset.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <sstream>
#include <thread>

#include "data/formats.h"
#include "kernels/check.h"

namespace macer::data {

namespace {

const std::map<std::string, DatasetOpener>& registry() {
  static const std::map<std::string, DatasetOpener> openers = {
      {"cifar10", open_cifar10},         {"mnist", open_mnist},
      {"fashion-mnist", open_fashion_mnist}, {"svhn", open_svhn},
      {"imagefolder", open_image_folder}, {"synthetic", open_synthetic},
  };
  return openers;
}

std::string joined(const std::vector<std::string>& names) {
  std::ostringstream os;
  for (size_t i = 0; i < names.size(); ++i) os << (i ? ", " : "") << names[i];
  return os.str();
}

}  // namespace

std::vector<std::string> dataset_kinds() {
  std::vector<std::string> names;
  for (const auto& kv : registry()) names.push_back(kv.first);
  return names;
}

std::string canonical_dataset(const std::string& name) { return name == "imagenet" ? "imagefolder" : name; }

std::string data_folder(const std::string& kind, const std::string& dir) {
  if (!dir.empty()) return dir;
  if (canonical_dataset(kind) == "synthetic") return "";
  // Debian's data set package, when the flags name no folder and it is installed.
  std::error_code ec;
  if (canonical_dataset(kind) == "fashion-mnist" && std::filesystem::is_directory("/usr/share/datasets/fashion-mnist", ec))
    return "/usr/share/datasets/fashion-mnist";
  return ".";
}

std::unique_ptr<Dataset> open_dataset(const std::string& given_kind, const std::string& dir, const std::string& split,
                                      const DatasetOptions& opts) {
  const std::string kind = canonical_dataset(given_kind);
  auto it = registry().find(kind);
  MACER_CHECK(it != registry().end(), "unknown data set '" << kind << "' (known: " << joined(dataset_kinds()) << ")");
  MACER_CHECK(split == "train" || split == "test",
              kind << ": unknown split '" << split << "' (expected train or test)");
  // Where each data set comes from, for the error that misses its files.
  static const std::map<std::string, std::string> sources = {
      {"cifar10", "CIFAR-10's binary version (cifar-10-batches-bin: data_batch_1..5.bin, test_batch.bin) or "
                  "torchvision's python version (cifar-10-batches-py) from https://www.cs.toronto.edu/~kriz/cifar.html"},
      {"mnist", "train-images-idx3-ubyte[.gz] and the other IDX files from https://yann.lecun.com/exdb/mnist/"},
      {"fashion-mnist", "Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist: "
                        "/usr/share/datasets/fashion-mnist) or https://github.com/zalandoresearch/fashion-mnist"},
      {"svhn", "train_32x32.mat and test_32x32.mat from http://ufldl.stanford.edu/housenumbers/"},
      {"imagefolder", "a folder with one subfolder of images per class (train/ and val/ for ImageNet)"},
  };
  std::string where = data_folder(kind, dir);
  if (where == ".") where = dir;  // none given: the readers search the current folder
  std::unique_ptr<Dataset> ds;
  try {
    ds = it->second(where, split, opts);
  } catch (const Error& e) {
    std::string what = e.what();
    auto src = sources.find(kind);
    // A file that cannot be opened, or an IDX file (data/idx.cpp) under none of its names.
    bool missing = what.find("cannot open") != std::string::npos ||
                   what.find(" not found (looked in ") != std::string::npos;
    if (!missing || src == sources.end()) throw;
    throw Error(what + "; pass the folder holding " + kind + " with " +
                (opts.dir_option.empty() ? "--data-dir (macer_certify) or data.dir (a config, or macer_train --set "
                                           "data.dir=DIR)"
                                         : opts.dir_option) +
                (where.empty() ? " (none given: the current folder was searched)" : "") + "; get it as " +
                src->second);
  }
  MACER_CHECK(ds && ds->size() > 0, kind << " " << split << " in " << where << ": no images");
  return ds;
}

void Dataset::random_resized_crop(int64_t, uint64_t, float*) const {
  MACER_CHECK(false, name() << ": RandomResizedCrop needs the full images of an image folder; " << name()
                            << " has none (use data.augment_crop)");
}

std::vector<std::string> find_unreadable_images(const Dataset& set, const std::vector<int64_t>& indices, int threads) {
  if (set.in_memory() || indices.empty()) return {};
  const int n = threads > 0 ? threads : int(std::clamp(std::thread::hardware_concurrency(), 1u, 8u));
  std::vector<std::string> problems(indices.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    std::vector<float> scratch(size_t(set.image_numel()));
    for (size_t j = next++; j < indices.size(); j = next++) {
      try {
        set.image(indices[j], scratch.data());
      } catch (const std::exception& e) {
        problems[j] = e.what();
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < n; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  problems.erase(std::remove(problems.begin(), problems.end(), std::string()), problems.end());
  return problems;
}

void check_images_readable(const Dataset& set, const std::vector<int64_t>& indices, const std::string& advice) {
  const std::vector<std::string> bad = find_unreadable_images(set, indices);
  if (bad.empty()) return;
  std::ostringstream os;
  os << bad.size() << " of the " << indices.size() << " selected images cannot be read: ";
  for (size_t i = 0; i < bad.size() && i < 3; ++i) os << (i ? "; " : "") << bad[i];
  if (bad.size() > 3) os << "; ...";
  os << ". " << advice;
  MACER_CHECK(false, os.str());
}

}  // namespace macer::data
