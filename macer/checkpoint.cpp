// Checkpoint save/load on top of engine/safetensors and layers/state, with metadata checks.
#include "macer/checkpoint.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "data/dataset.h"
#include "engine/safetensors.h"
#include "layers/state.h"

namespace macer {

namespace {
constexpr const char* kFormat = "macer-engine-checkpoint-1";

// The text of a metadata value in an error: a damaged file may hold anything there.
std::string quoted(const std::string& v) { return "'" + (v.size() > 40 ? v.substr(0, 40) + "..." : v) + "'"; }

int64_t meta_int(const std::map<std::string, std::string>& m, const std::string& key, const std::string& path) {
  auto it = m.find(key);
  MACER_CHECK(it != m.end(), path << ": metadata lacks '" << key << "'");
  int64_t v = 0;
  const char* end = it->second.data() + it->second.size();
  auto [p, ec] = std::from_chars(it->second.data(), end, v);
  MACER_CHECK(ec == std::errc() && p == end && !it->second.empty(),
              path << ": metadata '" << key << "' is not an integer in range: " << quoted(it->second));
  return v;
}

double meta_double(const std::map<std::string, std::string>& m, const std::string& key, const std::string& path) {
  auto it = m.find(key);
  if (it == m.end()) return 0.0;
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(it->second.c_str(), &end);
  MACER_CHECK(!it->second.empty() && *end == '\0' && errno == 0 && std::isfinite(v),
              path << ": metadata '" << key << "' is not a finite number: " << quoted(it->second));
  return v;
}

// The shortest text that reads back as exactly `v` (std::to_string would keep 6 decimals).
std::string shortest(double v) {
  char buf[32];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, p);
}

// "0.491400003,0.482200003,0.446500003": nine significant digits, which read back as the
// same floats.
std::string float_list(const std::vector<float>& v) {
  std::string out;
  char buf[32];
  for (float x : v) {
    std::snprintf(buf, sizeof buf, "%.9g", double(x));
    out += (out.empty() ? "" : ",") + std::string(buf);
  }
  return out;
}

std::vector<float> parse_float_list(const std::string& text, const std::string& key, const std::string& path) {
  std::vector<float> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    float v = 0;
    try {
      v = std::stof(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    MACER_CHECK(used > 0 && used == item.size() && std::isfinite(v),
                path << ": metadata '" << key << "' is not a comma-separated list of numbers: " << text);
    out.push_back(v);
  }
  return out;
}

layers::Normalization parse_normalization(const std::map<std::string, std::string>& m, const std::string& path) {
  layers::Normalization n;
  bool has_mean = m.count("normalize_mean") != 0, has_std = m.count("normalize_std") != 0;
  MACER_CHECK(has_mean == has_std, path << ": metadata has one of 'normalize_mean' and 'normalize_std' but not both");
  if (!has_mean) return n;
  n.mean = parse_float_list(m.at("normalize_mean"), "normalize_mean", path);
  n.std = parse_float_list(m.at("normalize_std"), "normalize_std", path);
  MACER_CHECK(!n.mean.empty() && n.mean.size() == n.std.size(),
              path << ": metadata 'normalize_mean' has " << n.mean.size() << " values, 'normalize_std' "
                   << n.std.size());
  for (float s : n.std) MACER_CHECK(s > 0, path << ": metadata 'normalize_std' holds " << s << " (must be > 0)");
  return n;
}

CheckpointInfo parse_info(const std::map<std::string, std::string>& m, const std::string& path) {
  auto it = m.find("format");
  MACER_CHECK(it != m.end() && it->second == kFormat,
              path << ": not a checkpoint of this engine (metadata 'format' missing or unknown); "
                      "for weights made elsewhere pass --model");
  CheckpointInfo info;
  info.model = m.count("model") ? m.at("model") : "";
  info.dataset = data::canonical_dataset(m.count("dataset") ? m.at("dataset") : "");
  info.channels = int(meta_int(m, "channels", path));
  info.height = int(meta_int(m, "height", path));
  info.width = int(meta_int(m, "width", path));
  info.classes = int(meta_int(m, "classes", path));
  info.epoch = meta_int(m, "epoch", path);
  info.step = meta_int(m, "step", path);
  MACER_CHECK(info.epoch >= 0 && info.step >= 0,
              path << ": metadata epoch " << info.epoch << " and step " << info.step << " must not be negative");
  info.sigma = meta_double(m, "sigma", path);
  info.sigma_recorded = m.count("sigma") != 0;
  MACER_CHECK(info.sigma >= 0, path << ": metadata sigma " << info.sigma << " is negative");
  info.config = m.count("config") ? m.at("config") : "";
  info.beta = meta_double(m, "beta", path);  // 0 when absent
  MACER_CHECK(info.beta > 0 || !m.count("beta"), path << ": metadata beta " << info.beta << " must be > 0");
  info.threads = m.count("threads") ? meta_int(m, "threads", path) : 0;
  info.conv = m.count("conv") ? m.at("conv") : "";
  if (m.count("precision")) info.precision = m.at("precision");  // older checkpoints: fp32
  MACER_CHECK(info.precision == "fp32" || info.precision == "bf16",
              path << ": metadata 'precision' is " << quoted(info.precision) << " (fp32 or bf16)");
  info.epoch_log = m.count("epoch_log") ? m.at("epoch_log") : "";
  if (auto names = m.find("class_names"); names != m.end()) {
    nlohmann::json j = nlohmann::json::parse(names->second, nullptr, false);
    MACER_CHECK(j.is_array() && std::all_of(j.begin(), j.end(), [](const nlohmann::json& v) { return v.is_string(); }),
                path << ": metadata 'class_names' is not a JSON array of strings: " << quoted(names->second));
    info.class_names = j.get<std::vector<std::string>>();
    MACER_CHECK(info.class_names.empty() || int(info.class_names.size()) == info.classes,
                path << ": metadata 'class_names' holds " << info.class_names.size() << " names for "
                     << info.classes << " classes");
  }
  info.data_fingerprint = m.count("data_fingerprint") ? m.at("data_fingerprint") : "";
  info.normalize = parse_normalization(m, path);
  MACER_CHECK(!info.normalize.enabled() || int(info.normalize.mean.size()) == info.channels,
              path << ": metadata 'normalize_mean' has " << info.normalize.mean.size() << " values for "
                   << info.channels << " channels");
  return info;
}
}  // namespace

void save_checkpoint(const std::string& path, layers::Module& model, const Sgd* optimizer,
                     const CheckpointInfo& info) {
  auto tensors = layers::state_dict(model);
  if (optimizer)
    for (auto& [name, var] : model.named_parameters())
      tensors.emplace_back("momentum." + name, optimizer->momentum_of(var));
  std::map<std::string, std::string> meta = {
      {"format", kFormat},
      {"model", info.model},
      {"dataset", info.dataset},
      {"channels", std::to_string(info.channels)},
      {"height", std::to_string(info.height)},
      {"width", std::to_string(info.width)},
      {"classes", std::to_string(info.classes)},
      {"sigma", shortest(info.sigma)},
      {"epoch", std::to_string(info.epoch)},
      {"step", std::to_string(info.step)},
      {"config", info.config},
      {"precision", info.precision},
  };
  if (info.beta > 0) meta["beta"] = shortest(info.beta);
  if (info.threads > 0) meta["threads"] = std::to_string(info.threads);
  if (!info.conv.empty()) meta["conv"] = info.conv;
  if (!info.epoch_log.empty()) meta["epoch_log"] = info.epoch_log;
  if (!info.class_names.empty()) meta["class_names"] = nlohmann::json(info.class_names).dump();
  if (!info.data_fingerprint.empty()) meta["data_fingerprint"] = info.data_fingerprint;
  if (info.normalize.enabled()) {
    meta["normalize_mean"] = float_list(info.normalize.mean);
    meta["normalize_std"] = float_list(info.normalize.std);
  }
  save_safetensors(path, tensors, meta);
}

namespace {
// A PyTorch file (torch.save: a zip archive "PK\3\4", or a legacy pickle 0x80 + protocol)
// is refused with the README's way to convert it (scripts/convert_checkpoint.py runs under
// its own #!/usr/bin/python3: "python3 scripts/..." may be a pyenv shim without torch).
void refuse_torch_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char m[4] = {0, 0, 0, 0};
  if (!in || !in.read(reinterpret_cast<char*>(m), 4)) return;  // load_safetensors names what is wrong
  const bool zip = m[0] == 'P' && m[1] == 'K' && m[2] == 3 && m[3] == 4;
  const bool pickle = m[0] == 0x80 && m[1] >= 2 && m[1] <= 5;
  MACER_CHECK(!zip && !pickle, path << ": is a PyTorch file (torch.save), not safetensors; convert it first with "
                                       "scripts/convert_checkpoint.py " << path << " OUT.safetensors");
}
}  // namespace

