// Training checkpoints: the model's state under PyTorch names, the momentum buffers as
// "momentum.<name>", and metadata (format, model, data shape, input normalization, epoch, step,
// precision, resolved config).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "layers/basic.h"
#include "layers/module.h"
#include "macer/train/optimizer.h"

namespace macer {

struct CheckpointInfo {
  std::string model;          // registry name
  std::string dataset;
  int channels = 0, height = 0, width = 0, classes = 0;
  // The identity of the training data (macer_certify compares it with what it reads):
  // metadata "class_names", a JSON array of strings in label order (absent or [] : unknown), and
  // "data_fingerprint", data::content_fingerprint of the training split ("" : unknown).
  std::vector<std::string> class_names;
  std::string data_fingerprint;
  double sigma = 0;
  bool sigma_recorded = false;  // the metadata holds "sigma" (0 is a sigma: trained without noise)
  // MACER's soft beta, softmax(beta z), when the metadata records it as "beta" (converted MACER
  // checkpoints: 16, MACER's main.py default); 0: not recorded. macer_train's checkpoints carry
  // it as objective.beta in `config`, which macer_certify reads first.
  double beta = 0;
  int64_t epoch = 0;          // epochs completed
  int64_t step = 0;           // optimizer steps taken
  std::string config;         // resolved TOML
  std::string precision = "fp32";  // run.precision of the training: metadata "precision" (absent: fp32)
  // Input normalization of the model: metadata "normalize_mean" / "normalize_std", comma-
  // separated decimals, one per channel (absent: none).
  layers::Normalization normalize;
  // What else decides the bits of a CPU run (metadata "threads", "conv"; absent in older
  // checkpoints: 0 and ""): OpenMP threads and the convolution path (kernels::cpu::conv2d_path(),
  // or "cudnn" on a GPU); the arithmetic is `precision` above.
  int64_t threads = 0;
  std::string conv;
  // The log line of the checkpoint's epoch (JSON, without its certification): a resume writes it
  // when the log lost it (macer_train killed in the epoch's certification, a full disk).
  std::string epoch_log;
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
