// Image folders (ImageNet-style): one subfolder per class, sorted by name; PNG/JPEG/BMP/PPM
// decoded by stb_image on access, resized and centre-cropped as torchvision's eval transform.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

// The one definition of stb_image and stb_image_resize in the engine, kept file-local.
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_FAILURE_USERMSG
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#define STB_IMAGE_RESIZE_STATIC
#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>

#include "data/formats.h"
#include "data/io.h"
#include "data/jpeg_check.h"
#include "kernels/check.h"

namespace macer::data {

namespace {

namespace fs = std::filesystem;

// Extensions stb_image decodes that torchvision's ImageFolder also accepts (compared lower-case).
bool is_image_file(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp" || ext == ".ppm" || ext == ".pgm";
}

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
  ImageFolderDataset(const std::string& dir, const std::string& split, int image_size)
      : crop_(image_size), resize_(image_size * 256 / 224) {
    MACER_CHECK(image_size >= 1 && image_size <= 4096, "imagefolder: image_size " << image_size << " outside 1..4096");
    root_ = split_root(dir, split);
    MACER_CHECK(io::is_dir(root_), root_ << ": image folder not found (or not a directory)");
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(root_, ec))
      if (e.is_directory()) class_names_.push_back(e.path().filename().string());
    MACER_CHECK(!ec, root_ << ": cannot list (" << ec.message() << ")");
    MACER_CHECK(!class_names_.empty(), root_ << ": no class subfolders (expected one folder of images per class)");
    std::sort(class_names_.begin(), class_names_.end());
    for (size_t k = 0; k < class_names_.size(); ++k) {
      // As torchvision: walk the class folder, ordered by (folder, file name).
      const fs::path class_dir = fs::path(root_) / class_names_[k];
      std::vector<std::pair<std::string, std::string>> found;
      for (auto it = fs::recursive_directory_iterator(class_dir, fs::directory_options::follow_directory_symlink, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
        if (it->is_regular_file() && is_image_file(it->path()))
          found.emplace_back(it->path().parent_path().string(), it->path().filename().string());
      MACER_CHECK(!ec, class_dir.string() << ": cannot list (" << ec.message() << ")");
      MACER_CHECK(!found.empty(), class_dir.string() << ": class folder holds no .jpg/.jpeg/.png/.bmp/.ppm/.pgm image");
      std::sort(found.begin(), found.end());
      for (const auto& f : found) {
        files_.push_back((fs::path(f.first) / f.second).string());
        labels_.push_back(int32_t(k));
      }
    }
  }

  int64_t size() const override { return int64_t(files_.size()); }
  int channels() const override { return 3; }
  int height() const override { return crop_; }
  int width() const override { return crop_; }
  int classes() const override { return int(class_names_.size()); }
  std::string name() const override { return "imagefolder"; }
  bool in_memory() const override { return false; }

  int32_t label(int64_t i) const override {
    check_index(i);
    return labels_[size_t(i)];
  }

  void image(int64_t i, float* out) const override {
    check_index(i);
    const std::string& path = files_[size_t(i)];
    int w = 0, h = 0, n = 0;
    const std::vector<uint8_t> bytes = io::read_file(path);
    check_jpeg_tables(bytes.data(), bytes.size(), path);  // before stb_image 2.27 sees them
    MACER_CHECK(bytes.size() <= size_t(INT32_MAX), path << ": image file too large");
    std::unique_ptr<unsigned char, void (*)(void*)> px(
        stbi_load_from_memory(bytes.data(), int(bytes.size()), &w, &h, &n, 3), stbi_image_free);
    MACER_CHECK(px != nullptr, path << ": cannot decode image (" << stbi_failure_reason() << ")");
    MACER_CHECK(w > 0 && h > 0, path << ": empty image");

    // Resize: the shorter side to resize_, the longer in proportion (truncated, as torchvision).
    int nw = w, nh = h;
    if (std::min(w, h) != resize_) {
      if (w <= h) {
        nw = resize_;
        nh = int(int64_t(resize_) * h / w);
      } else {
        nh = resize_;
        nw = int(int64_t(resize_) * w / h);
      }
    }
    std::vector<unsigned char> resized;
    const unsigned char* src = px.get();
    if (nw != w || nh != h) {
      resized.resize(size_t(nw) * nh * 3);
      int ok = stbir_resize_uint8_generic(px.get(), w, h, 0, resized.data(), nw, nh, 0, 3, STBIR_ALPHA_CHANNEL_NONE,
                                          0, STBIR_EDGE_CLAMP, STBIR_FILTER_TRIANGLE, STBIR_COLORSPACE_LINEAR, nullptr);
      MACER_CHECK(ok, path << ": resize from " << w << "x" << h << " to " << nw << "x" << nh << " failed");
      src = resized.data();
    }
    MACER_CHECK(nw >= crop_ && nh >= crop_, path << ": image of " << w << "x" << h << " too small to crop");
    // Centre crop, offsets rounded half to even as Python's round().
    const int top = int(std::nearbyint((nh - crop_) / 2.0)), left = int(std::nearbyint((nw - crop_) / 2.0));
    const size_t plane = size_t(crop_) * crop_;
    for (int y = 0; y < crop_; ++y)
      for (int x = 0; x < crop_; ++x) {
        const unsigned char* p = src + (size_t(top + y) * nw + size_t(left + x)) * 3;
        for (int c = 0; c < 3; ++c) out[c * plane + size_t(y) * crop_ + x] = float(p[c]) / 255.0f;
      }
  }

 private:
  void check_index(int64_t i) const {
    MACER_CHECK(i >= 0 && i < size(), root_ << ": image index " << i << " outside [0, " << size() << ")");
  }

  int crop_, resize_;
  std::string root_;
  std::vector<std::string> class_names_;
  std::vector<std::string> files_;
  std::vector<int32_t> labels_;
};

}  // namespace

std::unique_ptr<Dataset> open_image_folder(const std::string& dir, const std::string& split, const DatasetOptions& o) {
  return std::make_unique<ImageFolderDataset>(dir, split, o.image_size);
}

}  // namespace macer::data
