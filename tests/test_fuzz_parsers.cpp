// Mutation fuzz tests, part 1: the fuzzer itself (tests/fuzz_util.h), safetensors files and the
// TOML training config. Thousands of seeded mutants each; run under ASan/UBSan by scripts/test.sh.
#include <catch2/catch.hpp>

#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "data_test_util.h"
#include "engine/safetensors.h"
#include "fuzz_util.h"
#include "kernels/check.h"
#include "macer/config.h"

using namespace macer;
using data_test::TempDir;
using fuzz::Bytes;

namespace {

Bytes to_bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }
std::string to_string(const Bytes& b) { return std::string(b.begin(), b.end()); }

// A small safetensors file with every dtype, an empty and a 0-d tensor, and metadata.
Bytes safetensors_seed(const std::string& path) {
  Tensor a = Tensor::empty({2, 3}, Device::CPU, DType::F32);
  for (int k = 0; k < 6; ++k) a.data<float>()[k] = 0.5f * float(k) - 1.0f;
  Tensor b = Tensor::empty({4}, Device::CPU, DType::I64);
  for (int k = 0; k < 4; ++k) b.data<int64_t>()[k] = int64_t(k) << 40;
  Tensor c = Tensor::zeros({}, Device::CPU, DType::F64);
  c.data<double>()[0] = 0.25;
  Tensor d = Tensor::empty({0, 2}, Device::CPU, DType::I32);
  Tensor e = Tensor::empty({1, 2}, Device::CPU, DType::I32);
  e.data<int32_t>()[0] = -7;
  e.data<int32_t>()[1] = 9;
  save_safetensors(path, {{"conv.weight", a}, {"steps", b}, {"sigma", c}, {"empty", d}, {"pair", e}},
                   {{"model", "lenet"}, {"epoch", "3"}});
  return data_test::read_bytes(path);
}

// The header JSON of a safetensors file, and a file with `header` in its place (length fixed).
std::string header_of(const Bytes& file) {
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(file[size_t(i)]) << (8 * i);
  return std::string(file.begin() + 8, file.begin() + 8 + std::ptrdiff_t(n));
}

Bytes with_header(const Bytes& file, const std::string& old_header, const Bytes& header) {
  Bytes out(8);
  for (int i = 0; i < 8; ++i) out[size_t(i)] = uint8_t(uint64_t(header.size()) >> (8 * i));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), file.begin() + 8 + std::ptrdiff_t(old_header.size()), file.end());
  return out;
}

const std::vector<std::string> kJsonTokens = {
    "\"", "{", "}", "[", "]", ",", ":", "-1", "0", "1e400", "-0.5", "18446744073709551616",
    "9223372036854775807", "null", "true", "\"F32\"", "\"F16\"", "\"I64\"", "\"dtype\"", "\"shape\"",
    "\"data_offsets\"", "\"__metadata__\"", "[0,0]", "[]", "{}", "\\u0000", "\\ud800", "\xff"};

const std::vector<std::string> kTomlTokens = {
    "[", "]", "[[", "]]", "=", "\"", "'", "\"\"\"", "'''", ".", ",", "{", "}", "#", "\n", "\r", "\t", "\\",
    "inf", "-inf", "nan", "-0", "0.0", "1e308", "1e999", "9223372036854775807", "-9223372036854775808",
    "9223372036854775808", "0x7fffffffffffffff", "0b1", "0o7", "1_000", "true", "false",
    "1979-05-27T07:32:00Z", "07:32:00", "\\u0000", "\\U0010FFFF", "\xc3\x28", "data", "optim", "objective",
    "milestones", "sigma", "dir", "[data]", "[optim]", "a.b", "x = 1"};

// A config touching every kind of value the schema has: strings, integers, floats, booleans,
// an array, comments, a literal string and a dotted key (before the first table).
const char* kConfigSeed = R"(# fuzz seed
certify.every = 0
[data]
dataset = "cifar10"
dir = 'data/cifar10'   # literal string
augment_crop = true
train_count = -1

[model]
name = "resnet20"

