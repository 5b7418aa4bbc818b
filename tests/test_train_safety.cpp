// What training must never lose or get silently wrong (CPU): divergence stops the run with the
// last finite checkpoint kept, a run folder is neither overwritten nor shared, resume checks what
// the checkpoint was trained for and cuts the log back to it, and outputs are checked up front.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "engine/safetensors.h"
#include "layers/registry.h"
#include "layers/state.h"
#include "macer/checkpoint.h"
#include "macer/train/trainer.h"
#include "data_test_util.h"

using namespace macer;
using data_test::TempDir;
namespace fs = std::filesystem;

namespace {

TrainConfig tiny(const std::string& dir, int64_t epochs, const std::vector<std::string>& sets = {}) {
  std::vector<std::string> all = {"run.checkpoint_dir=\"" + dir + "\"", "optim.epochs=" + std::to_string(epochs)};
  all.insert(all.end(), sets.begin(), sets.end());
  return parse_train_config(
      "[data]\ndataset = \"synthetic\"\nsynthetic_size = 64\nsynthetic_classes = 3\n"
      "[model]\nname = \"lenet\"\n"
      "[objective]\nname = \"macer\"\nsigma = 0.25\nk = 2\nlambda = 2.0\n"
      "[optim]\nbatch = 16\nlr = 0.02\n"
      "[run]\ndevice = \"cpu\"\ncheckpoint_every = 1\nprint_every = 1000\n",
      "tiny", all);
}


std::vector<int64_t> logged_epochs(const std::string& path) {
  std::ifstream in(path);
  std::vector<int64_t> epochs;
  for (std::string line; std::getline(in, line);) epochs.push_back(nlohmann::json::parse(line)["epoch"].get<int64_t>());
  return epochs;
}

TrainerOptions resume_from(const std::string& path, bool allow_changes = false) {
  TrainerOptions o;
  o.resume = path;
  o.allow_changes = allow_changes;
  return o;
}

}  // namespace

TEST_CASE("divergence stops training with an error and keeps the last finite checkpoint", "[train][safety]") {
  TempDir dir_tmp("nan");
  const std::string dir = dir_tmp.path.string();
  std::string ckpt = dir + "/checkpoint.safetensors";
  { Trainer(tiny(dir, 1)).run(); }
  // A learning rate and weight decay that blow the weights up within a few epochs.
  Trainer t(tiny(dir, 8, {"optim.lr=100", "optim.weight_decay=1"}), resume_from(ckpt));
  int64_t bad_epoch = 0;
  try {
    t.run();
    FAIL("a diverging run finished without an error");
  } catch (const Error& e) {
    std::string m = e.what();
    CHECK_THAT(m, Catch::Contains("became NaN or infinite at epoch ") && Catch::Contains("lower optim.lr?") &&
                      Catch::Contains("last finite checkpoint is kept"));
    std::smatch at;
    REQUIRE(std::regex_search(m, at, std::regex("at epoch ([0-9]+) step ([0-9]+) of 4")));
    bad_epoch = std::stoll(at[1]);
  }
  REQUIRE(bad_epoch >= 2);
  // The epochs before the bad one were checkpointed and logged; the bad one is neither.
  CheckpointInfo info = read_checkpoint_info(ckpt);
  CHECK(info.epoch == bad_epoch - 1);
  layers::ModelOptions shape;  // the synthetic set's 3x32x32 images of 3 classes
  shape.classes = 3;
  auto model = layers::make_model("lenet", shape);
  CHECK_NOTHROW(load_checkpoint(ckpt, *model, nullptr));  // refuses non-finite weights, so finite
  std::vector<int64_t> want;
  for (int64_t e = 1; e < bad_epoch; ++e) want.push_back(e);
  CHECK(logged_epochs(dir + "/train.jsonl") == want);
}

TEST_CASE("divergence before any checkpoint says that none was written", "[train][safety]") {
  TempDir dir_tmp("nan_first");
  const std::string dir = dir_tmp.path.string();
  Trainer t(tiny(dir, 8, {"optim.lr=100", "optim.weight_decay=1", "run.checkpoint_every=100"}));
  CHECK_THROWS_WITH(t.run(), Catch::Contains("became NaN or infinite") && Catch::Contains("no checkpoint was written"));
  CHECK_FALSE(fs::exists(dir + "/checkpoint.safetensors"));
}

TEST_CASE("a folder that holds a run is refused unless resumed or overwritten", "[train][safety]") {
  TempDir dir_tmp("existing");
  const std::string dir = dir_tmp.path.string();
  { Trainer(tiny(dir, 2)).run(); }
  CHECK_THROWS_WITH(Trainer(tiny(dir, 2)), Catch::Contains("already holds a run") && Catch::Contains("--resume") &&
                                               Catch::Contains("--overwrite"));
  CHECK(logged_epochs(dir + "/train.jsonl") == std::vector<int64_t>{1, 2});  // untouched
  TrainerOptions overwrite;
  overwrite.overwrite = true;
  Trainer again(tiny(dir, 1), overwrite);
  again.run();
  CHECK(logged_epochs(dir + "/train.jsonl") == std::vector<int64_t>{1});
  CHECK(read_checkpoint_info(dir + "/checkpoint.safetensors").epoch == 1);
}

TEST_CASE("two trainers never share a run folder (lock file)", "[train][safety]") {
  TempDir dir_tmp("lock");
  const std::string dir = dir_tmp.path.string();
  Trainer first(tiny(dir, 1));
  TrainerOptions overwrite;
  overwrite.overwrite = true;
  CHECK_THROWS_WITH(Trainer(tiny(dir, 1), overwrite), Catch::Contains("another macer_train"));
  first.run();
}

