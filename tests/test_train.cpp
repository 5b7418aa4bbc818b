// End-to-end training tests on a tiny synthetic data set (CPU): the loss goes down, a resumed
// run reproduces an uninterrupted one exactly, checkpoints load back, the log has one JSON line
// per epoch.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <tuple>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "data/dataset.h"
#include "engine/autograd.h"
#include "layers/state.h"
#include "macer/checkpoint.h"
#include "macer/train/evaluate.h"
#include "macer/train/trainer.h"

using namespace macer;
namespace fs = std::filesystem;

namespace {

TrainConfig tiny_config(const std::string& dir, const std::string& objective, int64_t epochs) {
  std::string text =
      "[data]\ndataset = \"synthetic\"\nsynthetic_size = 256\nsynthetic_classes = 3\n"
      "[model]\nname = \"lenet\"\n"
      "[objective]\nname = \"" + objective + "\"\nsigma = 0.25\nk = 4\n" + (objective == "macer" ? "lambda = 2.0\n" : "") +
      "[optim]\nbatch = 32\nlr = 0.02\nmilestones = [3]\n"
      "[run]\ndevice = \"cpu\"\ncheckpoint_every = 1\nprint_every = 1000\n";
  TrainConfig c = parse_train_config(text, "tiny");
  c.optim.epochs = epochs;
  c.run.checkpoint_dir = dir;
  return c;
}

std::string temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("macer_test_train_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

}  // namespace

TEST_CASE("MACER and Gaussian training lower the loss on a learnable synthetic set", "[train]") {
  for (std::string objective : {"macer", "gaussian"}) {
    INFO(objective);
    std::string dir = temp_dir(objective);
    Trainer trainer(tiny_config(dir, objective, 4));
    auto stats = trainer.run();
    REQUIRE(stats.size() == 4);
    CHECK(stats.back().loss < 0.8 * stats.front().loss);
    CHECK(stats.back().train_accuracy > stats.front().train_accuracy);
    for (const auto& s : stats) CHECK(std::isfinite(s.loss));
    if (objective == "macer") CHECK(stats.back().active_fraction > 0.0);
    CHECK(stats[3].lr == Approx(0.002));  // milestone at epoch 3
    // One JSON line per epoch with the documented fields.
    std::ifstream log(dir + "/train.jsonl");
    std::string line;
    int lines = 0;
    while (std::getline(log, line)) {
      auto j = nlohmann::json::parse(line);
      CHECK(j["epoch"] == ++lines);
      for (const char* key : {"lr", "loss", "train_smoothed_accuracy", "seconds", "samples_per_second"})
        CHECK(j.contains(key));
      // MACER's terms only for MACER: the Gaussian baseline's loss is its cross-entropy alone.
      for (const char* key : {"lambda", "cl", "rl", "active_fraction"}) CHECK(j.contains(key) == (objective == "macer"));
    }
    CHECK(lines == 4);
    fs::remove_all(dir);
  }
}

TEST_CASE("a resumed run matches an uninterrupted one exactly", "[train]") {
  std::string dir_a = temp_dir("a"), dir_b = temp_dir("b");
  Trainer full(tiny_config(dir_a, "macer", 3));
  auto a = full.run();

  {
    Trainer first(tiny_config(dir_b, "macer", 1));
    first.run();
  }
  TrainerOptions resume;
  resume.resume = dir_b + "/checkpoint.safetensors";
  Trainer second(tiny_config(dir_b, "macer", 3), resume);
  auto b = second.run();
  REQUIRE(b.size() == 2);
  CHECK(b[0].epoch == 2);
  CHECK(b[0].loss == a[1].loss);
  CHECK(b[1].loss == a[2].loss);
  CHECK(b[1].rl == a[2].rl);
  // Same final weights, bit for bit.
  auto wa = layers::state_dict(full.model()), wb = layers::state_dict(second.model());
  REQUIRE(wa.size() == wb.size());
  for (size_t i = 0; i < wa.size(); ++i) CHECK(wa[i].second.to_vector() == wb[i].second.to_vector());
  CheckpointInfo info = read_checkpoint_info(dir_b + "/checkpoint.safetensors");
  CHECK(info.epoch == 3);
  CHECK(info.model == "lenet");
  CHECK(info.config.find("[objective]") != std::string::npos);
  fs::remove_all(dir_a);
  fs::remove_all(dir_b);
}

TEST_CASE("resume refuses a checkpoint of another model", "[train]") {
  std::string dir = temp_dir("other");
  {
    Trainer t(tiny_config(dir, "macer", 1));
    t.run();
  }
  TrainConfig c = tiny_config(dir, "macer", 2);
  c.model.name = "resnet20";
  TrainerOptions resume;
  resume.resume = dir + "/checkpoint.safetensors";
  CHECK_THROWS_WITH(Trainer(c, resume), Catch::Contains("model lenet"));
  fs::remove_all(dir);
}

TEST_CASE("[model] normalize: trained with, stored in the checkpoint, checked on resume", "[train][normalize]") {
  std::string dir = temp_dir("normalize");
  TrainConfig c = tiny_config(dir, "gaussian", 1);
  c.model.normalize = "cifar10";
  {
    Trainer t(c);
    t.run();
  }
  CheckpointInfo info = read_checkpoint_info(dir + "/checkpoint.safetensors");
  CHECK(info.normalize.mean == layers::normalization_preset("cifar10").mean);
  CHECK(info.normalize.std == layers::normalization_preset("cifar10").std);
  CHECK(parse_train_config(info.config, "stored config").model.normalize == "cifar10");
  TrainConfig other = tiny_config(dir, "gaussian", 2);  // normalize = "none"
  TrainerOptions resume;
  resume.resume = dir + "/checkpoint.safetensors";
  CHECK_THROWS_WITH(Trainer(other, resume), Catch::Contains("trained with input normalization mean") &&
                                                Catch::Contains("--allow-changes"));
  // Malformed normalization metadata is refused, naming the file and the key.
  SafetensorsFile file = load_safetensors(dir + "/checkpoint.safetensors");
  const std::string bad = dir + "/bad.safetensors";
  using Case = std::tuple<std::string, std::string, std::string>;  // key, value, message
  for (auto [key, value, message] : {Case{"normalize_mean", "0.5,x,0.5", "not a comma-separated list"},
                                     Case{"normalize_std", "0.2,0,0.2", "must be > 0"},
                                     Case{"normalize_std", "0.2,0.2", "'normalize_std' 2"}}) {
    INFO(key << " = " << value);
    auto meta = file.metadata;
    meta[key] = value;
    save_safetensors(bad, file.tensors, meta);
    CHECK_THROWS_WITH(read_checkpoint_info(bad), Catch::Contains(bad) && Catch::Contains(message));
  }
  auto meta = file.metadata;
  meta.erase("normalize_std");
  save_safetensors(bad, file.tensors, meta);
  CHECK_THROWS_WITH(read_checkpoint_info(bad), Catch::Contains("but not both"));
  // Without the option nothing is stored.
  std::string dir2 = temp_dir("normalize_none");
  TrainConfig none = tiny_config(dir2, "gaussian", 1);
  Trainer w(none);
  w.run();
  CHECK_FALSE(read_checkpoint_info(dir2 + "/checkpoint.safetensors").normalize.enabled());
  fs::remove_all(dir);
  fs::remove_all(dir2);
}

TEST_CASE("every config in configs/ starts training (on a synthetic stand-in for its data)", "[train][config]") {
  int started = 0;
  for (const auto& entry : fs::directory_iterator(std::string(MACER_SOURCE_DIR) + "/configs")) {
    if (entry.path().extension() != ".toml") continue;
    INFO(entry.path());
    std::string dir = temp_dir("config_" + entry.path().stem().string());
    // The shipped model, objective and hyper-parameters; a tiny synthetic set, one epoch, k = 2
    // (data.dir cleared: a file's folder under --set data.dataset=synthetic is refused).
    TrainConfig c = load_train_config(entry.path().string(),
                                      {"data.dataset=synthetic", "data.dir=\"\"", "data.synthetic_size=4", "data.train_count=-1", "optim.epochs=1",
                                       "optim.batch=2", "objective.k=2", "run.device=cpu",
                                       "run.checkpoint_dir=\"" + dir + "\""});
    Trainer trainer(c);
    auto stats = trainer.run();
    REQUIRE(stats.size() == 1);
    CHECK(std::isfinite(stats[0].loss));
    CHECK(fs::exists(dir + "/checkpoint.safetensors"));
    fs::remove_all(dir);
    ++started;
  }
  CHECK(started >= 8);
}

TEST_CASE("training certifies test images every N epochs and logs the summary", "[train][certify]") {
  std::string dir = temp_dir("certify");
  TrainConfig c = tiny_config(dir, "macer", 2);
  c.certify.every = 2;
  c.certify.count = 3;
  c.certify.n0 = 10;
  c.certify.n = 50;
  c.certify.batch = 25;
  Trainer trainer(c);
  auto stats = trainer.run();
  REQUIRE(stats.size() == 2);
  CHECK(stats[0].certify_json.empty());  // epoch 1: not a multiple of 2
  REQUIRE(!stats[1].certify_json.empty());
  std::ifstream log(dir + "/train.jsonl");
  std::string first, second;
  std::getline(log, first);
  std::getline(log, second);
  CHECK_FALSE(nlohmann::json::parse(first).contains("certify"));
  auto summary = nlohmann::json::parse(second)["certify"];
  CHECK(summary["images"] == 3);
  CHECK(summary["certified_accuracy"].size() == 10);
  CHECK(summary["acr"].get<double>() >= 0.0);
  fs::remove_all(dir);
}

TEST_CASE("the per-epoch test loss and accuracy: clean, they are those of the eval-mode network", "[train]") {
  std::string dir = temp_dir("test_loss");
  Trainer trainer(tiny_config(dir, "macer", 1));
  auto stats = trainer.run();
  REQUIRE(stats.size() == 1);
  // Logged (run.test_every = 1 by default), within [0, 1] and finite.
  CHECK((stats[0].test_accuracy >= 0 && stats[0].test_accuracy <= 1 && std::isfinite(stats[0].test_loss)));
  // sigma 0: the mean cross-entropy and accuracy of the plain forward pass, image by image.
  auto set = data::open_dataset("synthetic", "", "test", [] {
    data::DatasetOptions o;
    o.synthetic_size = 256, o.synthetic_classes = 3;
    return o;
  }());
  layers::Module& model = trainer.model();
  NoisyTestResult got = evaluate_noisy(model, *set, Device::CPU, 0.0f, 0, 37);  // 37: a ragged last batch
  model.eval();
  double loss = 0;
  int64_t correct = 0;
  Tensor x = Tensor::empty({1, set->channels(), set->height(), set->width()});
  for (int64_t i = 0; i < set->size(); ++i) {
    set->image(i, x.data());
    std::vector<float> z = model.forward(Var(x)).value().to_vector();
    double m = *std::max_element(z.begin(), z.end()), lse = 0;
    for (float v : z) lse += std::exp(double(v) - m);
    loss += m + std::log(lse) - z[size_t(set->label(i))];
    correct += std::max_element(z.begin(), z.end()) - z.begin() == set->label(i);
  }
  model.train();
  CHECK(got.loss == Approx(loss / double(set->size())).epsilon(1e-5));
  CHECK(got.accuracy == double(correct) / double(set->size()));
  // With noise the figures move (other draws), and stay in range.
  NoisyTestResult noisy = evaluate_noisy(model, *set, Device::CPU, 1.0f, 0, 64);
  CHECK(noisy.loss != got.loss);
  fs::remove_all(dir);
}

namespace {
// Resumes a run of `make(dir, epochs)` after epoch 1 of 2 and compares it with an uninterrupted
// one: epoch 2's figures and the final weights, bit for bit (the warm-ups of eps and w_e differ
// between the two epochs, so the resumed run must find its epoch's schedule again).
template <typename Make>
void check_resume_matches(const std::string& tag, Make make) {
  std::string dir_a = temp_dir(tag + "_a"), dir_b = temp_dir(tag + "_b");
  Trainer full(make(dir_a, 2));
  auto a = full.run();
  REQUIRE(a.size() == 2);
  {
    Trainer first(make(dir_b, 1));
    first.run();
  }
  TrainerOptions resume;
  resume.resume = dir_b + "/checkpoint.safetensors";
  Trainer second(make(dir_b, 2), resume);
  auto b = second.run();
  REQUIRE(b.size() == 1);
  CHECK(b[0].loss == a[1].loss);
  CHECK(b[0].cl == a[1].cl);
  CHECK(b[0].rl == a[1].rl);
  CHECK(b[0].train_accuracy == a[1].train_accuracy);
  auto wa = layers::state_dict(full.model()), wb = layers::state_dict(second.model());
  REQUIRE(wa.size() == wb.size());
  for (size_t i = 0; i < wa.size(); ++i) CHECK(wa[i].second.to_vector() == wb[i].second.to_vector());
  fs::remove_all(dir_a);
  fs::remove_all(dir_b);
}
}  // namespace

TEST_CASE("SmoothAdv (PGD + Gaussian, and PGD + MACER): a resumed run matches an uninterrupted one", "[train][attack]") {
  for (std::string objective : {"gaussian", "macer"}) {
    INFO(objective);
    check_resume_matches("smoothadv_" + objective, [&](const std::string& dir, int64_t epochs) {
      TrainConfig c = tiny_config(dir, objective, epochs);
      c.attack.name = "pgd";
      c.attack.eps = 0.5;
      c.attack.steps = 2;
      c.attack.warmup_epochs = 2;
      c.data.synthetic_size = 128;
      return c;
    });
  }
}

TEST_CASE("Consistency, Consistency + SmoothAdv and SmoothMix: a resumed run matches an uninterrupted one",
          "[train][attack]") {
  for (std::string method : {"consistency", "consistency_pgd", "smoothmix"}) {
    INFO(method);
    check_resume_matches(method, [&](const std::string& dir, int64_t epochs) {
      TrainConfig c = tiny_config(dir, method == "smoothmix" ? "gaussian" : "consistency", epochs);
      if (method == "smoothmix") c.objective.name = "smoothmix";
      c.objective.eta = method == "smoothmix" ? 5.0 : 0.5;
      c.data.synthetic_size = 128;
      if (method == "consistency_pgd")
        c.attack.name = "pgd", c.attack.eps = 0.5, c.attack.steps = 2, c.attack.warmup_epochs = 2;
      if (method == "smoothmix") c.attack.name = "smoothmix", c.attack.steps = 2, c.attack.alpha = 0.5,
                                 c.attack.warmup_epochs = 2;
      return c;
    });
  }
}

TEST_CASE("the attack changes training; resume refuses another attack", "[train][attack]") {
  std::string dir_a = temp_dir("plain"), dir_b = temp_dir("pgd");
  {
    Trainer plain(tiny_config(dir_a, "gaussian", 1));
    TrainConfig c = tiny_config(dir_b, "gaussian", 1);
    c.attack.name = "pgd";
    c.attack.eps = 0.5;
    Trainer adv(c);
    auto a = plain.run(), b = adv.run();
    CHECK(a[0].loss != b[0].loss);
    CHECK(std::isfinite(b[0].loss));
  }
  TrainerOptions resume;
  resume.resume = dir_b + "/checkpoint.safetensors";
  CHECK_THROWS_WITH(Trainer(tiny_config(dir_b, "gaussian", 2), resume), Catch::Contains("attack pgd"));
  fs::remove_all(dir_a);
  fs::remove_all(dir_b);
}
