// End-to-end tests of scripts/convert_checkpoint.py with PyTorch (python3-torch, python3-scipy):
// MACER, Cohen and plain ResNet-20 checkpoints and torchvision's ResNet family give PyTorch's
// logits here, wrong layouts are refused, --to-pth round-trips, macer_certify runs on converted
// models and its --mat file reads back in scipy.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/mat5.h"
#include "engine/safetensors.h"
#include "layers/registry.h"
#include "layers/state.h"
#include "macer/certify/report.h"
#include "macer/certify/run_record.h"
#include "macer/checkpoint.h"
#include "macer/config.h"

using namespace macer;
namespace fs = std::filesystem;

namespace {

// A Python that has torch, numpy and scipy: Debian's first (a pyenv shim may shadow it).
const std::string& python() {
  static const std::string found = [] {
    for (const char* py : {"/usr/bin/python3", "python3"}) {
      std::string cmd = std::string(py) + " -c 'import torch, torchvision, numpy, scipy.io' >/dev/null 2>&1";
      if (std::system(cmd.c_str()) == 0) return std::string(py);
    }
    return std::string();
  }();
  return found;
}

struct Run {
  int status = -1;
  std::string output;  // stdout and stderr together
};

Run run(const std::string& cmd) {
  Run r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  REQUIRE(p);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::string src(const std::string& rel) { return std::string(MACER_SOURCE_DIR) + "/" + rel; }

// The fixtures of tests/golden/make_convert_fixtures.py, made once per run by one Python process
// (the ResNet-50 and family files, 45 to 233 MB each, are removed by the tests that use them).
const std::string& fixtures() {
  static const std::string dir = [] {
    std::string d = std::string(MACER_BINARY_DIR) + "/tests/convert_tmp";
    fs::remove_all(d);
    fs::create_directories(d);
    Run r = run(python() + " " + src("tests/golden/make_convert_fixtures.py") + " --out " + d + " --resnet50 --family");
    INFO(r.output);
    REQUIRE(r.status == 0);
    return d;
  }();
  return dir;
}

// The soft-certification beta a checkpoint records, as macer_certify resolves it: a trained
// one's stored config (objective.beta of a MACER run), else the metadata's 'beta' (0: none).
double training_beta(const CheckpointInfo& info) {
  if (info.config.empty()) return info.beta;
  TrainConfig c = parse_stored_train_config(info.config, "stored config");
  return c.objective.name == "macer" ? c.objective.beta : 0.0;
}

Run convert(const std::string& in, const std::string& out, const std::string& extra = "") {
  return run(python() + " " + src("scripts/convert_checkpoint.py") + " " + in + " " + out + " " + extra);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Eval-mode logits of a converted checkpoint, built the way macer_certify builds it.
Tensor logits_of(const std::string& path, const Tensor& x, CheckpointInfo& info) {
  info = read_checkpoint_info(path);
  layers::ModelOptions mopt;
  mopt.channels = info.channels, mopt.height = info.height, mopt.width = info.width;
  mopt.classes = info.classes, mopt.normalize = info.normalize;
  auto model = layers::make_model(info.model, mopt);
  load_checkpoint(path, *model, nullptr);
  model->eval();
  NoGradGuard no_grad;
  return model->forward(Var(x)).value();
}

}  // namespace

std::string macer_tests_skip_reason() {
  if (python().empty())
    return "needs python3 with torch, torchvision, numpy and scipy (Debian: scripts/setup.sh python3-torch "
           "python3-torchvision python3-scipy)";
  return "";
}

TEST_CASE("MACER, Cohen and plain ResNet-20 checkpoints convert and give PyTorch's logits", "[convert]") {
  const std::string dir = fixtures();
  SafetensorsFile expected = load_safetensors(dir + "/expected.safetensors");
  const Tensor& x = *expected.find("input");
  struct Layout {
    std::string file;
    bool cohen;
  };
  for (const Layout& l : {Layout{"macer", false}, Layout{"macer_module", false}, Layout{"plain", false},
                          Layout{"cohen", true}, Layout{"cohen_module", true}}) {
    INFO(l.file);
    const std::string out = dir + "/" + l.file + ".safetensors";
    Run r = convert(dir + "/" + l.file + ".pth", out, "--sigma 0.25");
    INFO(r.output);
    REQUIRE(r.status == 0);
    CheckpointInfo info;
    Tensor got = logits_of(out, x, info);
    CHECK(info.model == "resnet20");
    CHECK(info.dataset == "cifar10");
    CHECK(info.sigma == 0.25);
    CHECK(info.epoch == (l.cohen ? 90 : l.file == "plain" ? 0 : 440));
    CHECK(info.normalize.enabled() == l.cohen);
    if (l.cohen) CHECK(info.normalize.mean == layers::normalization_preset("cifar10").mean);
    // fp32 against PyTorch's float64 on the same float32 numbers: |a - e| <= 2e-5 (1 + |e|), as
    // in tests/test_golden.cpp (measured here: about 5e-7).
    const Tensor& want = *expected.find(l.cohen ? "logits_cohen" : "logits_plain");
    const Tensor& other = *expected.find(l.cohen ? "logits_plain" : "logits_cohen");
    REQUIRE(got.numel() == want.numel());
    double worst = 0, other_worst = 0;
    for (int64_t i = 0; i < got.numel(); ++i) {
      const double e = want.data<double>()[i], o = other.data<double>()[i];
      worst = std::max(worst, std::abs(got.data()[i] - e) / (1 + std::abs(e)));
      other_worst = std::max(other_worst, std::abs(got.data()[i] - o) / (1 + std::abs(o)));
    }
    INFO("worst scaled error " << worst << "; against the other layout's logits " << other_worst);
    CHECK(worst <= 2e-5);
    CHECK(other_worst > 1e-2);  // the normalization matters: dropping or adding it would fail

    // macer_certify runs on it (sigma from the metadata; the synthetic set has its shape).
    // MACER's layout records MACER's soft beta, 16 (main.py's default); the others none.
    const bool macer = l.file.rfind("macer", 0) == 0;
    CHECK(info.beta == (macer ? 16.0 : 0.0));
    Run c = run(std::string(MACER_BINARY_DIR) + "/bin/macer_certify --checkpoint " + out +
                " --dataset synthetic --other-data --device cpu --count 2 --n0 10 --n 50 --batch 50 --mode both");
    INFO(c.output);
    CHECK(c.status == 0);
    CHECK(c.output.find("sigma 0.25") != std::string::npos);
    CHECK(c.output.find(macer ? "beta 16," : "beta 1,") != std::string::npos);  // the default is the recorded one
    // The same file read as another layout, or as another model, is refused (MACER's layout as
    // Cohen's and as resnet56: in the refusals test below).
    if (l.cohen) {
      Run w = convert(dir + "/" + l.file + ".pth", dir + "/wrong.safetensors", "--format macer");
      CHECK(w.status != 0);
      CHECK(w.output.find("error: ") == 0);
    }
    if (l.file == "plain") {
      Run m = convert(dir + "/" + l.file + ".pth", dir + "/wrong.safetensors", "--model resnet32");
      CHECK(m.status != 0);
      CHECK(m.output.find("does not match resnet32") != std::string::npos);
    }
    CHECK_FALSE(fs::exists(dir + "/wrong.safetensors"));
  }
}

TEST_CASE("normalization a Cohen layout cannot tell: said when assumed; mean-only, [-1, 1] and custom values",
          "[convert]") {
  const std::string dir = fixtures();
  SafetensorsFile expected = load_safetensors(dir + "/expected.safetensors");
  const Tensor& x = *expected.find("input");
  auto worst_error = [&](const Tensor& got, const std::string& key) {
    const Tensor& want = *expected.find(key);
    REQUIRE(got.numel() == want.numel());
    double worst = 0;
    for (int64_t i = 0; i < got.numel(); ++i) {
      const double e = want.data<double>()[i];
      worst = std::max(worst, std::abs(got.data()[i] - e) / (1 + std::abs(e)));
    }
    return worst;
  };
  // Assumed: one note naming what is assumed and the alternative.
  Run a = convert(dir + "/cohen.pth", dir + "/assumed.safetensors");
  INFO(a.output);
  REQUIRE(a.status == 0);
  CHECK(a.output.find("note: ") != std::string::npos);
  CHECK(a.output.find("assuming Cohen's cifar10 mean and std") != std::string::npos);
  CHECK(a.output.find("--normalize cifar10-mean") != std::string::npos);
  // Said explicitly: no note.
  Run e = convert(dir + "/cohen.pth", dir + "/explicit.safetensors", "--normalize cifar10");
  CHECK(e.status == 0);
  CHECK(e.output.find("note: ") == std::string::npos);
  struct Case {
    std::string flags, logits;
    std::vector<float> mean, std;
  };
  const std::vector<float> m = layers::normalization_preset("cifar10").mean;
  for (const Case& c : {Case{"--normalize cifar10-mean", "logits_mean_only", m, {1, 1, 1}},
                        Case{"--normalize-mean 0.4914,0.4822,0.4465", "logits_mean_only", m, {1, 1, 1}},
                        Case{"--normalize half", "logits_half", {0.5f, 0.5f, 0.5f}, {0.5f, 0.5f, 0.5f}},
                        Case{"--normalize-mean 0.5,0.5,0.5 --normalize-std 0.5,0.5,0.5", "logits_half",
                             {0.5f, 0.5f, 0.5f}, {0.5f, 0.5f, 0.5f}}}) {
    INFO(c.flags);
    const std::string out = dir + "/norm.safetensors";
    Run r = convert(dir + "/cohen.pth", out, c.flags + " --overwrite");  // one output, replaced each time
    INFO(r.output);
    REQUIRE(r.status == 0);
    CheckpointInfo info;
    Tensor got = logits_of(out, x, info);
    CHECK(info.normalize.mean == c.mean);
    CHECK(info.normalize.std == c.std);
    CHECK(worst_error(got, c.logits) <= 2e-5);
    CHECK(worst_error(got, "logits_cohen") > 1e-2);  // the assumed normalization would be wrong here
  }
  // The engine's presets hold the same numbers (training configs, macer_certify --normalize).
  CHECK(layers::normalization_preset("cifar10-mean").std == std::vector<float>{1, 1, 1});
  CHECK(layers::normalization_preset("imagenet-mean").mean == layers::normalization_preset("imagenet").mean);
  // Bad values: one error line each, no file.
  for (const std::string bad : {"--normalize-mean 0.5,x,0.5", "--normalize-std 0.5,0.5,0.5",
                                "--normalize-mean 0.5,0.5 --normalize-std 1,1", "--normalize-mean 0.5,0.5,0.5 --normalize-std 1,0,1",
                                "--normalize cifar10 --normalize-mean 0.5,0.5,0.5"}) {
    INFO(bad);
    Run r = convert(dir + "/cohen.pth", dir + "/bad_norm.safetensors", bad);
    CHECK(r.status != 0);
    CHECK(r.output.find("error: ") != std::string::npos);
    CHECK_FALSE(fs::exists(dir + "/bad_norm.safetensors"));
  }
}

TEST_CASE("MACER's MNIST LeNet converts (model and data set read from the keys)", "[convert]") {
  const std::string dir = fixtures();
  SafetensorsFile expected = load_safetensors(dir + "/expected_lenet.safetensors");
  Run r = convert(dir + "/macer_lenet.pth", dir + "/macer_lenet.safetensors");
  INFO(r.output);
  REQUIRE(r.status == 0);
  CheckpointInfo info;
  Tensor got = logits_of(dir + "/macer_lenet.safetensors", *expected.find("input"), info);
  CHECK(info.model == "lenet");
  CHECK(info.dataset == "mnist");
  CHECK((info.channels == 1 && info.height == 28 && info.width == 28 && info.classes == 10));
  // No --sigma: none is recorded (not a made-up 0), the summary says so, and macer_certify asks for it.
  CHECK_FALSE(info.sigma_recorded);
  CHECK(r.output.find("no sigma recorded (pass --sigma here or to macer_certify)") != std::string::npos);
  CHECK_FALSE(info.normalize.enabled());
  Run c = run(std::string(MACER_BINARY_DIR) + "/bin/macer_certify --checkpoint " + dir +
              "/macer_lenet.safetensors --dataset synthetic --other-data --device cpu --count 1");
  CHECK(c.status != 0);
  CHECK(c.output.find("error: --sigma is required: " + dir + "/macer_lenet.safetensors records no sigma") !=
        std::string::npos);
  CHECK(c.output.find("trained at sigma 0") == std::string::npos);
  // An output that exists is refused without --overwrite (as both programs refuse), and kept.
  const auto before = fs::last_write_time(dir + "/macer_lenet.safetensors");
  Run again = convert(dir + "/macer_lenet.pth", dir + "/macer_lenet.safetensors", "--sigma 0.5");
  CHECK(again.status != 0);
  CHECK(again.output == "error: " + dir + "/macer_lenet.safetensors exists; replace it with --overwrite, or choose "
                        "another output\n");
  CHECK(fs::last_write_time(dir + "/macer_lenet.safetensors") == before);
  Run replaced = convert(dir + "/macer_lenet.pth", dir + "/macer_lenet.safetensors", "--sigma 0.5 --overwrite");
  INFO(replaced.output);
  CHECK(replaced.status == 0);
  CHECK(read_checkpoint_info(dir + "/macer_lenet.safetensors").sigma == 0.5);
  // --sigma 0 given explicitly is a recorded 0 (trained without noise).
  Run z = convert(dir + "/macer_lenet.pth", dir + "/macer_lenet0.safetensors", "--sigma 0");
  INFO(z.output);
  REQUIRE(z.status == 0);
  CheckpointInfo zero = read_checkpoint_info(dir + "/macer_lenet0.safetensors");
  CHECK(zero.sigma_recorded);
  CHECK(zero.sigma == 0.0);
  CHECK(z.output.find("no sigma recorded") == std::string::npos);
  const Tensor& want = *expected.find("logits");
  REQUIRE(got.numel() == want.numel());
  for (int64_t i = 0; i < got.numel(); ++i)
    CHECK(std::abs(got.data()[i] - want.data<double>()[i]) <= 2e-5 * (1 + std::abs(want.data<double>()[i])));
}

TEST_CASE("Cohen's ImageNet ResNet-50 converts at 224x224 with ImageNet normalization and 1000 class names",
          "[convert][resnet50]") {
  const std::string dir = fixtures();
  SafetensorsFile expected = load_safetensors(dir + "/expected_resnet50.safetensors");
  const Tensor& want = *expected.find("logits");
  // ImageNet's class list (torchvision's sorted folder names), here made-up ids in that form.
  const std::string classes_txt = dir + "/classes.txt";
  {
    std::ofstream f(classes_txt);
    for (int k = 0; k < 1000; ++k) f << "n" << std::setw(8) << std::setfill('0') << 1440764 + k << "\n";
  }
  // (torchvision's plain layout of the same network: the family test below, at 64x64.)
  for (std::string file : {"cohen_resnet50"}) {
    INFO(file);
    const std::string out = dir + "/" + file + ".safetensors";
    Run r = convert(dir + "/" + file + ".pth", out, "--class-names " + classes_txt);
    INFO(r.output);
    REQUIRE(r.status == 0);
    CheckpointInfo info;
    Tensor got = logits_of(out, *expected.find("input"), info);
    CHECK(info.model == "resnet50");
    CHECK(info.dataset == "imagefolder");
    CHECK((info.channels == 3 && info.height == 224 && info.width == 224 && info.classes == 1000));
    CHECK(info.normalize.std == layers::normalization_preset("imagenet").std);
    const std::string names = load_safetensors(out).metadata.at("class_names");
    CHECK(names.rfind("[\"n01440764\", \"n01440765\",", 0) == 0);
    CHECK(nlohmann::json::parse(names).size() == 1000);
    REQUIRE(got.numel() == want.numel());
    double worst = 0;
    for (int64_t i = 0; i < got.numel(); ++i) {
      const double e = want.data<double>()[i];
      worst = std::max(worst, std::abs(got.data()[i] - e) / (1 + std::abs(e)));
    }
    INFO("worst scaled error " << worst);
    CHECK(worst <= 2e-5);
    fs::remove(dir + "/" + file + ".pth");
    fs::remove(out);
  }
}

TEST_CASE("torchvision's ResNet family converts at --input-size 64, gives PyTorch's logits, and --to-pth "
          "round-trips", "[convert][family]") {
  const std::string dir = fixtures();
  SafetensorsFile expected = load_safetensors(dir + "/expected_family.safetensors");
  const Tensor& x = *expected.find("input");  // (2, 3, 64, 64)
  // One Python process checks every exported .pth (tests/golden/check_pth_roundtrip.py).
  std::string roundtrips;
  auto to_pth = [&](const std::string& arch, const std::string& original, const std::string& st) {
    const std::string back = st + ".pth";
    Run e = run(python() + " " + src("scripts/convert_checkpoint.py") + " --to-pth " + st + " " + back);
    INFO(e.output);
    REQUIRE(e.status == 0);
    CHECK(e.output.find("strict=True") != std::string::npos);
    // A training checkpoint's momentum is left out, and said.
    CHECK((e.output.find("of the optimizer's momentum left out") != std::string::npos) ==
          (st.find("/trained/") != std::string::npos));
    roundtrips += " " + arch + ":" + original + ":" + back;
    // The .pth forgets the metadata, and the export says how to bring it back: that command gives
    // the checkpoint's model, input, sigma, beta and normalization again (the data set too, but
    // for the engine's synthetic one, which the converter does not know).
    const std::string lead = "To convert it back with them: ";
    const size_t at = e.output.find(lead);
    REQUIRE(at != std::string::npos);
    std::string command = e.output.substr(at + lead.size());
    command = command.substr(0, command.find('\n'));
    REQUIRE(command.rfind("scripts/convert_checkpoint.py ", 0) == 0);
    const std::string again = st + ".back.safetensors";
    command.replace(command.find("BACK.safetensors"), 16, again);
    Run b = run(python() + " " + src(command));
    INFO(b.output);
    REQUIRE(b.status == 0);
    CheckpointInfo was = read_checkpoint_info(st), now = read_checkpoint_info(again);
    CHECK(now.model == was.model);
    CHECK((now.channels == was.channels && now.height == was.height && now.width == was.width &&
           now.classes == was.classes));
    CHECK(now.sigma == was.sigma);
    CHECK(now.sigma_recorded == was.sigma_recorded);
    CHECK(training_beta(now) == training_beta(was));
    CHECK(now.normalize.mean == was.normalize.mean);
    CHECK(now.normalize.std == was.normalize.std);
    CHECK(now.class_names == was.class_names);
    if (was.dataset != "synthetic") CHECK(now.dataset == was.dataset);
    fs::remove(again);
  };
  for (int depth : {18, 34, 50, 101, 152}) {
    const std::string name = "resnet" + std::to_string(depth);
    INFO(name);
    const std::string in = dir + "/tv_family_" + name + ".pth", out = dir + "/tv_family_" + name + ".safetensors";
    // One vocabulary: imagefolder, with imagenet its alias (and the default for these models).
    const std::string dataset = depth == 18 ? " --dataset imagenet" : depth == 34 ? " --dataset imagefolder" : "";
    Run r = convert(in, out, "--input-size 64 --class-names none" + dataset);
    INFO(r.output);
    REQUIRE(r.status == 0);
    CheckpointInfo info;
    Tensor got = logits_of(out, x, info);
    CHECK(info.model == name);
    CHECK(info.dataset == "imagefolder");
    CHECK((info.channels == 3 && info.height == 64 && info.width == 64 && info.classes == 10));
    CHECK(info.normalize.std == layers::normalization_preset("imagenet").std);  // torchvision's inputs
    CHECK(info.beta == 0.0);  // a plain state_dict: no MACER beta
    const Tensor& want = *expected.find("logits_" + name);
    REQUIRE(got.numel() == want.numel());
    double worst = 0;
    for (int64_t i = 0; i < got.numel(); ++i) {
      const double e = want.data<double>()[i];
      worst = std::max(worst, std::abs(got.data()[i] - e) / (1 + std::abs(e)));
    }
    INFO("worst scaled error " << worst);
    CHECK(worst <= 2e-5);
    if (depth == 18) {
      // Named for what it is, not "does not match resnet14": the wrong --model says the right one.
      Run m = convert(in, dir + "/wrong.safetensors", "--model resnet20 --class-names none");
      CHECK(m.status != 0);
      CHECK(m.output.find("its keys are those of resnet18: pass --model resnet18") != std::string::npos);
      CHECK_FALSE(fs::exists(dir + "/wrong.safetensors"));
      to_pth(name, in, out);  // and goes back to PyTorch (as does a Cifar ResNet below)
    } else {
      fs::remove(in);
      fs::remove(out);
    }
  }
  // macer_certify reads the recorded input size: the folder's 80x72 images are resized and cropped
  // to 64x64 (its --image-size default, 224, gives way), and --dataset imagenet is imagefolder.
  const std::string folder = dir + "/folder";
  for (int k = 0; k < 10; ++k) {
    fs::create_directories(folder + "/val/c" + std::to_string(k));
    std::ofstream f(folder + "/val/c" + std::to_string(k) + "/0.ppm", std::ios::binary);
    f << "P6\n80 72\n255\n";
    for (int i = 0; i < 80 * 72 * 3; ++i) f.put(char((i * 7 + k * 31) % 251));
  }
  const std::string tsv = dir + "/family.tsv";
  Run c = run(std::string(MACER_BINARY_DIR) + "/bin/macer_certify --checkpoint " + dir +
              "/tv_family_resnet18.safetensors --dataset imagenet --data-dir " + folder +
              " --sigma 0.25 --device cpu --count 2 --n0 10 --n 20 --batch 20 --output " + tsv);
  INFO(c.output);
  REQUIRE(c.status == 0);
  auto record = read_run_record(tsv);
  CHECK(record["input"] == "3x64x64");
  CHECK(record["dataset"] == "imagefolder");
  CHECK(record["model"] == "resnet18");
  CHECK(read_tsv(tsv).rows.size() == 2);

  // And a Cifar ResNet-20 that macer_train made with MACER's objective at beta 8 (momentum left
  // out; beta lives in its stored config, not in a 'beta' key, and the command back carries it):
  // PyTorch's logits of the export are this engine's of the checkpoint (one epoch on 64 synthetic
  // images).
  {
    std::ofstream f(dir + "/tiny.toml");
    f << "[data]\ndataset = \"synthetic\"\nsynthetic_size = 64\n[model]\nname = \"resnet20\"\n"
         "[objective]\nname = \"macer\"\nsigma = 0.25\nk = 2\nbeta = 8\n[optim]\nepochs = 1\nbatch = 32\nmilestones = []\n"
         "[run]\ndevice = \"cpu\"\ntest_every = 0\ncheckpoint_dir = \""
      << dir << "/trained\"\n";
  }
  fs::remove_all(dir + "/trained");
  Run t = run(std::string(MACER_BINARY_DIR) + "/bin/macer_train " + dir + "/tiny.toml");
  INFO(t.output);
  REQUIRE(t.status == 0);
  const std::string trained = dir + "/trained/checkpoint.safetensors";
  {
    CheckpointInfo info;
    SafetensorsFile cifar = load_safetensors(dir + "/expected.safetensors");
    const Tensor& x32 = *cifar.find("input");  // (4, 3, 32, 32)
    save_safetensors(dir + "/trained_logits.safetensors", {{"input", x32}, {"logits", logits_of(trained, x32, info)}},
                     {});
  }
  REQUIRE(training_beta(read_checkpoint_info(trained)) == 8.0);
  const size_t before = roundtrips.size();
  to_pth("resnet20", dir + "/trained_logits.safetensors", trained);
  CHECK(roundtrips.size() > before);
  Run check = run(python() + " " + src("tests/golden/check_pth_roundtrip.py") + roundtrips);
  INFO(check.output);
  CHECK(check.status == 0);
  CHECK(lines_of(check.output) ==
        std::vector<std::string>{"ok resnet18", "ok resnet20 (this engine's logits)"});
  for (const char* ext : {".pth", ".safetensors", ".safetensors.pth"}) fs::remove(dir + "/tv_family_resnet18" + ext);
}

TEST_CASE("the converter refuses wrong layouts with one error line naming the keys", "[convert]") {
  const std::string dir = fixtures();
  struct Bad {
    std::string in, extra, message;
  };
  const std::vector<Bad> cases = {
      {"bad_toplevel.pth", "", "unknown layout"},
      {"bad_toplevel.pth", "", "top-level keys: model"},
      {"bad_key.pth", "", "unexpected keys: layer2.1.convA.weight"},
      {"bad_key.pth", "", "missing: layer2.1.conv1.weight"},
      {"bad_shape.pth", "", "fc.weight (64, 10) (model: (10, 64))"},
      {"bad_cohen.pth", "", "unexpected keys: 0.means"},
      {"macer.pth", "--format cohen", "looks like the macer layout, not cohen"},
      {"macer.pth", "--model resnet56", "does not match resnet56"},
      {"no_such_file.pth", "", "no_such_file.pth: no such file"},
      {"expected.safetensors", "", "cannot read it as a PyTorch checkpoint"},
      {"expected.safetensors", "", "it is a safetensors file: to export one of ours to PyTorch use --to-pth IN OUT"},
      {"macer.pth", "--dataset imagenet", "image-folder (ImageNet) models need --class-names FILE"},
      {"bad_family.pth", "", "BasicBlocks, 3-4-6-2 per stage in layer1-4 is none of the supported models: lenet"},
      {"macer.pth", "--input-size 64", "--input-size is for image folders (--dataset imagefolder)"},
      {"macer.pth", "--beta 0", "--beta must be a finite number > 0"},
      {"macer.pth", "--input-size 8", "--input-size 8 is out of range"},
      {"names_resnet18.pth", "--input-size 48", "resnet18 needs an input size divisible by 32, got 48"},
      {"macer.pth", "--no-such-flag", "unrecognized arguments: --no-such-flag"},
      {"macer.pth", "--to-pth", "macer.pth is a PyTorch file; --to-pth reads this engine's .safetensors"},
      {"expected.safetensors", "--to-pth", "not a checkpoint of this engine"},
      {"expected.safetensors", "--to-pth --sigma 0.25", "--to-pth takes only IN.safetensors OUT.pth"},
      {"macer.pth", "--class-names " + dir + "/three_classes.txt", "3 class names, but the model has 10 classes"},
      {"macer.pth", "--class-names " + dir + "/no_such_list.txt", "no_such_list.txt: cannot read it"},
  };
  {
    std::ofstream f(dir + "/three_classes.txt");
    f << "cat\ndog\nbird\n";
  }
  for (const Bad& b : cases) {
    INFO(b.in << " " << b.extra);
    const std::string out = dir + "/refused.safetensors";
    Run r = convert(dir + "/" + b.in, out, b.extra);
    INFO(r.output);
    CHECK(r.status != 0);
    auto lines = lines_of(r.output);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].rfind("error: ", 0) == 0);
    CHECK(lines[0].find(b.message) != std::string::npos);
    CHECK_FALSE(fs::exists(out));
    CHECK_FALSE(fs::exists(out + ".tmp"));
  }
}