TEST_CASE("resume cuts the log back to the checkpoint's epoch", "[train][safety]") {
  TempDir dir_tmp("log");
  const std::string dir = dir_tmp.path.string();
  { Trainer(tiny(dir, 2)).run(); }
  {  // what a kill after logging epoch 3 (not yet checkpointed) and in the middle of a line leaves
    std::ofstream log(dir + "/train.jsonl", std::ios::app);
    log << "{\"epoch\": 3, \"loss\": 1.0}\n{\"epoch\": 4, \"lo";
  }
  Trainer t(tiny(dir, 4), resume_from(dir + "/checkpoint.safetensors"));
  CHECK(t.epochs_done() == 2);
  t.run();
  CHECK(logged_epochs(dir + "/train.jsonl") == std::vector<int64_t>{1, 2, 3, 4});
}

TEST_CASE("resume refuses another sigma, objective or input unless allowed; a finished run says so", "[train][safety]") {
  TempDir dir_tmp("changes");
  const std::string dir = dir_tmp.path.string();
  std::string ckpt = dir + "/checkpoint.safetensors";
  { Trainer(tiny(dir, 1, {"objective.sigma=0.123456789"})).run(); }
  // sigma is stored exactly (shortest round-trip text), not rounded to 6 digits.
  CHECK(read_checkpoint_info(ckpt).sigma == 0.123456789);
  CHECK_THROWS_WITH(Trainer(tiny(dir, 2), resume_from(ckpt)),
                    Catch::Contains("sigma 0.123457") && Catch::Contains("--allow-changes"));
  CHECK_THROWS_WITH(Trainer(tiny(dir, 2, {"objective.sigma=0.123456789", "objective.name=gaussian"}), resume_from(ckpt)),
                    Catch::Contains("objective macer"));
  CHECK_THROWS_WITH(Trainer(tiny(dir, 2, {"objective.sigma=0.123456789", "data.synthetic_classes=4"}), resume_from(ckpt)),
                    Catch::Contains("3 classes"));
  CHECK_NOTHROW(Trainer(tiny(dir, 2), resume_from(ckpt, /*allow_changes=*/true)));
  Trainer done(tiny(dir, 1, {"objective.sigma=0.123456789"}), resume_from(ckpt));
  CHECK(done.run().empty());
}

TEST_CASE("checkpoints with non-finite weights or negative epochs are refused", "[train][safety]") {
  TempDir dir_tmp("bad_ckpt");
  const std::string dir = dir_tmp.path.string();
  std::string ckpt = dir + "/checkpoint.safetensors";
  { Trainer(tiny(dir, 1)).run(); }
  SafetensorsFile f = load_safetensors(ckpt);
  auto rewrite = [&](const std::string& path, auto change) {
    SafetensorsFile g = f;
    for (auto& [name, t] : g.tensors) t = t.clone();
    change(g);
    save_safetensors(path, g.tensors, g.metadata);
  };
  rewrite(dir + "/nan.safetensors", [](SafetensorsFile& g) { g.tensors[0].second.data()[3] = std::nanf(""); });
  rewrite(dir + "/negative.safetensors", [](SafetensorsFile& g) { g.metadata["epoch"] = "-2"; });
  rewrite(dir + "/huge.safetensors", [](SafetensorsFile& g) { g.metadata["step"] = "99999999999999999999999"; });
  layers::ModelOptions shape;  // the synthetic set's 3x32x32 images of 3 classes
  shape.classes = 3;
  auto model = layers::make_model("lenet", shape);
  CHECK_THROWS_WITH(load_checkpoint(dir + "/nan.safetensors", *model, nullptr), Catch::Contains("NaN or infinite"));
  CHECK_THROWS_WITH(read_checkpoint_info(dir + "/negative.safetensors"), Catch::Contains("must not be negative"));
  CHECK_THROWS_WITH(read_checkpoint_info(dir + "/huge.safetensors"),
                    Catch::Contains("'step' is not an integer in range"));
  CHECK_THROWS_WITH(read_checkpoint_info(dir), Catch::Contains("is a folder"));
}

TEST_CASE("outputs and the in-training test set are checked before any work", "[train][safety]") {
  TempDir dir_tmp("outputs");
  const std::string dir = dir_tmp.path.string();
  std::ofstream(dir + "/a_file") << "x";
  CHECK_THROWS_WITH(Trainer(tiny(dir + "/a_file/run", 1)),
                    Catch::Contains("run.checkpoint_dir") && Catch::Contains("Not a directory"));
  CHECK_THROWS_WITH(Trainer(tiny(dir + "/run", 1, {"run.log_file=\"" + dir + "/missing/log.jsonl\""})),
                    Catch::Contains("run.log_file") && Catch::Contains("No such file or directory"));
  CHECK_THROWS_WITH(Trainer(tiny(dir + "/run2", 1, {"certify.every=1", "certify.start=100000"})),
                    Catch::Contains("no images to certify"));
  if (fs::is_character_file("/dev/full")) {  // a log whose writes fail ends the run with an error
    Trainer t(tiny(dir + "/run3", 1, {"run.log_file=\"/dev/full\""}));
    CHECK_THROWS_WITH(t.run(), Catch::Contains("/dev/full") && Catch::Contains("writing the log failed"));
  }
}
