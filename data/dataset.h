// The Dataset interface and the registry that opens one by name ("cifar10", "mnist",
// "fashion-mnist", "svhn", "imagefolder", "synthetic"). Part of data/, below macer/.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace macer::data {

struct DatasetOptions {
  // imagefolder: shorter side resized to image_size*256/224, then a centre crop of
  // image_size x image_size (torchvision's evaluation transform).
  int image_size = 224;
  // imagefolder: how class folders are ordered into labels: auto | text | numeric
  // (data/image_folder.h: auto refuses integer names whose text and numeric orders differ).
  std::string class_order = "auto";
  // imagefolder, RandomResizedCrop only: decode JPEGs at 1/2, 1/4 or 1/8 scale (libjpeg's scaled
  // IDCT) when the crop box so reduced still covers image_size x image_size pixels.
  bool jpeg_scaled_crops = true;
  // synthetic: images per split, their shape and class count, and the seed.
  int64_t synthetic_size = 512;
  int synthetic_channels = 3;
  int synthetic_height = 32;
  int synthetic_width = 32;
  int synthetic_classes = 10;
  uint64_t seed = 0;
  // How the program reading the set is given its folder, named in the error that misses its
  // files ("--data-dir DIR", "--set data.dir=DIR"); empty: both programs' ways.
  std::string dir_option;
};

// A labelled set of images, all of one shape (C, H, W). Access is const and thread-safe.
class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual int channels() const = 0;
  virtual int height() const = 0;
  virtual int width() const = 0;
  virtual int classes() const = 0;
  virtual int32_t label(int64_t i) const = 0;
  // Writes image i as channels()*height()*width() floats in [0, 1], CHW order.
  virtual void image(int64_t i, float* out) const = 0;
  virtual std::string name() const = 0;
  // The class names in label order (as torchvision's `dataset.classes`): the folder names for
  // image folders, the data set's published names otherwise; empty when it has none.
  virtual std::vector<std::string> class_names() const { return {}; }
  // Image i through torchvision's RandomResizedCrop(height()) with the box drawn from `seed`
  // (data/resize.h), for training; image folders only (others throw macer::Error).
  virtual void random_resized_crop(int64_t i, uint64_t seed, float* out) const;
  // One line saying what was found (and what was skipped, and why) for the startup output;
  // empty when there is nothing to say beyond size() and classes().
  virtual std::string summary() const { return ""; }
  // False when image() decodes from disk (image folders): the loader then decodes in parallel.
  virtual bool in_memory() const { return true; }

  int64_t image_numel() const { return int64_t(channels()) * height() * width(); }
};

// Opens split "train" or "test" of data set `kind` stored in `dir`. Bad names, missing or
// malformed files throw one macer::Error naming the file and what is wrong.
std::unique_ptr<Dataset> open_dataset(const std::string& kind, const std::string& dir,
                                      const std::string& split, const DatasetOptions& opts);
// The folder open_dataset reads `kind` from: `dir` when given, else Debian's package folder
// where one is installed (/usr/share/datasets/fashion-mnist), else "." (the current folder);
// "" for the generated synthetic set.
std::string data_folder(const std::string& kind, const std::string& dir);
// Reads (decodes, transforms) every image of `indices` on `threads` threads (0: up to 8) and
// returns "<path>: <problem>" for each one that fails, in index order; empty when all are good.
// For sets in memory (checked whole when opened) it reads nothing and returns nothing.
std::vector<std::string> find_unreadable_images(const Dataset& set, const std::vector<int64_t>& indices,
                                                int threads = 0);
// find_unreadable_images, then throws one macer::Error when any fails: how many of how many,
// the first few problems, and `advice`.
void check_images_readable(const Dataset& set, const std::vector<int64_t>& indices, const std::string& advice);

// The names open_dataset knows, sorted (canonical names only).
std::vector<std::string> dataset_kinds();

// The one vocabulary of data set names, shared with scripts/convert_checkpoint.py: "imagenet" is
// an alias of the canonical "imagefolder" (any folder of class folders); every other name is
// returned as given. Configs, --dataset and checkpoint metadata pass through it.
std::string canonical_dataset(const std::string& name);

}  // namespace macer::data
