// The image-folder rules: which class folders and which files an image folder holds, in which
// order (torchvision's ImageFolder, plus the hidden-name and integer-name rules below). Part of
// data/, used by data/image_folder.cpp; public so tests and tools can scan without decoding.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace macer::data {

// The extensions torchvision's ImageFolder accepts (IMG_EXTENSIONS), lower-case; a file counts
// when its name ends in one of them in any case.
const std::vector<std::string>& image_extensions();

struct ImageFolderScan {
  std::string root;
  std::vector<std::string> classes;  // label order
  std::vector<std::string> files;    // paths, ordered as torchvision: by class, then (folder, name)
  std::vector<int32_t> labels;       // (files.size())
  // What was left out, and why:
  int64_t hidden_files = 0;     // names starting with '.' (macOS "._x.jpg", ".DS_Store"): never read
  int64_t hidden_folders = 0;   // folders whose names start with '.' (".ipynb_checkpoints"), at any depth
  int64_t other_files = 0;      // files without an image extension (".txt", ".xml", ...)
  std::string first_other;      // one of them, as an example

  // One line: "<root>: <C> classes, <N> images; skipped: ..." (nothing skipped: no clause).
  std::string summary() const;
};

// Scans `root` (the folder holding one subfolder per class). The rules:
// - classes: the subfolders (symlinks followed), except hidden ones, named as they are;
// - files: every file below a class folder (any depth, symlinks followed) whose name ends in an
//   image extension, except hidden files and anything under a hidden folder. Without hidden
//   names the files and their order are exactly torchvision's ImageFolder's (which would read
//   "._x.jpg" as an image and ".ipynb_checkpoints" as a class);
// - class order `class_order`: "text" sorts names as text (torchvision's order: "10" before
//   "2"); "numeric" needs every name to be an integer (digits only) and sorts by value; "auto"
//   is "text", except that it refuses folders whose names are all integers and whose text order
//   differs from their numeric order, asking for an explicit "text" or "numeric".
// Throws macer::Error naming the folder: no class folders, an empty class, a bad class_order.
ImageFolderScan scan_image_folder(const std::string& root, const std::string& class_order);

}  // namespace macer::data