[objective]
name = "macer"
sigma = 0.25
k = 16
lambda = 12.0
lambda_schedule = "deferred"
lambda_warmup_epochs = 10
beta = 16
gamma = 8.0

[optim]
epochs = 440
batch = 64
lr = 1e-2
milestones = [200, 400]
nesterov = false

[run]
seed = 7
device = "cpu"
checkpoint_dir = "runs/fuzz"
)";

}  // namespace

TEST_CASE("fuzzer: mutants are deterministic, varied and reported honestly") {
  const Bytes seed = to_bytes("0123456789abcdefghijklmnopqrstuvwxyz");
  REQUIRE(fuzz::mutant(seed, 1, 5) == fuzz::mutant(seed, 1, 5));
  int changed = 0, resized = 0;
  for (int i = 0; i < 200; ++i) {
    Bytes b = fuzz::mutant(seed, 1, uint64_t(i));
    changed += b != seed;
    resized += b.size() != seed.size();
  }
  REQUIRE(changed > 180);
  REQUIRE(resized > 40);
  REQUIRE(resized < 180);

  fuzz::Tally t;
  REQUIRE(fuzz::check_input([] {}, "f", t) == "");
  REQUIRE(fuzz::check_input([] { throw Error("f: bad"); }, "f", t) == "");
  REQUIRE((t.accepted == 1 && t.rejected == 1));
  REQUIRE_THAT(fuzz::check_input([] { throw Error(""); }, "", t), Catch::Contains("empty message"));
  REQUIRE_THAT(fuzz::check_input([] { throw Error("bad"); }, "f.bin", t), Catch::Contains("does not name 'f.bin'"));
  REQUIRE_THAT(fuzz::check_input([] { throw std::out_of_range("stoi"); }, "", t),
               Catch::Contains("instead of macer::Error: stoi"));
  REQUIRE((t.accepted == 1 && t.rejected == 1));
}

TEST_CASE("fuzz: safetensors files, whole-file and header mutants") {
  TempDir dir("fuzz_st");
  const std::string path = dir.file("model.safetensors");
  const Bytes valid = safetensors_seed(dir.file("seed.safetensors"));
  auto load = [&](const Bytes& b) {
    fuzz::write_file(path, b);
    SafetensorsFile f = load_safetensors(path);
    for (const auto& [name, t] : f.tensors) REQUIRE(f.find(name) == &t);
  };
  fuzz::run("safetensors file", valid, 11, 2000, 160, {}, path, load);

  // Mutate the JSON header alone, with the length field kept right: the checks behind it.
  const std::string header = header_of(valid);
  fuzz::run("safetensors header", to_bytes(header), 12, 3000, 0, kJsonTokens, path,
            [&](const Bytes& h) { load(with_header(valid, header, h)); });
}

TEST_CASE("fuzz: TOML training config text, file and --set overrides") {
  const Bytes valid = to_bytes(kConfigSeed);
  fuzz::run("config text", valid, 21, 4000, 0, kTomlTokens, "fuzz.toml",
            [](const Bytes& b) { parse_train_config(to_string(b), "fuzz.toml"); });

  TempDir dir("fuzz_config");
  const std::string path = dir.file("train.toml");
  fuzz::run("config file", valid, 22, 300, 0, kTomlTokens, path, [&](const Bytes& b) {
    fuzz::write_file(path, b);
    load_train_config(path);
  });

  // --set overrides: five of them in one input, split at ';', so that mutants can also merge
  // or split them. Their errors name --set or, after validation, the config.
  const std::string sets = "optim.lr=0.1;data.dir=/tmp/x;optim.milestones=[1, 5];objective.name=gaussian;run.seed=3";
  fuzz::run("config --set", to_bytes(sets), 23, 2000, 0, kTomlTokens, "", [](const Bytes& b) {
    std::vector<std::string> overrides(1);
    for (uint8_t c : b) {
      if (c == ';') overrides.emplace_back();
      else overrides.back() += char(c);
    }
    parse_train_config(kConfigSeed, "fuzz.toml", overrides);
  });
}
