// Golden tests: LeNet and ResNet-20 (layers/) against PyTorch float64 dumps in tests/golden/
// (written by tests/golden/make_model_golden.py): logits, loss, BN running stats, gradients.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <sstream>

#include "kernels/conv2d.h"
#include "layers/registry.h"
#include "layers/state.h"

using namespace macer;

namespace {

// fp32 against a float64 reference: generous for rounding, far below what a wrong term gives
// (a biased variance in the running stats is a 0.4% error, a dropped gradient term is ~1).
// The CPU engine's worst errors sit 10-40x inside these (MACER_GOLDEN_REPORT=1 shows them).
constexpr double kLogitTol = 2e-5;     // |a - e| <= tol * (1 + |e|)
constexpr double kLossTol = 2e-6;      // relative
constexpr double kRunningTol = 4e-6;   // |a - e| <= tol * (1 + |e|)
constexpr double kGradTol = 1e-4;      // elements: tol * (|e| + rms); norm, sum, projections: tol * ||g||

std::string golden_path(const std::string& file) {
  return std::string(MACER_SOURCE_DIR) + "/tests/golden/" + file;
}

// The fixture script's counter-based generator (splitmix64 of key * 2^32 + i): u in [0, 1).
double fixture_uniform(uint64_t key, uint64_t i) {
  uint64_t z = (key << 32) + i;
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<double>(z >> 40) / static_cast<double>(1u << 24);
}

// A golden tensor; a missing one fails the test by name.
const Tensor& golden_tensor(const SafetensorsFile& f, const std::string& name) {
  const Tensor* t = f.find(name);
  if (!t) throw Error("golden file lacks tensor '" + name + "' (regenerate with make_model_golden.py)");
  return *t;
}

// A golden tensor (F32 or F64) as doubles.
std::vector<double> golden_values(const SafetensorsFile& f, const std::string& name) {
  const Tensor* t = &golden_tensor(f, name);
  std::vector<double> out(static_cast<size_t>(t->numel()));
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = t->dtype() == DType::F64 ? t->data<double>()[i] : t->data<float>()[i];
  return out;
}

// The worst element of one comparison, as a ratio of its error to the error allowed there.
struct Comparison {
  explicit Comparison(std::string w) : what(std::move(w)) {}
  std::string what;
  double worst_ratio = 0.0;
  std::string worst;
  bool ok() const { return worst_ratio <= 1.0; }
  std::string describe() const { return what + (ok() ? ": ok, " : ": MISMATCH, ") + worst; }

