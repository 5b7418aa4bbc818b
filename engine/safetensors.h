// safetensors files (the Hugging Face format PyTorch users load with safetensors.torch):
// an 8-byte little-endian header length, a JSON header, then the raw little-endian tensors.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace macer {

struct SafetensorsFile {
  std::vector<std::pair<std::string, Tensor>> tensors;  // CPU tensors, in file order
  std::map<std::string, std::string> metadata;          // the "__metadata__" block
  const Tensor* find(const std::string& name) const;
};

// Written through write_file_atomic (engine/atomic_file.h): whole or absent. Tensors may live on
// any device; F32, I32, I64 and F64 are written as such.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata);

// Reads and validates: header length within the file, JSON well formed, known dtypes, shapes
// matching byte ranges, ranges inside the data and covering it exactly. Any problem throws
// macer::Error naming the file (and the tensor, where one is at fault).
SafetensorsFile load_safetensors(const std::string& path);

}  // namespace macer
