// data/image_folder.h: finding an image folder's classes and files as torchvision's
// ImageFolder (find_classes, make_dataset: sorted os.scandir, sorted os.walk) does.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <sstream>
#include <utility>

#include "data/image_folder.h"
#include "kernels/check.h"

namespace macer::data {

namespace {

namespace fs = std::filesystem;

bool hidden(const std::string& name) { return !name.empty() && name[0] == '.'; }

bool is_integer_name(const std::string& s) {
  return !s.empty() && s.size() <= 18 && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

bool has_image_extension(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  for (const auto& ext : image_extensions())
    if (lower.size() > ext.size() && lower.compare(lower.size() - ext.size(), ext.size(), ext) == 0) return true;
  return false;
}

std::string first_names(const std::vector<std::string>& names, size_t k) {
  std::ostringstream os;
  for (size_t i = 0; i < names.size() && i < k; ++i) os << (i ? ", " : "") << names[i];
  if (names.size() > k) os << ", ...";
  return os.str();
}

// Orders the class names (see scan_image_folder); throws when "auto" meets integer names whose
// text order is not their numeric order.
void order_classes(std::vector<std::string>& names, const std::string& order, const std::string& root) {
  MACER_CHECK(order == "auto" || order == "text" || order == "numeric",
              "class_order '" << order << "' unknown (expected auto, text or numeric)");
  std::sort(names.begin(), names.end());  // as Python sorts str: by code point (UTF-8 bytes)
  const bool all_integers = std::all_of(names.begin(), names.end(), is_integer_name);
  std::vector<std::string> numeric = names;
  if (all_integers)
    std::stable_sort(numeric.begin(), numeric.end(),
                     [](const std::string& a, const std::string& b) { return std::stoll(a) < std::stoll(b); });
  if (order == "numeric") {
    for (const auto& n : names)
      MACER_CHECK(is_integer_name(n), root << ": class_order numeric, but class folder '" << n
                                          << "' is not named by an integer");
    names = numeric;
  } else if (order == "auto" && all_integers && numeric != names) {
    MACER_CHECK(false, root << ": the class folders are named by integers (" << first_names(numeric, 4)
                            << ") and their text order (" << first_names(names, 4)
                            << ") is not their numeric order; say which one gives the labels: data.class_order"
                            << " = \"numeric\" or \"text\" (torchvision's ImageFolder order) in the config, or"
                            << " macer_certify --class-order");
  }
}

}  // namespace

const std::vector<std::string>& image_extensions() {
  static const std::vector<std::string> ext = {".jpg", ".jpeg", ".png", ".ppm", ".bmp",
                                               ".pgm", ".tif",  ".tiff", ".webp"};
  return ext;
}

std::string ImageFolderScan::summary() const {
  std::ostringstream os;
  os << root << ": " << classes.size() << " classes, " << files.size() << " images";
  std::vector<std::string> parts;
  if (hidden_files) parts.push_back(std::to_string(hidden_files) + " hidden file" + (hidden_files > 1 ? "s" : ""));
  if (hidden_folders)
    parts.push_back(std::to_string(hidden_folders) + " hidden folder" + (hidden_folders > 1 ? "s" : ""));
  if (!parts.empty()) os << "; skipped " << first_names(parts, 2) << " (names starting with '.')";
  if (other_files)
    os << "; skipped " << other_files << " file" << (other_files > 1 ? "s" : "") << " without an image extension"
       << " (e.g. " << first_other << ")";
  return os.str();
}

ImageFolderScan scan_image_folder(const std::string& root, const std::string& class_order) {
  ImageFolderScan s;
  s.root = root;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    if (!e.is_directory()) continue;
    const std::string name = e.path().filename().string();
    if (hidden(name))
      ++s.hidden_folders;
    else
      s.classes.push_back(name);
  }
  MACER_CHECK(!ec, root << ": cannot list (" << ec.message() << ")");
  MACER_CHECK(!s.classes.empty(), root << ": no class subfolders (expected one folder of images per class)");
  order_classes(s.classes, class_order, root);
  for (size_t k = 0; k < s.classes.size(); ++k) {
    const fs::path class_dir = fs::path(root) / s.classes[k];
    std::vector<std::pair<std::string, std::string>> found;  // (folder, name): os.walk's order once sorted
    for (auto it = fs::recursive_directory_iterator(class_dir, fs::directory_options::follow_directory_symlink, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (it->is_directory()) {
        if (hidden(name)) {
          ++s.hidden_folders;
          it.disable_recursion_pending();
        }
        continue;
      }
      if (!it->is_regular_file()) continue;
      if (!has_image_extension(name)) {
        if (!hidden(name) && s.other_files++ == 0) s.first_other = it->path().string();
        if (hidden(name)) ++s.hidden_files;
        continue;
      }
      if (hidden(name)) {
        ++s.hidden_files;
        continue;
      }
      found.emplace_back(it->path().parent_path().string(), name);
    }
    MACER_CHECK(!ec, class_dir.string() << ": cannot list (" << ec.message() << ")");
    MACER_CHECK(!found.empty(), class_dir.string() << ": class folder holds no image (files ending in .jpg .jpeg"
                                                   << " .png .ppm .bmp .pgm .tif .tiff .webp, any case)");
    std::sort(found.begin(), found.end());
    for (const auto& f : found) {
      s.files.push_back((fs::path(f.first) / f.second).string());
      s.labels.push_back(int32_t(k));
    }
  }
  return s;
}

}  // namespace macer::data
