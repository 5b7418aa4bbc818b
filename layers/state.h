// A module's state (parameters and buffers under their PyTorch names) to and from safetensors:
// checkpoints that a PyTorch user loads with load_state_dict, and that we load from theirs.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/safetensors.h"
#include "layers/module.h"

namespace macer::layers {

// Parameters then buffers, in the module's order (tensors stay on the module's device).
std::vector<std::pair<std::string, Tensor>> state_dict(Module& m);

// Copies every entry of `m`'s state from `file`; a missing name, a shape or dtype mismatch
// throws macer::Error naming `path` and the tensor. Names in the file that `m` lacks are
// refused too, except those starting with one of `ignored_prefixes` (training state).
void load_state_dict(Module& m, const SafetensorsFile& file, const std::string& path,
                     const std::vector<std::string>& ignored_prefixes = {"momentum."});

// A checkpoint of the module alone: save_safetensors(state_dict(m), metadata).
void save_module(const std::string& path, Module& m, const std::map<std::string, std::string>& metadata);
// load_safetensors + load_state_dict; returns the file's metadata.
std::map<std::string, std::string> load_module(const std::string& path, Module& m);

}  // namespace macer::layers