TEST_CASE("the converter's tensor list is the one layers/models.cpp builds", "[convert]") {
  struct Case {
    std::string model;
    int c, h, w, k;
  };
  for (const Case& cs : {Case{"lenet", 1, 28, 28, 10}, Case{"resnet20", 3, 32, 32, 10},
                         Case{"resnet110", 3, 32, 32, 10}, Case{"cifar_resnet50", 3, 32, 32, 10},
                         Case{"resnet18", 3, 64, 64, 10}, Case{"resnet50", 3, 224, 224, 1000}}) {
    // (resnet34, resnet101 and resnet152: the family test loads their conversions into the model)
    INFO(cs.model);
    Run r = run(python() + " " + src("scripts/convert_checkpoint.py") + " --list " + cs.model + " --list-input " +
                std::to_string(cs.c) + "," + std::to_string(cs.h) + "," + std::to_string(cs.w) + "," +
                std::to_string(cs.k));
    REQUIRE(r.status == 0);
    layers::ModelOptions mopt;
    mopt.channels = cs.c, mopt.height = cs.h, mopt.width = cs.w, mopt.classes = cs.k;
    auto model = layers::make_model(cs.model, mopt);
    std::vector<std::string> want;
    for (auto& [name, t] : layers::state_dict(*model)) {
      std::string dims;
      for (int64_t d : t.shape()) dims += (dims.empty() ? "" : ",") + std::to_string(d);
      want.push_back(name + " " + dims);
    }
    CHECK(lines_of(r.output) == want);
  }
}