  void consider(const std::string& where, double actual, double expected, double allowed) {
    double ratio = std::abs(actual - expected) / allowed;
    if (std::isnan(ratio)) ratio = std::numeric_limits<double>::infinity();
    if (ratio < worst_ratio || (ratio == worst_ratio && !worst.empty())) return;
    worst_ratio = ratio;
    std::ostringstream os;
    os.precision(9);
    os << "worst " << where << ": got " << actual << ", expected " << expected << ", allowed error "
       << allowed << " (ratio " << ratio << ")";
    worst = os.str();
  }
};

Comparison compare_elements(const std::string& what, const std::vector<float>& actual,
                            const std::vector<double>& expected, double tol) {
  Comparison c(what);
  if (actual.size() != expected.size()) {
    c.worst_ratio = std::numeric_limits<double>::infinity();
    c.worst = std::to_string(actual.size()) + " values, expected " + std::to_string(expected.size());
    return c;
  }
  for (size_t i = 0; i < actual.size(); ++i)
    c.consider("element " + std::to_string(i), actual[i], expected[i], tol * (1.0 + std::abs(expected[i])));
  return c;
}

// One parameter's gradient against its records (see the fixture script's docstring).
Comparison compare_gradient(const std::string& name, const std::vector<float>& g, const SafetensorsFile& f) {
  Comparison c("gradient of " + name);
  std::vector<double> stats = golden_values(f, "grad_stats." + name);  // norm, sum, 4 projections
  const size_t n = g.size();
  const double norm = stats.at(0);
  const double rms = norm / std::sqrt(static_cast<double>(std::max<size_t>(n, 1)));
  const double floor = 1e-12;
  double sq = 0, sum = 0, proj[4] = {0, 0, 0, 0};
  for (size_t i = 0; i < n; ++i) {
    sq += double(g[i]) * g[i];
    sum += g[i];
    for (int j = 0; j < 4; ++j) proj[j] += g[i] * (2.0 * fixture_uniform(uint64_t(j + 1), i) - 1.0);
  }
  c.consider("L2 norm", std::sqrt(sq), norm, kGradTol * norm + floor);
  c.consider("sum", sum, stats.at(1), kGradTol * norm + floor);
  for (int j = 0; j < 4; ++j)
    c.consider("projection " + std::to_string(j + 1), proj[j], stats.at(2 + j), kGradTol * norm + floor);
  if (f.find("grad." + name)) {
    std::vector<double> full = golden_values(f, "grad." + name);
    if (full.size() != n) {
      c.consider("size", double(n), double(full.size()), 0.5);
      return c;
    }
    for (size_t i = 0; i < n; ++i)
      c.consider("element " + std::to_string(i), g[i], full[i], kGradTol * (std::abs(full[i]) + rms) + floor);
  } else {
    std::vector<double> sample = golden_values(f, "grad_sample." + name);
    for (size_t k = 0; k < sample.size(); ++k) {
      size_t i = k * n / sample.size();
      if (i >= n) break;
      c.consider("element " + std::to_string(i), g[i], sample[k], kGradTol * (std::abs(sample[k]) + rms) + floor);
    }
  }
  return c;
}

// Runs the CPU convolutions on the reference (cpu::ref) for the life of the guard. The golden
// steps check the model against float64 on the oracle path: there, one rounding-level change in a
// pre-activation near zero flips a ReLU and moves single gradient elements by far more than
// kGradTol (the fast path, whose sums run in another order, does that on ResNet-20's batch of 4).
// test_conv checks the fast path against this reference op by op.
struct ReferenceConvolutions {
  bool was = kernels::cpu::conv2d_using_reference();
  ReferenceConvolutions() { kernels::cpu::conv2d_use_reference(true); }
  ~ReferenceConvolutions() { kernels::cpu::conv2d_use_reference(was); }
};

// One training-mode step as the fixture script takes it, compared item by item.
std::vector<Comparison> golden_step(layers::Module& model, const SafetensorsFile& g, bool has_bn) {
  ReferenceConvolutions reference;
  std::vector<Comparison> out;
  model.train();
  model.zero_grad();
  Var x(golden_tensor(g, "input"));
  const Tensor& labels = golden_tensor(g, "labels");
  Var logits = model.forward(x);
  Var loss = ops::cross_entropy(logits, labels);
  backward(loss);

  out.push_back(compare_elements("logits (train mode)", logits.value().to_vector(), golden_values(g, "logits"),
                                 kLogitTol));
  Comparison lc("loss");
  double expected_loss = golden_values(g, "loss").at(0);
  lc.consider("value", loss.value().item(), expected_loss, kLossTol * std::abs(expected_loss));
  out.push_back(lc);

  size_t records = 0;
  for (const auto& [name, t] : g.tensors) records += name.rfind("grad_stats.", 0) == 0;
  Comparison count("parameters with gradient records");
  count.consider("count", double(model.named_parameters().size()), double(records), 0.5);
  out.push_back(count);
  for (const auto& [name, var] : model.named_parameters())
    out.push_back(compare_gradient(name, var.grad().to_vector(), g));

  if (has_bn) {
    for (auto& [name, buf] : model.named_buffers())
      out.push_back(compare_elements("running statistics " + name, buf->to_vector(),
                                     golden_values(g, "running_after." + name), kRunningTol));
    model.eval();
    NoGradGuard no_grad;
    out.push_back(compare_elements("logits (eval mode, updated statistics)", model.forward(x).value().to_vector(),
                                   golden_values(g, "logits_eval"), kLogitTol));
    model.train();
  }
  return out;
}

std::unique_ptr<layers::Module> golden_resnet20() {
  layers::ModelOptions opt;  // 3x32x32, 10 classes
  opt.seed = 7;              // any: every value is replaced by the checkpoint's
  auto model = layers::make_model("resnet20", opt);
  layers::load_module(golden_path("resnet20.weights.safetensors"), *model);
  return model;
}

// LeNet's weights from the recipe in the golden file's metadata, loaded by load_state_dict.
std::unique_ptr<layers::Module> golden_lenet(const SafetensorsFile& g) {
  layers::ModelOptions opt;
  opt.channels = 1;
  opt.height = opt.width = 28;
  auto model = layers::make_model("lenet", opt);
  SafetensorsFile weights;
  for (const auto& [key, recipe] : g.metadata) {
    if (key.rfind("init.", 0) != 0) continue;
    std::istringstream is(recipe);
    uint64_t seed_key = 0;
    double bound = 0;
    std::string dims;
    is >> seed_key >> bound >> dims;
    REQUIRE(is);
    Shape shape;
    std::istringstream ds(dims);
    for (std::string d; std::getline(ds, d, ',');) shape.push_back(std::stoll(d));
    Tensor t = Tensor::empty(shape);
    for (int64_t i = 0; i < t.numel(); ++i)
      t.data()[i] = static_cast<float>(bound * (2.0 * fixture_uniform(seed_key, uint64_t(i)) - 1.0));
    weights.tensors.emplace_back(key.substr(5), t);
  }
  REQUIRE(weights.tensors.size() == 8);
  layers::load_state_dict(*model, weights, "lenet golden weights");
  return model;
}

// MACER_GOLDEN_REPORT=1 prints every comparison (to see the margins when tuning tolerances).
void report(const std::vector<Comparison>& results) {
  static const bool verbose = std::getenv("MACER_GOLDEN_REPORT") != nullptr;
  for (const auto& c : results) {
    if (verbose) std::printf("%.3g  %s\n", c.worst_ratio, c.describe().c_str());
    INFO(c.describe());
    CHECK(c.ok());
  }
}

}  // namespace