CheckpointInfo read_checkpoint_info(const std::string& path) {
  refuse_torch_file(path);
  return parse_info(load_safetensors(path).metadata, path);
}

bool read_checkpoint_info_if_any(const std::string& path, CheckpointInfo* info) {
  refuse_torch_file(path);
  std::map<std::string, std::string> meta = load_safetensors(path).metadata;
  if (!meta.count("format") || meta.at("format") != kFormat) return false;
  *info = parse_info(meta, path);
  return true;
}

CheckpointInfo load_checkpoint(const std::string& path, layers::Module& model, Sgd* optimizer) {
  SafetensorsFile file = load_safetensors(path);
  CheckpointInfo info = parse_info(file.metadata, path);
  // Weights that diverged (NaN, inf) would train on as garbage or certify nonsense: refuse them.
  for (const auto& [name, t] : file.tensors)
    if (t.dtype() == DType::F32)
      for (float v : t.to_vector())
        MACER_CHECK(std::isfinite(v), path << ": tensor '" << name << "' holds NaN or infinite values");
  layers::load_state_dict(model, file, path);
  if (optimizer)
    for (auto& [name, var] : model.named_parameters()) {
      const Tensor* m = file.find("momentum." + name);
      MACER_CHECK(m, path << ": tensor 'momentum." << name << "' is missing (cannot resume)");
      Tensor dst = optimizer->momentum_of(var);
      MACER_CHECK(m->shape() == dst.shape() && m->dtype() == DType::F32,
                  path << ": tensor 'momentum." << name << "' has the wrong shape or dtype");
      dst.copy_from(*m);
    }
  return info;
}

}  // namespace macer
