// state_dict / load_state_dict over safetensors files, with every name, shape and dtype checked.
#include "layers/state.h"

#include <set>

namespace macer::layers {

std::vector<std::pair<std::string, Tensor>> state_dict(Module& m) {
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& [name, var] : m.named_parameters()) out.emplace_back(name, var.value());
  for (auto& [name, buf] : m.named_buffers()) out.emplace_back(name, *buf);
  return out;
}

void load_state_dict(Module& m, const SafetensorsFile& file, const std::string& path,
                     const std::vector<std::string>& ignored_prefixes) {
  std::set<std::string> expected;
  auto load_one = [&](const std::string& name, Tensor& dst) {
    expected.insert(name);
    const Tensor* src = file.find(name);
    MACER_CHECK(src, path << ": tensor '" << name << "' is missing (not a checkpoint of this model?)");
    MACER_CHECK(src->dtype() == DType::F32,
                path << ": tensor '" << name << "' is " << dtype_name(src->dtype()) << ", expected F32");
    MACER_CHECK(src->shape() == dst.shape(), path << ": tensor '" << name << "' has shape "
                                                  << shape_string(src->shape()) << ", the model expects "
                                                  << shape_string(dst.shape()));
    dst.copy_from(*src);
  };
  for (auto& [name, var] : m.named_parameters()) load_one(name, var.value());
  for (auto& [name, buf] : m.named_buffers()) load_one(name, *buf);
  for (const auto& [name, t] : file.tensors) {
    if (expected.count(name)) continue;
    bool ignored = name.size() >= 20 && name.compare(name.size() - 19, 19, "num_batches_tracked") == 0;
    for (const auto& p : ignored_prefixes) ignored = ignored || name.rfind(p, 0) == 0;
    MACER_CHECK(ignored, path << ": unexpected tensor '" << name << "' (not part of this model)");
  }
}

void save_module(const std::string& path, Module& m, const std::map<std::string, std::string>& metadata) {
  save_safetensors(path, state_dict(m), metadata);
}

std::map<std::string, std::string> load_module(const std::string& path, Module& m) {
  SafetensorsFile file = load_safetensors(path);
  load_state_dict(m, file, path);
  return file.metadata;
}

}  // namespace macer::layers