TEST_CASE("ResNet-20: one training step matches PyTorch", "[golden]") {
  SafetensorsFile g = load_safetensors(golden_path("resnet20.golden.safetensors"));
  auto model = golden_resnet20();
  auto results = golden_step(*model, g, true);
  CHECK(results.size() == 111);  // logits, loss, count, 65 gradients, 42 BN buffers, eval logits
  report(results);
}

TEST_CASE("LeNet: one training step matches PyTorch", "[golden]") {
  SafetensorsFile g = load_safetensors(golden_path("lenet.golden.safetensors"));
  auto model = golden_lenet(g);
  CHECK(model->parameter_count() == 431080);
  report(golden_step(*model, g, false));
}

// Not a uniform scaling (the BatchNorm after the conv would cancel that): +-1% alternately.
TEST_CASE("the golden comparison detects a 1% change in one layer", "[golden]") {
  SafetensorsFile g = load_safetensors(golden_path("resnet20.golden.safetensors"));
  auto model = golden_resnet20();
  bool found = false;
  for (auto& [name, var] : model->named_parameters()) {
    if (name != "layer2.1.conv2.weight") continue;
    float* w = var.value().data();
    for (int64_t i = 0; i < var.value().numel(); ++i) w[i] *= (i % 2) ? 1.01f : 0.99f;
    found = true;
  }
  REQUIRE(found);
  auto results = golden_step(*model, g, true);
  int failed = 0;
  bool logits_failed = false;
  for (const auto& c : results) {
    failed += !c.ok();
    if (c.what == "logits (train mode)") logits_failed = !c.ok();
  }
  INFO(failed << " of " << results.size() << " comparisons fail");
  CHECK(logits_failed);
  CHECK(failed > 60);  // 88 at the time of writing: logits, loss, most gradients, later BN stats
}
