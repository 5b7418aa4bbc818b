// A data set held in memory as uint8 pixels (CHW per image) and int32 labels, converted to
// floats in [0, 1] on access. Every file format of data/ except image folders loads into one.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace macer::data {

class InMemoryDataset : public Dataset {
 public:
  // pixels: size * c * h * w bytes, image after image, each in CHW order; labels in [0, classes).
  // class_names: in label order (empty, or one per class).
  InMemoryDataset(std::string name, int c, int h, int w, int classes, std::vector<uint8_t> pixels,
                  std::vector<int32_t> labels, std::vector<std::string> class_names = {});

  int64_t size() const override { return int64_t(labels_.size()); }
  int channels() const override { return c_; }
  int height() const override { return h_; }
  int width() const override { return w_; }
  int classes() const override { return classes_; }
  int32_t label(int64_t i) const override;
  void image(int64_t i, float* out) const override;
  std::string name() const override { return name_; }
  std::vector<std::string> class_names() const override { return class_names_; }

  // The raw bytes of image i (c*h*w, CHW), for tests.
  const uint8_t* pixels(int64_t i) const;

 private:
  void check_index(int64_t i) const;

  std::string name_;
  int c_, h_, w_, classes_;
  std::vector<uint8_t> pixels_;
  std::vector<int32_t> labels_;
  std::vector<std::string> class_names_;
};

}  // namespace macer::data
