// safetensors reading and writing with full validation; nlohmann::json parses the header.
#include "engine/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "engine/atomic_file.h"

namespace macer {

namespace {

DType parse_dtype(const std::string& s, const std::string& where) {
  if (s == "F32") return DType::F32;
  if (s == "I32") return DType::I32;
  if (s == "I64") return DType::I64;
  if (s == "F64") return DType::F64;
  throw Error(where + ": unsupported dtype " + s + " (expected F32, I32, I64 or F64)");
}

// The first key that a JSON object of the header repeats, found while parsing (nlohmann's
// objects keep only the last value of a repeated key, so "sigma": 0.25, "sigma": 1.0 would read
// as 1.0). Returns "" when no object repeats a key, else the message naming it.
struct RepeatedKeys {
  struct Frame {
    bool object;
    std::string name;  // the key this object or array is the value of ("" at the top)
    std::set<std::string> keys;
  };
  std::vector<Frame> stack;
  std::string last_key;
  std::string found;

  bool operator()(int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (event == E::object_start || event == E::array_start) {
      stack.push_back({event == E::object_start, stack.empty() ? "" : last_key, {}});
    } else if (event == E::object_end || event == E::array_end) {
      if (!stack.empty()) stack.pop_back();
    } else if (event == E::key && !stack.empty()) {
      last_key = parsed.get<std::string>();
      if (found.empty() && !stack.back().keys.insert(last_key).second) found = describe(last_key);
    }
    return true;
  }

