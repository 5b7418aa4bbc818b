// Image folders (ImageNet-style): one subfolder per class, found and ordered as torchvision's
// ImageFolder does (data/image_folder.h), decoded as PIL does (data/decode.h) on access, then
// torchvision's eval transform (Resize + CenterCrop) or, for training, RandomResizedCrop.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "data/decode.h"
#include "data/formats.h"
#include "data/image_folder.h"
#include "data/io.h"
#include "data/resize.h"
#include "kernels/check.h"

namespace macer::data {

namespace {

namespace fs = std::filesystem;

// The class root for a split: dir/train or dir/test (or dir/val). When `dir` is itself a
// split folder (".../train", ".../val", ".../test"), the other split is its sibling; a
// training folder is never silently used as the test set. Else `dir` holds the classes.
std::string split_root(const std::string& dir, const std::string& split) {
  const std::vector<std::string> names = split == "test" ? std::vector<std::string>{"test", "val"}
                                                         : std::vector<std::string>{"train"};
  for (const auto& n : names)
    if (io::is_dir(io::join(dir, n))) return io::join(dir, n);
  fs::path p = fs::path(dir);
  if (!p.has_filename()) p = p.parent_path();  // a trailing '/'
  const std::string base = p.filename().string();
  const bool is_train = base == "train", is_eval = base == "val" || base == "test";
  if ((split == "train" && is_train) || (split == "test" && is_eval)) return dir;
  if (is_train || is_eval) {
    for (const auto& n : names)
      if (io::is_dir((p.parent_path() / n).string())) return (p.parent_path() / n).string();
    MACER_CHECK(false, dir << ": a '" << base << "' folder, but no sibling " << names[0]
                           << (names.size() > 1 ? "/ or val/" : "/") << " folder for the " << split << " split");
  }
  return dir;
}

class ImageFolderDataset : public Dataset {
 public:
  ImageFolderDataset(const std::string& dir, const std::string& split, int image_size,
                     const std::string& class_order, bool jpeg_scaled)
      : crop_(image_size), resize_(image_size * 256 / 224), jpeg_scaled_(jpeg_scaled) {
    MACER_CHECK(image_size >= 1 && image_size <= 4096, "imagefolder: image_size " << image_size << " outside 1..4096");
    root_ = split_root(dir, split);
    MACER_CHECK(io::is_dir(root_), root_ << ": image folder not found (or not a directory)");
    scan_ = scan_image_folder(root_, class_order);
  }

  int64_t size() const override { return int64_t(scan_.files.size()); }
  int channels() const override { return 3; }
  int height() const override { return crop_; }
  int width() const override { return crop_; }
  int classes() const override { return int(scan_.classes.size()); }
  std::vector<std::string> class_names() const override { return scan_.classes; }
  std::string summary() const override { return scan_.summary(); }
  std::string name() const override { return "imagefolder"; }
  bool in_memory() const override { return false; }

  int32_t label(int64_t i) const override {
    check_index(i);
    return scan_.labels[size_t(i)];
  }

  void image(int64_t i, float* out) const override {
    check_index(i);
    const std::string& path = scan_.files[size_t(i)];
    const RgbImage decoded = decode_image_file(path);
    const int w = decoded.width, h = decoded.height;

    // torchvision's Resize(resize_) (PIL's antialiased bilinear) then CenterCrop(crop_).
    const auto [nw, nh] = resized_shorter_side(w, h, resize_);
    MACER_CHECK(nw >= 1 && nh >= 1, path << ": image of " << w << "x" << h << " too thin to resize");
    const RgbImage resized = resize_bilinear_pil(decoded, nw, nh);
    MACER_CHECK(nw >= crop_ && nh >= crop_, path << ": image of " << w << "x" << h << " too small to crop");
    // Centre crop, offsets rounded half to even as Python's round().
    CropBox box;
    box.top = int(std::nearbyint((nh - crop_) / 2.0)), box.left = int(std::nearbyint((nw - crop_) / 2.0));
    box.height = box.width = crop_;
    to_chw(crop(resized, box), out);
  }

  void random_resized_crop(int64_t i, uint64_t seed, float* out) const override {
    check_index(i);
    const std::string& path = scan_.files[size_t(i)];
    const std::vector<uint8_t> bytes = io::read_file(path);
    int w = 0, h = 0;
    if (jpeg_scaled_ && jpeg_dimensions(bytes.data(), bytes.size(), &w, &h)) {
      // The box is drawn on the full size; the JPEG is decoded at the smallest scale 1/s whose
      // box (floored) still covers crop_ x crop_, so the resize still only shrinks.
      const CropBox box = random_resized_crop_box(w, h, seed);
      int s = 8;
      while (s > 1 && (box.width / s < crop_ || box.height / s < crop_)) s /= 2;
      const RgbImage decoded = decode_image_scaled(bytes.data(), bytes.size(), path, s);
      CropBox b;
      b.top = std::min(box.top / s, decoded.height - 1), b.left = std::min(box.left / s, decoded.width - 1);
      b.height = std::clamp(box.height / s, 1, decoded.height - b.top);
      b.width = std::clamp(box.width / s, 1, decoded.width - b.left);
      to_chw(resize_bilinear_pil(crop(decoded, b), crop_, crop_), out);
      return;
    }
    const RgbImage decoded = decode_image(bytes.data(), bytes.size(), path);
    const CropBox box = random_resized_crop_box(decoded.width, decoded.height, seed);
    to_chw(resize_bilinear_pil(crop(decoded, box), crop_, crop_), out);
  }

 private:
  // A crop_ x crop_ RGB image as (3, crop_, crop_) floats in [0, 1].
  void to_chw(const RgbImage& img, float* out) const {
    const size_t plane = size_t(crop_) * crop_;
    for (size_t p = 0; p < plane; ++p)
      for (size_t c = 0; c < 3; ++c) out[c * plane + p] = float(img.pixels[p * 3 + c]) / 255.0f;
  }

  void check_index(int64_t i) const {
    MACER_CHECK(i >= 0 && i < size(), root_ << ": image index " << i << " outside [0, " << size() << ")");
  }

  int crop_, resize_;
  bool jpeg_scaled_;
  std::string root_;
  ImageFolderScan scan_;
};

}  // namespace

std::unique_ptr<Dataset> open_image_folder(const std::string& dir, const std::string& split, const DatasetOptions& o) {
  return std::make_unique<ImageFolderDataset>(dir, split, o.image_size, o.class_order, o.jpeg_scaled_crops);
}

}  // namespace macer::data
