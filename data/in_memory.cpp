// A data set held in memory as uint8 pixels (CHW per image) and int32 labels; see in_memory.h.
// Part of data/; the loader reads it from its prefetch thread, so access is const only.
#include "data/in_memory.h"

#include <array>

#include "kernels/check.h"

namespace macer::data {

namespace {

// v / 255 for every byte, computed as torchvision's ToTensor does (a float division).
const std::array<float, 256>& byte_to_unit() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int v = 0; v < 256; ++v) t[size_t(v)] = float(v) / 255.0f;
    return t;
  }();
  return table;
}

}  // namespace

InMemoryDataset::InMemoryDataset(std::string name, int c, int h, int w, int classes,
                                 std::vector<uint8_t> pixels, std::vector<int32_t> labels,
                                 std::vector<std::string> class_names)
    : name_(std::move(name)), c_(c), h_(h), w_(w), classes_(classes), pixels_(std::move(pixels)),
      labels_(std::move(labels)), class_names_(std::move(class_names)) {
  MACER_CHECK(class_names_.empty() || class_names_.size() == size_t(classes),
              name_ << ": " << class_names_.size() << " class names for " << classes << " classes");
  MACER_CHECK(c > 0 && h > 0 && w > 0 && classes > 0,
              name_ << ": bad image shape " << c << "x" << h << "x" << w << " or class count " << classes);
  MACER_CHECK(pixels_.size() == labels_.size() * size_t(c) * size_t(h) * size_t(w),
              name_ << ": " << pixels_.size() << " pixel bytes for " << labels_.size() << " images of "
                    << c << "x" << h << "x" << w);
  for (size_t i = 0; i < labels_.size(); ++i)
    MACER_CHECK(labels_[i] >= 0 && labels_[i] < classes,
                name_ << ": label " << labels_[i] << " of image " << i << " is outside [0, " << classes << ")");
}

void InMemoryDataset::check_index(int64_t i) const {
  MACER_CHECK(i >= 0 && i < size(), name_ << ": image index " << i << " outside [0, " << size() << ")");
}

int32_t InMemoryDataset::label(int64_t i) const {
  check_index(i);
  return labels_[size_t(i)];
}

const uint8_t* InMemoryDataset::pixels(int64_t i) const {
  check_index(i);
  return pixels_.data() + size_t(i) * size_t(image_numel());
}

void InMemoryDataset::image(int64_t i, float* out) const {
  const uint8_t* p = pixels(i);
  const auto& table = byte_to_unit();
  const int64_t n = image_numel();
  for (int64_t k = 0; k < n; ++k) out[k] = table[p[k]];
}

}  // namespace macer::data
