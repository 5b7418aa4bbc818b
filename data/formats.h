// The openers behind open_dataset's registry, one per file format (data/cifar10.cpp,
// data/idx.cpp, data/svhn_mat.cpp, data/image_folder.cpp, data/synthetic.cpp). Internal to data/.
#pragma once
#include <memory>
#include <string>

#include "data/dataset.h"

namespace macer::data {

// Every opener gets the data set's folder, the split ("train" or "test", already checked)
// and the options, and throws macer::Error naming the file on any problem.
using DatasetOpener = std::unique_ptr<Dataset> (*)(const std::string& dir, const std::string& split,
                                                   const DatasetOptions& opts);

std::unique_ptr<Dataset> open_cifar10(const std::string& dir, const std::string& split, const DatasetOptions& opts);
std::unique_ptr<Dataset> open_mnist(const std::string& dir, const std::string& split, const DatasetOptions& opts);
std::unique_ptr<Dataset> open_fashion_mnist(const std::string& dir, const std::string& split,
                                            const DatasetOptions& opts);
std::unique_ptr<Dataset> open_svhn(const std::string& dir, const std::string& split, const DatasetOptions& opts);
std::unique_ptr<Dataset> open_image_folder(const std::string& dir, const std::string& split,
                                           const DatasetOptions& opts);
std::unique_ptr<Dataset> open_synthetic(const std::string& dir, const std::string& split,
                                        const DatasetOptions& opts);

}  // namespace macer::data
