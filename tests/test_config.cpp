// Tests of macer/config: every shipped config parses, overrides apply, and unknown keys, wrong
// types and out-of-range values are refused with the key and the line.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "kernels/check.h"
#include "macer/config.h"
#include "macer/train/schedule.h"

using namespace macer;

namespace {
std::string error_of(const std::string& text, const std::vector<std::string>& overrides = {}) {
  try {
    parse_train_config(text, "test.toml", overrides);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("every config in configs/ parses and round-trips through to_toml", "[config]") {
  int seen = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(std::string(MACER_SOURCE_DIR) + "/configs")) {
    if (entry.path().extension() != ".toml") continue;
    INFO(entry.path());
    TrainConfig c = load_train_config(entry.path().string());
    TrainConfig again = parse_train_config(to_toml(c), "resolved");
    CHECK(to_toml(again) == to_toml(c));
    ++seen;
  }
  CHECK(seen >= 7);
}

TEST_CASE("the paper's Cifar-10 setting is what configs/ says", "[config]") {
  TrainConfig c = load_train_config(std::string(MACER_SOURCE_DIR) + "/configs/cifar10-sigma0.25.toml");
  CHECK(c.model.name == "resnet110");
  CHECK(c.objective.k == 16);
  CHECK(c.objective.lambda == 12.0);
  CHECK(c.objective.beta == 16.0);
  CHECK(c.objective.gamma == 8.0);
  CHECK(c.optim.epochs == 440);
  CHECK(c.optim.milestones == std::vector<int64_t>{199, 399});
  CHECK(c.optim.weight_decay == Approx(5e-4));
}

TEST_CASE("every shipped config says what its milestones mean, and it is what the schedule does",
          "[config][schedule]") {
  // The comment above `milestones` ends "here from (1-based) epoch A, B and C on.": those are the
  // first (1-based) epochs at each lower rate of macer/train/schedule.h's MultiStepLr.
  int seen = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(std::string(MACER_SOURCE_DIR) + "/configs")) {
    if (entry.path().extension() != ".toml") continue;
    INFO(entry.path());
    TrainConfig c = load_train_config(entry.path().string());
    if (c.optim.milestones.empty()) continue;
    std::ifstream in(entry.path());
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string intro = "here from (1-based) epoch ";
    const size_t at = text.find(intro), end = text.find(" on.", at);
    REQUIRE(at != std::string::npos);
    REQUIRE(end != std::string::npos);
    std::string list = text.substr(at + intro.size(), end - at - intro.size());
    for (const std::string sep : {", ", " and "})
      for (size_t p; (p = list.find(sep)) != std::string::npos;) list.replace(p, sep.size(), " ");
    std::istringstream words(list);
    std::vector<int64_t> first_lower;
    for (int64_t e; words >> e;) first_lower.push_back(e);
    REQUIRE(first_lower.size() == c.optim.milestones.size());
    MultiStepLr lr(c.optim.lr, c.optim.milestones, c.optim.lr_factor);
    for (int64_t e : first_lower) {
      INFO("(1-based) epoch " << e);
      CHECK(lr.at(e - 1) < lr.at(e - 2));  // at() takes the 0-based epoch
      CHECK(lr.at(e - 2) == lr.at(e - 3 >= 0 ? e - 3 : 0));  // and not one epoch earlier
    }
    ++seen;
  }
  CHECK(seen >= 20);
}

TEST_CASE("the shipped Cifar-10 schedule is the MACER code's learning rate, epoch by epoch", "[config][schedule]") {
  // The MACER code: MultiStepLR(milestones=[200, 400], gamma=0.1), scheduler.step() at the start
  // of each (1-based) epoch e, so epoch e trains at lr * 0.1^(number of milestones <= e).
  TrainConfig c = load_train_config(std::string(MACER_SOURCE_DIR) + "/configs/cifar10-sigma0.25.toml");
  MultiStepLr ours(c.optim.lr, c.optim.milestones, c.optim.lr_factor);
  for (int64_t e = 1; e <= c.optim.epochs; ++e) {
    double theirs = c.optim.lr * std::pow(0.1, int(e >= 200) + int(e >= 400));
    INFO("epoch " << e);
    CHECK(ours.at(e - 1) == Approx(theirs).epsilon(1e-12));
  }
}

TEST_CASE("MACER needs sigma > 0; a config that is a folder is refused", "[config]") {
  const std::string base = "[data]\ndataset = \"synthetic\"\n";
  CHECK_THROWS_WITH(parse_train_config(base + "[objective]\nsigma = 0.0\n", "t"),
                    Catch::Contains("objective.sigma") && Catch::Contains("> 0"));
  CHECK_NOTHROW(parse_train_config(base + "[objective]\nname = \"gaussian\"\nsigma = 0.0\nk = 1\n", "t"));
  CHECK_THROWS_WITH(load_train_config(std::string(MACER_SOURCE_DIR) + "/configs"), Catch::Contains("is a folder"));
}

TEST_CASE("\"imagenet\" is an alias of the canonical \"imagefolder\" (the converter's word too)", "[config]") {
  for (const char* name : {"imagenet", "imagefolder"}) {
    INFO(name);
    const std::string text = std::string("[data]\ndataset = \"") + name + "\"\ndir = \"/data/x\"\nimage_size = 64\n";
    TrainConfig c = parse_train_config(text, "t");
    CHECK(c.data.dataset == "imagefolder");
    CHECK(c.data.image_size == 64);  // not refused as a key for other data sets
    CHECK(to_toml(c).find("dataset = 'imagefolder'") != std::string::npos);
  }
  const std::vector<std::string> set = {"data.dataset=imagenet", "data.dir=/data/x"};
  CHECK(parse_train_config("[data]\ndataset = \"synthetic\"\n", "t", set).data.dataset == "imagefolder");
}

TEST_CASE("overrides with --set", "[config]") {
  std::string text = "[data]\ndataset = \"synthetic\"\n";
  TrainConfig c = parse_train_config(text, "t", {"optim.lr=0.5", "model.name=lenet", "optim.milestones=[3, 7]",
                                                 "objective.name=\"gaussian\"", "optim.nesterov=true"});
  CHECK(c.optim.lr == 0.5);
  CHECK(c.model.name == "lenet");
  CHECK(c.optim.milestones == std::vector<int64_t>{3, 7});
  CHECK(c.objective.name == "gaussian");
  CHECK(c.optim.nesterov);
  CHECK_THAT(error_of(text, {"optim.bogus=1"}), Catch::Contains("unknown key") && Catch::Contains("optim.bogus"));
  CHECK_THAT(error_of(text, {"optim.lr"}), Catch::Contains("section.key=value"));
  CHECK_THAT(error_of(text, {"optim.epochs=0"}), Catch::Contains("out of range"));
}

TEST_CASE("bad configs are refused with key and line", "[config]") {
  std::string base = "[data]\ndataset = \"synthetic\"\n";
  CHECK_THAT(error_of(base + "[optim]\nlearning_rate = 0.1\n"),
             Catch::Contains("test.toml:4") && Catch::Contains("optim.learning_rate") && Catch::Contains("unknown key"));
  CHECK_THAT(error_of(base + "[optim]\nepochs = \"ten\"\n"),
             Catch::Contains("test.toml:4") && Catch::Contains("expected an integer"));
  CHECK_THAT(error_of(base + "[optim]\nepochs = 2.5\n"), Catch::Contains("expected an integer"));
  CHECK_THAT(error_of(base + "[objective]\nsigma = -1.0\n"),
             Catch::Contains("objective.sigma") && Catch::Contains("out of range"));
  CHECK_THAT(error_of(base + "[objective]\nname = \"adversarial\"\n"), Catch::Contains("is not one of"));
  CHECK_THAT(error_of(base + "[run]\ndevice = \"tpu\"\n"), Catch::Contains("run.device"));
  CHECK_THAT(error_of(base + "[optim]\nmilestones = [5, 3]\n"), Catch::Contains("must increase"));
  CHECK_THAT(error_of("[data]\ndataset = \"cifar10\"\n"), Catch::Contains("data.dir"));
  CHECK_THAT(error_of("[data\n"), Catch::Contains("test.toml:1"));
  CHECK_THAT(error_of("lr = 0.1\n"), Catch::Contains("expected a [section] table"));
  // An integer where a float is expected is fine (lr = 1).
  CHECK(error_of(base + "[optim]\nlr = 1\n").empty());
}

TEST_CASE("typos get a suggestion; an unknown section is named as one", "[config]") {
  std::string base = "[data]\ndataset = \"synthetic\"\n";
  CHECK_THAT(error_of(base, {"optim.eopchs=3"}), Catch::Contains("did you mean 'optim.epochs'?"));
  CHECK_THAT(error_of(base + "[objective]\nsgima = 0.5\n"),
             Catch::Contains("test.toml:4") && Catch::Contains("did you mean 'objective.sigma'?"));
  CHECK_THAT(error_of(base + "[optm]\nlr = 0.1\n"),
             Catch::Contains("test.toml:3") && Catch::Contains("unknown section [optm]") &&
                 Catch::Contains("did you mean 'optim'?"));
  // Nothing near: the section's keys are listed instead.
  CHECK_THAT(error_of(base + "[optim]\nwarp_drive = 1\n"),
             Catch::Contains("known: optim.epochs") && !Catch::Contains("did you mean"));
  CHECK_THAT(error_of(base + "[quantum]\nx = 1\n"), Catch::Contains("unknown section [quantum] (known: data, model"));
}

TEST_CASE("attack hyperparameters: one error naming the key", "[config][attack]") {
  const std::string base = "[data]\ndataset = \"synthetic\"\n[objective]\nname = \"gaussian\"\n";
  CHECK_THAT(error_of(base + "[attack]\nname = \"pgd\"\neps = -0.5\n"),
             Catch::Contains("attack.eps") && Catch::Contains("out of range"));
  CHECK_THAT(error_of(base + "[attack]\nname = \"pgd\"\nsteps = 0\n"),
             Catch::Contains("attack.steps") && Catch::Contains("out of range"));
  CHECK_THAT(error_of(base + "[attack]\nname = \"fgsm\"\n"),
             Catch::Contains("attack.name") && Catch::Contains("is not one of"));
  CHECK_THAT(error_of(base + "[attack]\nwarmup_epochs = -1\n"), Catch::Contains("attack.warmup_epochs"));
  CHECK_THAT(error_of(base + "[attack]\nmix_step = 2\n"), Catch::Contains("attack.mix_step"));
  CHECK_THAT(error_of(base + "[attack]\nalpha = 0\n"), Catch::Contains("attack.alpha"));
  // PGD composes with Gaussian and MACER.
  CHECK(error_of(base + "[attack]\nname = \"pgd\"\neps = 0.5\nsteps = 2\nwarmup_epochs = 2\n").empty());
  CHECK(error_of("[data]\ndataset = \"synthetic\"\n[objective]\nname = \"macer\"\n[attack]\nname = \"pgd\"\n").empty());
  // Which objective takes which attack; k where a method needs two copies; mix_step 1 needs T >= 2.
  CHECK_THAT(error_of(base + "[attack]\nname = \"smoothmix\"\n"),
             Catch::Contains("attack.name") && Catch::Contains("smoothmix"));
  const std::string sm = "[data]\ndataset = \"synthetic\"\n[objective]\nname = \"smoothmix\"\nk = 2\n";
  CHECK_THAT(error_of(sm + "[attack]\nname = \"pgd\"\n"), Catch::Contains("attack.name"));
  CHECK_THAT(error_of(sm), Catch::Contains("attack.name"));
  CHECK(error_of(sm + "[attack]\nname = \"smoothmix\"\n").empty());
  CHECK(error_of("[data]\ndataset = \"synthetic\"\n[objective]\nname = \"smoothmix\"\nk = 1\n"
                 "[attack]\nname = \"smoothmix\"\n").empty());  // SmoothMix's ablation runs k = 1
  CHECK_THAT(error_of(sm + "[attack]\nname = \"smoothmix\"\nmix_step = 1\nsteps = 1\n"),
             Catch::Contains("attack.mix_step") && Catch::Contains("steps >= 2"));
  const std::string cons = "[data]\ndataset = \"synthetic\"\n[objective]\nname = \"consistency\"\n";
  CHECK_THAT(error_of(cons + "k = 1\n"), Catch::Contains("objective.k") && Catch::Contains("k >= 2"));
  CHECK(error_of(cons + "k = 2\n[attack]\nname = \"pgd\"\n").empty());  // Consistency + SmoothAdv
  CHECK_THAT(error_of(cons + "k = 2\neta = -1\n"), Catch::Contains("objective.eta"));
  TrainConfig c = parse_train_config(base + "[attack]\nname = \"pgd\"\neps = 0.5\nsteps = 3\n", "t");
  CHECK(c.attack.steps == 3);
  CHECK(parse_train_config(to_toml(c), "again").attack.eps == 0.5);
}

TEST_CASE("the three small method configs hold exactly the issue's settings", "[config][attack]") {
  const std::string dir = std::string(MACER_SOURCE_DIR) + "/configs/methods/";
  for (const char* method : {"consistency", "smoothadv", "smoothmix"}) {
    INFO(method);
    TrainConfig c = load_train_config(dir + "fashion-mnist-" + method + ".toml");
    CHECK(c.model.name == "lenet");
    CHECK(c.data.dataset == "fashion-mnist");
    CHECK(c.data.dir == "/usr/share/datasets/fashion-mnist");
    CHECK(c.data.train_count == 30000);
    CHECK_FALSE(c.data.augment_crop);
    CHECK_FALSE(c.data.augment_flip);
    CHECK(c.objective.sigma == 0.25);
    CHECK(c.objective.k == 2);
    CHECK(c.optim.batch == 64);
    CHECK(c.optim.epochs == 2);
    MultiStepLr lr{c.optim.lr, c.optim.milestones, c.optim.lr_factor};
    CHECK(lr.at(0) == Approx(0.05));
    CHECK(lr.at(1) == Approx(0.005));
    CHECK(c.optim.momentum == 0.9);
    CHECK(c.optim.weight_decay == 5e-4);
    CHECK(c.certify.every == 0);
  }
  TrainConfig cons = load_train_config(dir + "fashion-mnist-consistency.toml");
  CHECK(cons.objective.name == "consistency");
  CHECK(cons.attack.name == "none");
  CHECK(cons.objective.lambda == 10.0);
  CHECK(cons.objective.lambda_schedule == "constant");
  CHECK(cons.objective.eta == 0.5);
  TrainConfig adv = load_train_config(dir + "fashion-mnist-smoothadv.toml");
  CHECK(adv.objective.name == "gaussian");
  CHECK(adv.attack.name == "pgd");
  CHECK(adv.attack.eps == 0.5);
  CHECK(adv.attack.steps == 2);
  CHECK(adv.attack.warmup_epochs == 2);
  TrainConfig mix = load_train_config(dir + "fashion-mnist-smoothmix.toml");
  CHECK(mix.objective.name == "smoothmix");
  CHECK(mix.attack.name == "smoothmix");
  CHECK(mix.attack.steps == 2);
  CHECK(mix.attack.alpha == 0.5);
  CHECK(mix.objective.eta == 5.0);
  CHECK(mix.attack.mix_step == 0);
  CHECK(mix.attack.warmup_epochs == 2);
}