TEST_CASE("macer_certify runs on a converted Cohen checkpoint; --mat reads back in scipy", "[convert][mat]") {
  const std::string dir = fixtures();
  const std::string ckpt = dir + "/cohen_mat.safetensors";
  REQUIRE(convert(dir + "/cohen.pth", ckpt, "--sigma 0.25").status == 0);
  const std::string certify = std::string(MACER_BINARY_DIR) + "/bin/macer_certify --checkpoint " + ckpt +
                              " --dataset synthetic --other-data --device cpu --count 6 --n0 20 --n 200 --batch 100";
  for (std::string mode : {"both", "hard", "soft"}) {
    INFO("--mode " << mode);
    const std::string tsv = dir + "/r_" + mode + ".tsv", mat = dir + "/r_" + mode + ".mat";
    Run r = run(certify + " --mode " + mode + " --output " + tsv + " --mat " + mat);
    INFO(r.output);
    REQUIRE(r.status == 0);
    TsvFile rows = read_tsv(tsv);
    REQUIRE(rows.rows.size() == 6);
    // Our own reader: the exact doubles, against the TSV's rounded radii ("{:.3}").
    auto vars = data::mat5::read_file(mat);
    std::vector<std::string> names;
    for (auto& v : vars) names.push_back(v.name);
    CHECK(names == (mode == "both" ? std::vector<std::string>{"hard", "soft"} : std::vector<std::string>{mode}));
    for (auto& v : vars) {
      CHECK(v.dims == std::vector<int64_t>{1, 6});
      std::vector<double> values = v.to_f64();
      for (size_t i = 0; i < 6; ++i) {
        const CertifyRow& row = rows.rows[i];
        const bool soft_col = mode == "both" && v.name == "soft";
        const bool correct = soft_col ? row.soft_correct : row.correct;
        const double radius = soft_col ? row.soft_radius : row.radius;
        if (correct)
          CHECK(values[i] == Approx(radius).epsilon(5e-3).margin(1e-3));
        else
          CHECK(values[i] == -1.0);
      }
    }
    // scipy.io.loadmat, as MACER's users read the file: names, 1 x N, float64, same values.
    Run py = run(python() +
                 " -c \"import sys, scipy.io; m = scipy.io.loadmat(sys.argv[1]); "
                 "[print(k, m[k].shape[0], m[k].shape[1], m[k].dtype, *[repr(float(x)) for x in m[k].ravel()]) "
                 "for k in sorted(m) if not k.startswith('__')]\" " +
                 mat);
    INFO(py.output);
    REQUIRE(py.status == 0);
    auto lines = lines_of(py.output);
    REQUIRE(lines.size() == vars.size());
    for (size_t j = 0; j < lines.size(); ++j) {
      std::istringstream in(lines[j]);
      std::string name, dtype;
      int64_t rows_n = 0, cols = 0;
      in >> name >> rows_n >> cols >> dtype;
      const data::mat5::Array* v = nullptr;
      for (auto& a : vars)
        if (a.name == name) v = &a;
      REQUIRE(v);
      CHECK(rows_n == 1);
      CHECK(cols == 6);
      CHECK(dtype == "float64");
      std::vector<double> got;
      for (double d; in >> d;) got.push_back(d);
      CHECK(got == v->to_f64());
    }
  }
  // --model with --normalize builds the same model from the bare weights: the same rows.
  Run by_model = run(std::string(MACER_BINARY_DIR) + "/bin/macer_certify --checkpoint " + ckpt +
                     " --model resnet20 --normalize cifar10 --dataset synthetic --other-data --sigma 0.25 --device cpu --count 6"
                     " --n0 20 --n 200 --batch 100 --output " + dir + "/r_model.tsv");
  INFO(by_model.output);
  REQUIRE(by_model.status == 0);
  TsvFile a = read_tsv(dir + "/r_hard.tsv"), b = read_tsv(dir + "/r_model.tsv");
  REQUIRE(a.rows.size() == b.rows.size());
  for (size_t i = 0; i < a.rows.size(); ++i) {
    CHECK(a.rows[i].predict == b.rows[i].predict);
    CHECK(a.rows[i].radius == b.rows[i].radius);
  }
  Run predict = run(certify + " --predict --mat " + dir + "/p.mat");
  CHECK(predict.status != 0);
  CHECK(predict.output.find("error: --mat holds certified radii") != std::string::npos);
  CHECK_FALSE(fs::exists(dir + "/p.mat"));
}
