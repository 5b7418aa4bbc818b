// safetensors tests (engine/safetensors, layers/state): round trips of every dtype and of a
// ResNet-20 state, and a clear error naming the file for each kind of broken file or checkpoint.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <unistd.h>

#include "layers/registry.h"
#include "layers/state.h"

using namespace macer;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir() {
  static fs::path dir = [] {
    fs::path p = fs::temp_directory_path() / ("macer_test_safetensors_" + std::to_string(::getpid()));
    fs::remove_all(p);
    fs::create_directories(p);
    return p;
  }();
  return dir;
}

std::string temp_file(const std::string& name) { return (temp_dir() / name).string(); }

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A hand-made file: the 8-byte little-endian length (of the header, unless told), header, data.
std::string raw_file(const std::string& header, const std::string& data, uint64_t header_len = UINT64_MAX) {
  uint64_t n = header_len == UINT64_MAX ? header.size() : header_len;
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

// Loading `path` throws macer::Error whose message names the file and holds every fragment.
void expect_rejected(const std::string& path, const std::vector<std::string>& fragments,
                     const std::function<void()>& load) {
  std::string message;
  try {
    load();
  } catch (const Error& e) {
    message = e.what();
  }
  INFO("message: " << message);
  REQUIRE(!message.empty());
  CHECK(message.find(path) != std::string::npos);
  for (const auto& f : fragments) {
    INFO("expected fragment: " << f);
    CHECK(message.find(f) != std::string::npos);
  }
}

void expect_file_rejected(const std::string& path, const std::vector<std::string>& fragments) {
  expect_rejected(path, fragments, [&] { load_safetensors(path); });
}

Tensor f32(const std::vector<float>& v, const Shape& s) { return Tensor::from_vector(v, s); }

template <typename T>
Tensor typed(const std::vector<T>& v, const Shape& s) {
  Tensor t = Tensor::empty(s, Device::CPU, dtype_of<T>());
  std::copy(v.begin(), v.end(), t.data<T>());
  return t;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  return std::memcmp(a.data_ptr(), b.data_ptr(), a.bytes()) == 0;
}

layers::ModelOptions small_lenet() {
  layers::ModelOptions o;
  o.channels = 1;
  o.height = o.width = 16;  // fc1 50 -> 500: a small checkpoint
  return o;
}

}  // namespace

TEST_CASE("every dtype, empty tensors and metadata survive a round trip", "[safetensors]") {
  // Names out of alphabetical order, and empty tensors sharing an offset with their neighbour.
  std::vector<std::pair<std::string, Tensor>> tensors = {
      {"z_empty", Tensor::empty({0})},
      {"a_f32", f32({1.5f, -2.25f, 3e-38f, 1e38f, 0.0f, -0.0f}, {2, 3})},
      {"m_i32", typed<int32_t>({-2147483647 - 1, 0, 7, 2147483647}, {4})},
      {"b_empty", Tensor::empty({2, 0, 3}, Device::CPU, DType::I64)},
      {"c_i64", typed<int64_t>({int64_t(1) << 40, -5, 0}, {3, 1})},
      {"d_f64", typed<double>({1e300, -1.0 / 3.0, 5e-324, 2.0}, {2, 2})},
      {"e_scalar", f32({42.0f}, {})},
  };
  std::map<std::string, std::string> metadata = {{"epoch", "12"}, {"config", "{\"lr\": 0.1}"}};
  std::string path = temp_file("dtypes.safetensors");
  save_safetensors(path, tensors, metadata);
  CHECK_FALSE(fs::exists(path + ".tmp"));
  std::string bytes = read_bytes(path);
  CHECK(uint8_t(bytes[0]) % 8 == 0);  // header padded so the data starts 8-byte aligned

  SafetensorsFile file = load_safetensors(path);
  CHECK(file.metadata == metadata);
  REQUIRE(file.tensors.size() == tensors.size());
  for (const auto& [name, t] : tensors) {
    INFO(name);
    const Tensor* back = file.find(name);
    REQUIRE(back);
    CHECK(back->dtype() == t.dtype());
    CHECK(back->shape() == t.shape());
    CHECK(same_bytes(*back, t));
  }
  CHECK(file.find("missing") == nullptr);
  // Non-empty tensors come back in file order.
  std::vector<std::string> order;
  for (const auto& [name, t] : file.tensors)
    if (t.numel() > 0) order.push_back(name);
  CHECK(order == std::vector<std::string>{"a_f32", "m_i32", "c_i64", "d_f64", "e_scalar"});

  // No metadata and no tensors at all is a valid file too.
  save_safetensors(temp_file("nothing.safetensors"), {}, {});
  SafetensorsFile nothing = load_safetensors(temp_file("nothing.safetensors"));
  CHECK(nothing.tensors.empty());
  CHECK(nothing.metadata.empty());
}

