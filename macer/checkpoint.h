// Training checkpoints: the model's state under PyTorch names, the momentum buffers as
// "momentum.<name>", and metadata (format, model, data shape, input normalization, epoch, step,
// resolved config).
#pragma once
#include <map>
#include <string>

#include "layers/basic.h"
#include "layers/module.h"
#include "macer/train/optimizer.h"

namespace macer {

struct CheckpointInfo {
  std::string model;          // registry name
  std::string dataset;
  int channels = 0, height = 0, width = 0, classes = 0;
  double sigma = 0;
  int64_t epoch = 0;          // epochs completed
  int64_t step = 0;           // optimizer steps taken
  std::string config;         // resolved TOML
  // Input normalization of the model: metadata "normalize_mean" / "normalize_std", comma-
  // separated decimals, one per channel (absent: none).
  layers::Normalization normalize;
};

// Written whole or not at all (temporary file, then rename).
void save_checkpoint(const std::string& path, layers::Module& model, const Sgd* optimizer,
                     const CheckpointInfo& info);
// Reads only the metadata (to build the right model before loading weights).
CheckpointInfo read_checkpoint_info(const std::string& path);
// The same for a safetensors file that may come from elsewhere (scripts/convert_checkpoint.py
// writes this engine's metadata; other tools do not): false, `info` untouched, when the file's
// metadata has no 'format' key of this engine.
bool read_checkpoint_info_if_any(const std::string& path, CheckpointInfo* info);
// Loads weights and buffers into `model` (and momentum into `optimizer` when given).
CheckpointInfo load_checkpoint(const std::string& path, layers::Module& model, Sgd* optimizer);

}  // namespace macer
