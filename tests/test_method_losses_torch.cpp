// The training methods' losses against PyTorch: the attack loss's seed, Consistency and SmoothMix,
// run through their ops on the CPU and compared with torch float64 autograd on the same logits.
// The references are made at test time by tests/golden/make_method_losses_fixtures.py.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "engine/safetensors.h"
#include "macer/objectives/attack_loss.h"
#include "macer/objectives/objectives.h"
#include "macer/objectives/smoothmix.h"

using namespace macer;
namespace fs = std::filesystem;

namespace {

// A Python with torch and numpy: Debian's first (a pyenv shim may shadow it).
const std::string& python() {
  static const std::string found = [] {
    for (const char* py : {"/usr/bin/python3", "python3"}) {
      std::string cmd = std::string(py) + " -c 'import torch, numpy' >/dev/null 2>&1";
      if (std::system(cmd.c_str()) == 0) return std::string(py);
    }
    return std::string();
  }();
  return found;
}

// The fixture file, made once per run into the build tree.
const SafetensorsFile& fixtures() {
  static const SafetensorsFile file = [] {
    const std::string dir = std::string(MACER_BINARY_DIR) + "/tests/method_losses_tmp";
    fs::remove_all(dir);
    fs::create_directories(dir);
    const std::string cmd =
        python() + " " + MACER_SOURCE_DIR + "/tests/golden/make_method_losses_fixtures.py --out " + dir + " 2>&1";
    std::string output;
    FILE* p = popen(cmd.c_str(), "r");
    REQUIRE(p);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) output.append(buf, n);
    const int status = pclose(p);
    INFO(output);
    REQUIRE(status == 0);
    return load_safetensors(dir + "/method_losses.safetensors");
  }();
  return file;
}

const Tensor& get(const std::string& name) {
  const Tensor* t = fixtures().find(name);
  if (!t) throw Error("fixture file lacks " + name);
  return *t;
}

std::vector<double> doubles(const Tensor& t) {
  std::vector<double> out(size_t(t.numel()));
  if (t.dtype() == DType::F64) {
    const double* p = t.data<double>();
    out.assign(p, p + t.numel());
  } else {
    const float* p = t.data();
    out.assign(p, p + t.numel());
  }
  return out;
}

// |got - want| <= rtol |want| + atol max|want| everywhere: float32 results of a double
// computation against torch's float64 on the same float32 logits.
void expect_close(const Tensor& got, const Tensor& want, const std::string& what, double rtol = 2e-5,
                  double atol = 2e-6) {
  std::vector<double> g = doubles(got), w = doubles(want);
  REQUIRE(g.size() == w.size());
  double scale = 0;
  for (double v : w) scale = std::max(scale, std::fabs(v));
  size_t bad = 0, worst = 0;
  double worst_excess = -1e300;
  for (size_t i = 0; i < g.size(); ++i) {
    const double excess = std::fabs(g[i] - w[i]) - (rtol * std::fabs(w[i]) + atol * scale);
    if (!(excess <= 0)) ++bad;
    if (!(excess <= worst_excess)) worst_excess = excess, worst = i;
  }
  INFO(what << ": " << bad << " of " << g.size() << " outside tolerance; worst at " << worst << ": got " << g[worst]
            << ", torch " << w[worst]);
  CHECK(bad == 0);
}

struct Case {
  std::string kind, name;
  int B, k, C;
  std::vector<double> hyper;
};

std::vector<Case> cases(const std::string& kind) {
  std::vector<Case> out;
  std::istringstream list(fixtures().metadata.at("cases"));
  for (std::string entry; std::getline(list, entry, ',');) {
    const size_t colon = entry.find(':');
    Case c{entry.substr(0, colon), entry.substr(colon + 1), 0, 0, 0, {}};
    if (c.kind != kind) continue;
    std::vector<double> dims = doubles(get(c.name + ".dims"));
    c.B = int(dims[0]), c.k = int(dims[1]), c.C = int(dims[2]);
    c.hyper = doubles(get(c.name + ".hyper"));
    out.push_back(c);
  }
  REQUIRE(!out.empty());
  return out;
}

}  // namespace

std::string macer_tests_skip_reason() {
  if (python().empty()) return "needs python3 with torch and numpy (Debian: scripts/setup.sh python3-torch)";
  return "";
}

TEST_CASE("the attack loss and its seed match torch autograd (clamp, underflow, k = 1, C = 1000)",
          "[attack_loss][torch]") {
  for (const Case& c : cases("attack")) {
    INFO("case " << c.name);
    AttackLossOutputs o = attack_loss(get(c.name + ".logits"), get(c.name + ".labels"), c.k, float(c.hyper[0]));
    expect_close(o.loss, get(c.name + ".loss"), "loss");
    expect_close(o.dlogits, get(c.name + ".dlogits"), "dlogits");
  }
}

TEST_CASE("Consistency matches torch autograd (pbar underflow, k = 1, eta = lambda, C = 1000)",
          "[consistency][torch]") {
  for (const Case& c : cases("consistency")) {
    INFO("case " << c.name);
    Var logits(get(c.name + ".logits").clone(), true);
    ConsistencyOutputs o = consistency_loss(logits, get(c.name + ".labels"), c.k, float(c.hyper[0]), float(c.hyper[1]));
    backward(o.loss);
    expect_close(o.loss.value(), get(c.name + ".loss"), "loss");
    expect_close(o.ce, get(c.name + ".ce"), "ce");
    expect_close(o.reg, get(c.name + ".reg"), "reg");
    expect_close(logits.grad(), get(c.name + ".dlogits"), "dlogits");
  }
}

TEST_CASE("SmoothMix matches torch autograd, both logit sets (lam 0 and 1/2, underflow, k = 1, C = 1000)",
          "[smoothmix][torch]") {
  for (const Case& c : cases("smoothmix")) {
    INFO("case " << c.name);
    Var clean(get(c.name + ".logits").clone(), true), mixed(get(c.name + ".mixed").clone(), true);
    SmoothMixOutputs o =
        smoothmix_loss(clean, mixed, get(c.name + ".labels"), get(c.name + ".lam"), c.k, float(c.hyper[0]));
    backward(o.loss);
    CHECK(doubles(o.correct) == doubles(get(c.name + ".correct")));
    expect_close(o.loss.value(), get(c.name + ".loss"), "loss");
    expect_close(o.ce, get(c.name + ".ce"), "ce");
    expect_close(o.mix, get(c.name + ".mix"), "mix");
    expect_close(clean.grad(), get(c.name + ".dclean"), "dclean");
    expect_close(mixed.grad(), get(c.name + ".dmixed"), "dmixed");
  }
}