  std::string describe(const std::string& key) const {
    const size_t depth = stack.size();
    if (depth == 1 && key == "__metadata__") return "'__metadata__' is given twice";
    if (depth == 1) return "tensor name '" + key + "' is given twice (each tensor must be named once)";
    if (depth == 2 && stack[1].name == "__metadata__")
      return "metadata key '" + key + "' is given twice (a reader would keep only one of its values)";
    if (depth == 2) return "tensor '" + stack[1].name + "': key '" + key + "' is given twice";
    return "key '" + key + "' is given twice in the value of '" + stack.back().name + "'";
  }
};

}  // namespace

const Tensor* SafetensorsFile::find(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();  // "{}" when empty, not "null"
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    MACER_CHECK(!header.contains(name), path << ": tensor name '" << name << "' given twice");
    header[name] = {{"dtype", dtype_name(t.dtype())},
                    {"shape", t.shape()},
                    {"data_offsets", {offset, offset + t.bytes()}}};
    offset += t.bytes();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // pad so the data starts 8-byte aligned
  uint64_t n = text.size();
  write_file_atomic(path, [&](std::ostream& out) {
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
    out.write(reinterpret_cast<const char*>(len), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& [name, t] : tensors) {
      Tensor host = t.device() == Device::CPU ? t : t.to(Device::CPU);
      const char* p = t.dtype() == DType::F32   ? reinterpret_cast<const char*>(host.data<float>())
                      : t.dtype() == DType::I32 ? reinterpret_cast<const char*>(host.data<int32_t>())
                      : t.dtype() == DType::I64 ? reinterpret_cast<const char*>(host.data<int64_t>())
                                                : reinterpret_cast<const char*>(host.data<double>());
      out.write(p, static_cast<std::streamsize>(host.bytes()));
    }
  });
}

SafetensorsFile load_safetensors(const std::string& path) {
  std::error_code ec;
  MACER_CHECK(!std::filesystem::is_directory(path, ec), path << ": is a folder, not a safetensors file");
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  MACER_CHECK(in, path << ": cannot open: " << std::strerror(errno));
  const uint64_t file_size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  MACER_CHECK(file_size >= 8, path << ": truncated (" << file_size << " bytes, no header length)");
  unsigned char len[8];
  in.read(reinterpret_cast<char*>(len), 8);
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= static_cast<uint64_t>(len[i]) << (8 * i);
  // torch.save writes a zip archive ("PK\3\4") or, in its legacy format, a pickle (0x80, then
  // the protocol). Said only once the file fails as safetensors: such bytes are also a length.
  const bool torch_file = (len[0] == 'P' && len[1] == 'K' && len[2] == 3 && len[3] == 4) ||
                          (len[0] == 0x80 && len[1] >= 2 && len[1] <= 5);
  const std::string torch_hint = ": is a PyTorch file (torch.save), not safetensors; convert it first with "
                                 "scripts/convert_checkpoint.py " + path + " OUT.safetensors";
  MACER_CHECK(!torch_file || (header_len <= file_size - 8 && header_len < (100u << 20)), path << torch_hint);
  MACER_CHECK(header_len <= file_size - 8 && header_len < (100u << 20),
              path << ": header length " << header_len << " exceeds the file (" << file_size
                   << " bytes): truncated or not a safetensors file");
  std::string text(header_len, '\0');
  in.read(text.data(), static_cast<std::streamsize>(header_len));
  nlohmann::json header;
  RepeatedKeys repeated;
  try {
    header = nlohmann::json::parse(text, std::ref(repeated));
  } catch (const std::exception& e) {
    if (torch_file) throw Error(path + torch_hint);
    throw Error(path + ": header is not valid JSON: " + e.what());
  }
  MACER_CHECK(repeated.found.empty(), path << ": header: " << repeated.found
                                          << "; the file is corrupt or hand-edited: re-save it with one value per key");
  MACER_CHECK(header.is_object(), path << ": header is not a JSON object");
  const uint64_t data_size = file_size - 8 - header_len;

  SafetensorsFile file;
  struct Range { uint64_t begin, end; std::string name; };
  std::vector<Range> ranges;
  try {
    for (auto it = header.begin(); it != header.end(); ++it) {
      const std::string& name = it.key();
      if (name == "__metadata__") {
        for (auto m = it->begin(); m != it->end(); ++m) file.metadata[m.key()] = m->get<std::string>();
        continue;
      }
      std::string where = path + ": tensor '" + name + "'";
      const auto& e = it.value();
      MACER_CHECK(e.is_object() && e.contains("dtype") && e.contains("shape") && e.contains("data_offsets"),
                  where << ": entry lacks dtype, shape or data_offsets");
      DType dtype = parse_dtype(e["dtype"].get<std::string>(), where);
      Shape shape = e["shape"].get<Shape>();
      auto offsets = e["data_offsets"].get<std::vector<uint64_t>>();
      MACER_CHECK(offsets.size() == 2 && offsets[0] <= offsets[1], where << ": bad data_offsets");
      MACER_CHECK(offsets[1] <= data_size, where << ": data ends at byte " << offsets[1]
                                                 << " but the file holds " << data_size
                                                 << " bytes of data (truncated)");
      uint64_t numel = 1;  // guarded: a corrupt shape must not wrap around to a matching size
      for (int64_t d : shape) {
        MACER_CHECK(d >= 0, where << ": negative dimension");
        MACER_CHECK(d == 0 || numel <= data_size / static_cast<uint64_t>(d),
                    where << ": shape " << shape_string(shape) << " exceeds the file's data");
        numel *= static_cast<uint64_t>(d);
      }
      MACER_CHECK(offsets[1] - offsets[0] == static_cast<uint64_t>(shape_numel(shape)) * dtype_size(dtype),
                  where << ": shape " << shape_string(shape) << " " << dtype_name(dtype) << " needs "
                        << shape_numel(shape) * dtype_size(dtype) << " bytes, data_offsets give "
                        << offsets[1] - offsets[0]);
      Tensor t = Tensor::empty(shape, Device::CPU, dtype);
      in.seekg(static_cast<std::streamoff>(8 + header_len + offsets[0]));
      char* dst = dtype == DType::F32   ? reinterpret_cast<char*>(t.data<float>())
                  : dtype == DType::I32 ? reinterpret_cast<char*>(t.data<int32_t>())
                  : dtype == DType::I64 ? reinterpret_cast<char*>(t.data<int64_t>())
                                        : reinterpret_cast<char*>(t.data<double>());
      in.read(dst, static_cast<std::streamsize>(t.bytes()));
      MACER_CHECK(in, where << ": read failed (truncated)");
      ranges.push_back({offsets[0], offsets[1], name});
      file.tensors.emplace_back(name, t);
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": malformed header: " + e.what());
  }
  // By (begin, end): an empty tensor sharing its offset with the next one sorts first.
  std::sort(ranges.begin(), ranges.end(),
            [](const Range& a, const Range& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  uint64_t expect = 0;
  for (const auto& r : ranges) {
    MACER_CHECK(r.begin == expect, path << ": tensor '" << r.name << "' starts at byte " << r.begin
                                        << ", expected " << expect << " (overlap or gap)");
    expect = r.end;
  }
  MACER_CHECK(expect == data_size, path << ": " << data_size - expect
                                        << " bytes after the last tensor (corrupt or wrong length)");
  std::sort(file.tensors.begin(), file.tensors.end(), [&](const auto& a, const auto& b) {
    auto pos = [&](const std::string& n) {
      for (size_t i = 0; i < ranges.size(); ++i)
        if (ranges[i].name == n) return i;
      return ranges.size();
    };
    return pos(a.first) < pos(b.first);
  });
  return file;
}

}  // namespace macer
