// open_dataset: a registry from data set name to the opener of its file format, so callers
// never grow a chain of ifs. Part of data/; the openers live one format per file.
#include "data/dataset.h"

#include <map>
#include <sstream>

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

std::unique_ptr<Dataset> open_dataset(const std::string& kind, const std::string& dir, const std::string& split,
                                      const DatasetOptions& opts) {
  auto it = registry().find(kind);
  MACER_CHECK(it != registry().end(), "unknown data set '" << kind << "' (known: " << joined(dataset_kinds()) << ")");
  MACER_CHECK(split == "train" || split == "test",
              kind << ": unknown split '" << split << "' (expected train or test)");
  std::unique_ptr<Dataset> ds = it->second(dir, split, opts);
  MACER_CHECK(ds && ds->size() > 0, kind << " " << split << " in " << dir << ": no images");
  return ds;
}

}  // namespace macer::data