TEST_CASE("a ResNet-20 state round-trips through a checkpoint", "[safetensors]") {
  layers::ModelOptions opt;
  opt.seed = 1;
  auto a = layers::make_model("resnet20", opt);
  {  // one training-mode forward moves the running statistics off 0 and 1
    NoGradGuard no_grad;
    Tensor x = Tensor::full({2, 3, 32, 32}, 0.5f);
    x.data()[5] = 2.0f;
    a->forward(Var(x));
  }
  std::string path = temp_file("resnet20.safetensors");
  layers::save_module(path, *a, {{"epoch", "3"}});
  opt.seed = 2;
  auto b = layers::make_model("resnet20", opt);
  auto meta = layers::load_module(path, *b);
  CHECK(meta.at("epoch") == "3");
  auto sa = layers::state_dict(*a), sb = layers::state_dict(*b);
  REQUIRE(sa.size() == sb.size());
  for (size_t i = 0; i < sa.size(); ++i) {
    INFO(sa[i].first);
    CHECK(sa[i].first == sb[i].first);
    CHECK(same_bytes(sa[i].second, sb[i].second));
  }
  // The file holds exactly the state under PyTorch's names, in the module's order.
  SafetensorsFile file = load_safetensors(path);
  REQUIRE(file.tensors.size() == sa.size());
  for (size_t i = 0; i < sa.size(); ++i) CHECK(file.tensors[i].first == sa[i].first);
  CHECK(file.find("layer3.2.bn2.running_var"));
}

TEST_CASE("truncated files are refused at every cut point", "[safetensors]") {
  std::string whole = temp_file("whole.safetensors");
  save_safetensors(whole, {{"a", Tensor::full({16}, 1.0f)}, {"b", Tensor::full({8}, 2.0f)}}, {{"k", "v"}});
  std::string bytes = read_bytes(whole);
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= uint64_t(uint8_t(bytes[i])) << (8 * i);
  REQUIRE(bytes.size() == 8 + header_len + 96);
  std::string cut_path = temp_file("cut.safetensors");
  for (size_t cut : {size_t(0), size_t(3), size_t(7), size_t(8), size_t(12), size_t(8 + header_len - 1),
                     size_t(8 + header_len), size_t(8 + header_len + 10), size_t(8 + header_len + 64),
                     bytes.size() - 1}) {
    INFO("cut at byte " << cut << " of " << bytes.size());
    write_bytes(cut_path, bytes.substr(0, cut));
    expect_file_rejected(cut_path, {"truncated"});
  }
  expect_file_rejected(temp_file("absent.safetensors"), {"cannot open"});
}

TEST_CASE("malformed headers and data layouts are refused with a clear message", "[safetensors]") {
  std::string path = temp_file("bad.safetensors");
  auto expect = [&](const std::string& bytes, const std::vector<std::string>& fragments) {
    write_bytes(path, bytes);
    expect_file_rejected(path, fragments);
  };
  const std::string eight(8, '\x01'), twelve(12, '\x01');
  SECTION("header length beyond the file") {
    expect(raw_file("{}", "", uint64_t(1) << 40), {"header length 1099511627776 exceeds the file"});
    expect(raw_file("{}", "", 3), {"header length 3 exceeds the file (10 bytes)"});
  }
  SECTION("invalid JSON") {
    expect(raw_file("{\"a\": {\"dtype\": ", ""), {"header is not valid JSON"});
    expect(raw_file("[1, 2]", ""), {"header is not a JSON object"});
  }
  SECTION("entries that lack fields or have the wrong types") {
    expect(raw_file(R"({"w":{"dtype":"F32","shape":[2]}})", eight), {"tensor 'w'", "lacks"});
    expect(raw_file(R"({"w":{"dtype":"F32","shape":"two","data_offsets":[0,8]}})", eight),
           {"malformed header"});
    expect(raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", eight),
           {"tensor 'w'", "bad data_offsets"});
    expect(raw_file(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", eight),
           {"tensor 'w'", "negative dimension"});
  }
  SECTION("unknown dtype") {
    expect(raw_file(R"({"w":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}})", std::string(4, '\0')),
           {"tensor 'w'", "unsupported dtype BF16"});
  }
  SECTION("shape and byte range disagree") {
    expect(raw_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", eight),
           {"tensor 'w'", "needs 12 bytes", "give 8"});
    expect(raw_file(R"({"w":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}})", eight),
           {"tensor 'w'", "needs 16 bytes"});
    // 2^62 float32 elements are 2^64 bytes: must not wrap around to the empty range given.
    expect(raw_file(R"({"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})", ""),
           {"tensor 'w'"});
    expect(raw_file(R"({"w":{"dtype":"F32","shape":[2147483648,2147483648,4],"data_offsets":[0,0]}})", ""),
           {"tensor 'w'"});
  }
  SECTION("overlapping and gapped ranges") {
    expect(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                    R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", twelve),
           {"tensor 'b'", "overlap or gap"});
    expect(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                    R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})", twelve),
           {"tensor 'b'", "overlap or gap"});
    expect(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", eight),
           {"tensor 'a'", "overlap or gap"});
  }
  SECTION("trailing bytes after the last tensor") {
    expect(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", twelve),
           {"4 bytes after the last tensor"});
  }
  SECTION("repeated keys: JSON parsers keep one value silently, so any repeat is refused") {
    // "sigma" twice (0.25, then 1.0): read last-wins it would certify at sigma 1.
    expect(raw_file(R"({"__metadata__":{"sigma":"0.25","arch":"lenet","sigma":"1.0"},)"
                    R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", eight),
           {"metadata key 'sigma' is given twice"});
    // The same tensor twice: named as such, not as an overlap.
    expect(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                    R"("a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", eight + eight),
           {"tensor name 'a' is given twice"});
    expect(raw_file(R"({"__metadata__":{"x":"y"},"__metadata__":{"x":"z"}})", ""),
           {"'__metadata__' is given twice"});
    expect(raw_file(R"({"a":{"dtype":"F32","dtype":"F64","shape":[2],"data_offsets":[0,8]}})", eight),
           {"tensor 'a': key 'dtype' is given twice"});
  }
  SECTION("a well-formed hand-made file loads") {
    write_bytes(path, raw_file(R"({"__metadata__":{"x":"y"},"a":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})",
                               std::string("\x01\0\0\0\xff\xff\xff\xff", 8)));
    SafetensorsFile f = load_safetensors(path);
    REQUIRE(f.find("a"));
    CHECK(f.find("a")->to_ints() == std::vector<int32_t>{1, -1});
    CHECK(f.metadata.at("x") == "y");
  }
}

TEST_CASE("checkpoints that do not fit the model are refused, naming file and tensor", "[safetensors]") {
  auto model = layers::make_model("lenet", small_lenet());
  auto good = layers::state_dict(*model);
  auto variant = [&](const std::string& file, auto edit) {
    auto state = good;
    edit(state);
    std::string path = temp_file(file);
    save_safetensors(path, state, {});
    return path;
  };
  auto load_into_fresh = [&](const std::string& path) {
    auto fresh = layers::make_model("lenet", small_lenet());
    layers::load_module(path, *fresh);
  };
  auto erase = [](std::vector<std::pair<std::string, Tensor>>& s, const std::string& name) {
    for (auto it = s.begin(); it != s.end(); ++it)
      if (it->first == name) {
        s.erase(it);
        return;
      }
    FAIL("no entry " << name);
  };
  std::string path = variant("missing.safetensors", [&](auto& s) { erase(s, "fc2.bias"); });
  expect_rejected(path, {"tensor 'fc2.bias' is missing"}, [&] { load_into_fresh(path); });

  path = variant("shape.safetensors", [&](auto& s) {
    erase(s, "fc2.weight");
    s.emplace_back("fc2.weight", Tensor::zeros({10, 499}));
  });
  expect_rejected(path, {"tensor 'fc2.weight'", "(10, 499)", "(10, 500)"}, [&] { load_into_fresh(path); });

  path = variant("dtype.safetensors", [&](auto& s) {
    erase(s, "fc2.bias");
    s.emplace_back("fc2.bias", Tensor::zeros({10}, Device::CPU, DType::I32));
  });
  expect_rejected(path, {"tensor 'fc2.bias'", "I32", "expected F32"}, [&] { load_into_fresh(path); });

  path = variant("unexpected.safetensors", [&](auto& s) { s.emplace_back("fc3.weight", Tensor::zeros({2})); });
  expect_rejected(path, {"unexpected tensor 'fc3.weight'"}, [&] { load_into_fresh(path); });

  // Training state under "momentum." and PyTorch's num_batches_tracked are tolerated.
  path = variant("extras.safetensors", [&](auto& s) {
    s.emplace_back("momentum.fc2.bias", Tensor::zeros({10}));
    s.emplace_back("bn1.num_batches_tracked", Tensor::zeros({}, Device::CPU, DType::I64));
  });
  auto fresh = layers::make_model("lenet", small_lenet());
  REQUIRE_NOTHROW(layers::load_module(path, *fresh));
  auto loaded = layers::state_dict(*fresh);
  for (size_t i = 0; i < loaded.size(); ++i) CHECK(same_bytes(loaded[i].second, good[i].second));
}

TEST_CASE("a failed save leaves no partial file behind", "[safetensors]") {
  std::vector<std::pair<std::string, Tensor>> tensors = {{"a", Tensor::full({4}, 1.0f)}};
  SECTION("into a folder that does not exist") {
    fs::path target = temp_dir() / "no_such_dir" / "model.safetensors";
    expect_rejected(target.string(), {"No such file or directory"},
                    [&] { save_safetensors(target.string(), tensors, {}); });
    CHECK_FALSE(fs::exists(target));
    CHECK_FALSE(fs::exists(target.string() + ".tmp"));
    CHECK_FALSE(fs::exists(target.parent_path()));
  }
  SECTION("a refused save keeps the previous file intact") {
    std::string target = temp_file("keep.safetensors");
    save_safetensors(target, tensors, {{"v", "1"}});
    std::string before = read_bytes(target);
    auto twice = tensors;
    twice.emplace_back("a", Tensor::full({2}, 3.0f));
    expect_rejected(target, {"'a' given twice"}, [&] { save_safetensors(target, twice, {}); });
    CHECK(read_bytes(target) == before);
    CHECK_FALSE(fs::exists(target + ".tmp"));
  }
  SECTION("over a folder: refused, the folder untouched") {
    fs::path target = temp_dir() / "a_folder";
    fs::create_directories(target);
    expect_rejected(target.string(), {"is a folder"}, [&] { save_safetensors(target.string(), tensors, {}); });
    CHECK(fs::is_directory(target));
    CHECK_FALSE(fs::exists(target.string() + ".tmp"));
  }
}

TEST_CASE("a PyTorch file given for safetensors says to convert it", "[safetensors]") {
  // torch.save's zip format and its legacy pickle (protocol 2), as their first bytes go.
  const std::vector<std::string> starts = {std::string("PK\x03\x04\x14\x00\x00\x00", 8) + std::string(64, 'x'),
                                           std::string("\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8", 12) + std::string(64, 'x')};
  for (const std::string& bytes : starts) {
    std::string path = temp_file("model.pth");
    std::ofstream(path, std::ios::binary) << bytes;
    CHECK_THROWS_WITH(load_safetensors(path), Catch::Contains("model.pth: is a PyTorch file") &&
                                                  Catch::Contains("scripts/convert_checkpoint.py"));
  }
}
