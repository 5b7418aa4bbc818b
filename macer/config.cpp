// TrainConfig parsing: one schema table binds each "section.key" to its field, type and range;
// parsing, --set overrides, validation and printing all walk that table.
#include "macer/config.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <toml++/toml.h>
#include <variant>

#include "data/dataset.h"
#include "kernels/check.h"
#include "macer/model_name.h"

namespace macer {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

namespace {

using Field = std::variant<int64_t*, double*, bool*, std::string*, std::vector<int64_t>*>;

struct Entry {
  std::string key;  // "section.name"
  Field field;
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  std::vector<std::string> choices = {};  // strings: allowed values (empty: any)
};

constexpr double kInf = std::numeric_limits<double>::infinity();

std::vector<Entry> schema(TrainConfig& c) {
  return {
      {"data.dataset", &c.data.dataset, 0, 0,
       {"cifar10", "mnist", "fashion-mnist", "svhn", "imagefolder", "imagenet", "synthetic"}},
      {"data.dir", &c.data.dir},
      {"data.train_count", &c.data.train_count, -1, kInf},
      {"data.augment_crop", &c.data.augment_crop},
      {"data.augment_flip", &c.data.augment_flip},
      {"data.image_size", &c.data.image_size, 16, 1024},
      {"data.class_order", &c.data.class_order, 0, 0, {"auto", "text", "numeric"}},
      {"data.train_transform", &c.data.train_transform, 0, 0, {"auto", "random_resized_crop", "center_crop"}},
      {"data.jpeg_scaled_crops", &c.data.jpeg_scaled_crops},
      {"data.synthetic_size", &c.data.synthetic_size, 1, 1e7},
      {"data.synthetic_classes", &c.data.synthetic_classes, 2, 1000},
      {"model.name", &c.model.name},
      {"model.normalize", &c.model.normalize, 0, 0, {"none", "cifar10", "imagenet", "cifar10-mean", "imagenet-mean"}},
      {"objective.name", &c.objective.name, 0, 0, {"macer", "gaussian", "consistency", "smoothmix"}},
      {"objective.sigma", &c.objective.sigma, 0, 10},
      {"objective.k", &c.objective.k, 1, 1024},
      {"objective.lambda", &c.objective.lambda, 0, 1e6},
      {"objective.lambda_schedule", &c.objective.lambda_schedule, 0, 0, {"constant", "deferred"}},
      {"objective.lambda_warmup_epochs", &c.objective.lambda_warmup_epochs, 0, 1e6},
      {"objective.beta", &c.objective.beta, 1e-6, 1e6},
      {"objective.gamma", &c.objective.gamma, 0, 1e6},
      {"objective.eta", &c.objective.eta, 0, 1e6},
      {"attack.name", &c.attack.name, 0, 0, {"none", "pgd", "smoothmix"}},
      {"attack.eps", &c.attack.eps, 0, 1e3},
      {"attack.steps", &c.attack.steps, 1, 1000},
      {"attack.alpha", &c.attack.alpha, 1e-9, 1e3},
      {"attack.mix_step", &c.attack.mix_step, 0, 1},
      {"attack.warmup_epochs", &c.attack.warmup_epochs, 0, 1e6},
      {"optim.epochs", &c.optim.epochs, 1, 1e6},
      {"optim.batch", &c.optim.batch, 1, 1e6},
      {"optim.lr", &c.optim.lr, 0, 100},
      {"optim.milestones", &c.optim.milestones, 0, 1e6},
      {"optim.lr_factor", &c.optim.lr_factor, 0, 1},
      {"optim.momentum", &c.optim.momentum, 0, 1},
      {"optim.weight_decay", &c.optim.weight_decay, 0, 1},
      {"optim.nesterov", &c.optim.nesterov},
      {"run.seed", &c.run.seed, 0, 9.2e18},
      {"run.device", &c.run.device, 0, 0, {"cpu", "cuda", "auto"}},
      {"run.precision", &c.run.precision, 0, 0, {"fp32", "bf16"}},
      {"run.checkpoint_dir", &c.run.checkpoint_dir},
      {"run.checkpoint_every", &c.run.checkpoint_every, 1, 1e6},
      {"run.keep_every", &c.run.keep_every, 0, 1e6},
      {"run.test_every", &c.run.test_every, 0, 1e6},
      {"run.log_file", &c.run.log_file},
      {"run.print_every", &c.run.print_every, 1, 1e9},
      {"certify.every", &c.certify.every, 0, 1e6},
      {"certify.start", &c.certify.start, 0, 1e9},
      {"certify.count", &c.certify.count, 1, 1e9},
      {"certify.skip", &c.certify.skip, 1, 1e9},
      {"certify.n0", &c.certify.n0, 1, 1e9},
      {"certify.n", &c.certify.n, 1, 1e10},
      {"certify.alpha", &c.certify.alpha, 1e-12, 0.5},
      {"certify.batch", &c.certify.batch, 1, 1e7},
  };
}

// Where a value came from: "FILE:LINE" for a file, the override itself ("--set KEY=VALUE") for --set.
std::string location(const std::string& origin, const toml::node& node, bool from_set) {
  if (from_set || node.source().begin.line == 0) return origin;
  return origin + ":" + std::to_string(node.source().begin.line);
}

std::string where(const std::string& origin, const toml::node& node, const std::string& key, bool from_set = false) {
  return location(origin, node, from_set) + ": key '" + key + "'";
}

void check_range(double v, const Entry& e, const std::string& at) {
  MACER_CHECK(std::isfinite(v) && v >= e.min && v <= e.max,
              at << ": value " << v << " out of range [" << e.min << ", " << e.max << "]");
}

// Stores the TOML value `node` into the entry's field, checking type and range.
void assign(const Entry& e, const toml::node& node, const std::string& at) {
  std::visit(
      [&](auto* field) {
        using T = std::remove_pointer_t<decltype(field)>;
        if constexpr (std::is_same_v<T, int64_t>) {
          auto v = node.value_exact<int64_t>();
          MACER_CHECK(v, at << ": expected an integer");
          check_range(double(*v), e, at);
          *field = *v;
        } else if constexpr (std::is_same_v<T, double>) {
          auto v = node.value<double>();  // integers are accepted where floats are expected
          MACER_CHECK(v && (node.is_floating_point() || node.is_integer()), at << ": expected a number");
          check_range(*v, e, at);
          *field = *v;
        } else if constexpr (std::is_same_v<T, bool>) {
          auto v = node.value_exact<bool>();
          MACER_CHECK(v, at << ": expected true or false");
          *field = *v;
        } else if constexpr (std::is_same_v<T, std::string>) {
          auto v = node.value_exact<std::string>();
          MACER_CHECK(v, at << ": expected a string");
          if (!e.choices.empty()) {
            bool ok = false;
            std::string list;
            for (const auto& c : e.choices) {
              ok = ok || c == *v;
              list += (list.empty() ? "" : ", ") + c;
            }
            MACER_CHECK(ok, at << ": '" << *v << "' is not one of " << list);
          }
          *field = *v;
        } else {
          const toml::array* arr = node.as_array();
          MACER_CHECK(arr, at << ": expected an array of integers");
          field->clear();
          for (const auto& item : *arr) {
            auto v = item.value_exact<int64_t>();
            MACER_CHECK(v, at << ": expected an array of integers");
            check_range(double(*v), e, at);
            field->push_back(*v);
          }
        }
      },
      e.field);
}

// Parses one --set override into a one-key TOML table; bare words become strings.
toml::table parse_override(const std::string& item) {
  auto eq = item.find('=');
  MACER_CHECK(eq != std::string::npos && eq > 0, "--set " << item << ": expected section.key=value");
  std::string key = item.substr(0, eq), value = item.substr(eq + 1);
  std::string line = "v = " + value;
  toml::table t;
  try {
    toml::table parsed = toml::parse(std::string_view(line), std::string_view("--set"));
    t.insert("v", *parsed.get("v"));
  } catch (const toml::parse_error&) {
    t.insert("v", value);  // a bare word: take it as a string
  }
  toml::table out;
  out.insert(key, t);
  return out;
}

// Where each given key's value came from: "FILE:LINE", or "--set KEY=VALUE".
using Sources = std::map<std::string, std::string>;

// " (did you mean X?)" for the nearest of `known` within a third of the word's length, else
// " (known: a, b, ...)".
std::string suggestion(const std::string& word, const std::vector<std::string>& known, bool prefixes = false) {
  std::string best;
  size_t best_d = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& k : known)
    if (size_t d = edit_distance(word, k); d < best_d) best = k, best_d = d;
  // `prefixes`: a name that starts with a known one or begins it ([optimizer] for [optim]).
  for (const auto& k : known)
    if (prefixes && best.empty() && std::min(word.size(), k.size()) >= 3 &&
        (word.compare(0, k.size(), k) == 0 || k.compare(0, word.size(), word) == 0))
      best = k;
  if (!best.empty()) return " (did you mean '" + best + "'?)";
  std::string all;
  for (const auto& k : known) all += (all.empty() ? "" : ", ") + k;
  return " (known: " + all + ")";
}

// `given` collects the keys set by the file or an override, each with where its value came from
// (FILE:LINE, or "--set KEY=VALUE" when `from_set`; `origin` is then that override).
void apply_table(TrainConfig& c, const toml::table& root, const std::string& origin, Sources& given,
                 bool from_set = false) {
  auto entries = schema(c);
  std::vector<std::string> sections;
  for (const auto& e : entries) {
    std::string sec = e.key.substr(0, e.key.find('.'));
    if (std::find(sections.begin(), sections.end(), sec) == sections.end()) sections.push_back(sec);
  }
  for (auto&& [section_key, section] : root) {
    std::string section_name(section_key.str());
    const toml::table* tbl = section.as_table();
    MACER_CHECK(tbl, where(origin, section, section_name, from_set) << ": expected a [section] table");
    MACER_CHECK(std::find(sections.begin(), sections.end(), section_name) != sections.end(),
                location(origin, section, from_set) << ": unknown section [" << section_name << "]"
                                                    << suggestion(section_name, sections, /*prefixes=*/true));
    std::vector<std::string> keys;  // the section's keys, for "did you mean"
    for (const auto& e : entries)
      if (e.key.compare(0, section_name.size() + 1, section_name + ".") == 0) keys.push_back(e.key);
    for (auto&& [name_key, node] : *tbl) {
      std::string key = section_name + "." + std::string(name_key.str());
      const Entry* found = nullptr;
      for (const auto& e : entries)
        if (e.key == key) found = &e;
      MACER_CHECK(found, where(origin, node, key, from_set) << ": unknown key" << suggestion(key, keys)
                                                            << "; README.md's Training section lists every key");
      assign(*found, node, where(origin, node, key, from_set));
      given[key] = location(origin, node, from_set);
    }
  }
}

// A key whose value has no effect under the rest of the configuration, and why.
struct Inert {
  std::string key, because, why;  // because: the key whose value makes `key` ineffective
};

// Every key that the rest of the configuration makes ineffective: given, it is refused; in
// to_toml it is left out (the resolved configuration shows what takes effect).
std::vector<Inert> inert_keys(const TrainConfig& c) {
  std::vector<Inert> out;
  auto add = [&](std::initializer_list<const char*> keys, const char* because, const std::string& why) {
    for (const char* k : keys) out.push_back({k, because, why});
  };
  const std::string& method = c.objective.name;
  if (method == "gaussian")
    add({"objective.lambda", "objective.lambda_schedule", "objective.lambda_warmup_epochs", "objective.beta",
         "objective.gamma", "objective.eta"},
        "objective.name", "the gaussian objective (cross-entropy of the noisy copies) uses only objective.sigma and objective.k");
  else if (method == "smoothmix")
    add({"objective.lambda", "objective.lambda_schedule", "objective.lambda_warmup_epochs", "objective.beta",
         "objective.gamma"},
        "objective.name", "the smoothmix objective weighs its mixup term by objective.eta alone");
  else if (method == "consistency")
    add({"objective.beta", "objective.gamma"}, "objective.name",
        "the consistency objective uses objective.lambda (its schedule) and objective.eta, not MACER's beta and gamma");
  if (method == "macer")
    add({"objective.eta"}, "objective.name", "MACER's objective has no eta (consistency and smoothmix have)");
  const bool uses_lambda = method == "macer" || method == "consistency";
  if (uses_lambda && c.objective.lambda == 0) {
    add({"objective.lambda_schedule", "objective.lambda_warmup_epochs"}, "objective.lambda",
        "objective.lambda = 0 turns the " + method + " term off");
    if (method == "macer")
      add({"objective.beta", "objective.gamma"}, "objective.lambda", "objective.lambda = 0 turns MACER's robustness term off");
  } else if (uses_lambda && c.objective.lambda_schedule == "constant") {
    add({"objective.lambda_warmup_epochs"}, "objective.lambda_schedule",
        "objective.lambda_schedule = \"constant\" has no warm-up (\"deferred\" has)");
  }
  if (c.data.dataset != "imagefolder")
    add({"data.image_size", "data.class_order", "data.jpeg_scaled_crops"}, "data.dataset",
        "only image folders (data.dataset = \"imagefolder\") are resized, ordered by folder name and decoded from JPEG");
  if (c.attack.name == "none")
    add({"attack.eps", "attack.steps", "attack.alpha", "attack.mix_step", "attack.warmup_epochs"}, "attack.name",
        "attack.name = \"none\" (the default) runs no attack: set attack.name = \"pgd\" (SmoothAdv) or "
        "\"smoothmix\" for the attack these keys configure");
  else if (c.attack.name == "pgd")
    add({"attack.mix_step"}, "attack.name", "attack.mix_step is SmoothMix's (attack.name = \"smoothmix\")");
  if (c.data.dataset != "synthetic")
    add({"data.synthetic_size", "data.synthetic_classes"}, "data.dataset", "only data.dataset = \"synthetic\" uses it");
  else
    add({"data.dir"}, "data.dataset", "the synthetic data set is generated, not read");
  if (c.optim.milestones.empty())
    add({"optim.lr_factor"}, "optim.milestones", "optim.milestones is empty: the rate never changes");
  if (c.certify.every == 0)
    add({"certify.start", "certify.count", "certify.skip", "certify.n0", "certify.n", "certify.alpha", "certify.batch"},
        "certify.every", "certify.every = 0: nothing is certified during training");
  return out;
}

// "SOURCE: key 'K'" for messages about K: SOURCE is where K's value came from (FILE:LINE or
// --set K=V; a file's K followed by the --set of an `also` key that makes it wrong: "FILE:LINE
// (with --set A=V)"), else where the first of `also` given came from (the keys whose values make
// K's wrong), else the config file (K at its default).
class KeyAt {
 public:
  KeyAt(const std::string& origin, const Sources& given) : origin_(origin), given_(given) {}
  std::string operator()(const std::string& key, std::initializer_list<const char*> also = {}) const {
    auto it = given_.find(key);
    std::string src = origin_;
    const auto by_set = [](const std::string& s) { return s.rfind("--set ", 0) == 0; };
    if (it != given_.end()) {
      src = it->second;
      if (!by_set(src))
        for (const char* a : also)
          if (given_.count(a) && by_set(given_.at(a))) {
            src += " (with " + given_.at(a) + ")";
            break;
          }
    } else {
      for (const char* a : also)
        if (given_.count(a)) {
          src = given_.at(a);
          break;
        }
    }
    return src + ": key '" + key + "'";
  }

 private:
  const std::string& origin_;
  const Sources& given_;
};

// Settings that contradict each other or cannot take effect, refused with the key named and
// where its value came from (README, "Settings that do nothing are refused"). `file`, `set`:
// the keys given by the file and by --set. A file key that a --set override makes ineffective
// (--set objective.name=gaussian over a file's lambda) is let pass: the override wins, and the
// printed config leaves it out; but not a file's data.dir under --set data.dataset=synthetic
// (the file names data the run would not read; --set data.dir="" clears it).
void check_combinations(const TrainConfig& c, const std::string& origin, const Sources& file, const Sources& set) {
  Sources given = file;
  for (const auto& [k, v] : set) given[k] = v;
  const KeyAt at(origin, given);
  for (const Inert& i : inert_keys(c)) {
    if (!given.count(i.key) || (i.key == "data.dir" && c.data.dir.empty())) continue;
    const bool by_override = !set.count(i.key) && set.count(i.because);
    if (by_override && i.key != "data.dir") continue;
    MACER_CHECK(false, given.at(i.key) << ": key '" << i.key << "' has no effect: " << i.why
                                       << (by_override ? " (" + i.because + " from " + set.at(i.because) + ")" : "")
                                       << "; remove it" << (by_override ? ", or add --set " + i.key + "=\"\"" : ""));
  }
  const auto& o = c.objective;
  MACER_CHECK(!c.optim.nesterov || c.optim.momentum > 0,
              at("optim.nesterov", {"optim.momentum"}) << " = true needs optim.momentum > 0 (with momentum 0 it would train "
                        "plain SGD; PyTorch refuses it too); set optim.momentum or nesterov = false");
  MACER_CHECK(c.optim.lr > 0, at("optim.lr") << " = 0 never changes the weights; set a rate > 0");
  if (!c.optim.milestones.empty()) {
    MACER_CHECK(c.optim.lr_factor > 0, at("optim.lr_factor", {"optim.milestones"}) << " = 0 stops training at the first milestone; "
                                                 "set a factor in (0, 1) or remove optim.milestones");
    MACER_CHECK(c.optim.lr_factor < 1, at("optim.lr_factor", {"optim.milestones"}) << " = 1: the milestones change nothing; set a "
                                                 "factor in (0, 1) or set optim.milestones = []");
  }
  if (o.name == "macer" && o.lambda > 0) {
    MACER_CHECK(o.lambda_schedule != "deferred" || o.lambda_warmup_epochs > 0,
                at("objective.lambda_schedule", {"objective.lambda_warmup_epochs"}) << " = \"deferred\" with lambda_warmup_epochs = 0 defers "
                          "nothing; set objective.lambda_warmup_epochs > 0 or lambda_schedule = \"constant\"");
    MACER_CHECK(o.gamma > 0, at("objective.gamma", {"objective.lambda", "objective.name"}) << " = 0: MACER's robustness term is active only for "
                                       "radii below gamma, so objective.lambda would do nothing; set gamma > 0 "
                                       "(MACER's 8) or lambda = 0");
  }
  MACER_CHECK(c.data.train_count != 0, at("data.train_count") << " = 0 leaves no image to train on; set -1 "
                                                 "(all) or a count of images");
  if (o.sigma == 0) {
    MACER_CHECK(o.k == 1, at("objective.k", {"objective.sigma"}) << " = " << o.k
                                 << " at objective.sigma = 0: without noise the copies are identical; set k = 1");
    MACER_CHECK(c.certify.every == 0,
                at("certify.every", {"objective.sigma"}) << " at objective.sigma = 0: certification at sigma 0 gives radius 0 "
                          "to every image (the model is trained without noise); set certify.every = 0 and certify "
                          "the checkpoint with macer_certify --sigma S at the noise level you mean");
  }
  if (c.certify.every > 0) {
    // All n votes for one class bound pA below by alpha^(1/n) (Clopper-Pearson, one-sided); at
    // or under 1/2 no image can be certified.
    MACER_CHECK(std::pow(c.certify.alpha, 1.0 / double(c.certify.n)) > 0.5,
                at("certify.n", {"certify.alpha"}) << " = " << c.certify.n << " at certify.alpha = " << c.certify.alpha
                       << " certifies no image (even n votes of n bound pA only by alpha^(1/n) <= 1/2); raise "
                          "certify.n above log2(1/alpha) = "
                       << std::ceil(std::log2(1.0 / c.certify.alpha)));
  }
}

void validate(const TrainConfig& c, const std::string& origin, const Sources& given) {
  const KeyAt at(origin, given);
  for (size_t i = 1; i < c.optim.milestones.size(); ++i)
    MACER_CHECK(c.optim.milestones[i] > c.optim.milestones[i - 1],
                at("optim.milestones") << " must increase");
  MACER_CHECK(c.data.dataset == "synthetic" || !c.data.dir.empty(),
              at("data.dir", {"data.dataset"}) << " is required for data set " << c.data.dataset);
  MACER_CHECK(!c.run.checkpoint_dir.empty(), at("run.checkpoint_dir") << " is empty");
  check_model_name(c.model.name, at("model.name"));
  // MACER's robustness term divides by sigma (radius sigma/2 (Phi^-1 - Phi^-1)); Gaussian
  // training at sigma 0 is plain training and allowed.
  MACER_CHECK(c.objective.name != "macer" || c.objective.sigma > 0,
              at("objective.sigma", {"objective.name"}) << " must be > 0 for the MACER objective");
  // Which objective takes which attack (SPEC.md, "Training methods beyond MACER"): PGD runs before
  // Gaussian, MACER or Consistency; SmoothMix's loss needs its own adversary, and only it.
  const bool smoothmix = c.objective.name == "smoothmix";
  MACER_CHECK(smoothmix == (c.attack.name == "smoothmix"),
              at("attack.name", {"objective.name"}) << " is \"" << c.attack.name << "\" with objective \"" << c.objective.name
                     << "\": the smoothmix objective needs attack.name = \"smoothmix\", and that attack serves "
                        "no other objective (use \"pgd\" or \"none\")");
  MACER_CHECK(c.objective.name != "consistency" || c.objective.k >= 2,
              at("objective.k", {"objective.name"}) << " is " << c.objective.k
                     << ": the consistency objective compares noisy copies and needs k >= 2");
  MACER_CHECK(!smoothmix || c.attack.mix_step == 0 || c.attack.steps >= 2,
              at("attack.mix_step", {"attack.steps"}) << " is 1 (the point after one step) but attack.steps is "
                     << c.attack.steps << "; it needs attack.steps >= 2");
}

// Parses and validates; `combinations` adds check_combinations (off for stored configs).
TrainConfig parse(const std::string& text, const std::string& origin, const std::vector<std::string>& overrides,
                  bool combinations) {
  TrainConfig c;
  Sources file, set;  // the keys given by the file, by --set, and where each value came from
  toml::table parsed;
  try {
    parsed = toml::parse(std::string_view(text), std::string_view(origin));
  } catch (const toml::parse_error& err) {
    // toml++ reads a bare word as the start of a boolean or number: say what a user meant
    const std::string what(err.description());
    const bool bare_word = what.find("boolean") != std::string::npos || what.find("inf") != std::string::npos ||
                           what.find("nan") != std::string::npos || what.find("value type") != std::string::npos;
    throw Error(origin + ":" + std::to_string(err.source().begin.line) + ": " + what +
                (bare_word ? " (a text value needs quotes: key = \"value\")" : ""));
  }
  apply_table(c, parsed, origin, file);
  for (const auto& item : overrides) {
    toml::table one = parse_override(item);
    std::string key = item.substr(0, item.find('='));
    auto dot = key.find('.');
    MACER_CHECK(dot != std::string::npos, "--set " << item << ": key must be section.key");
    toml::table root;
    toml::table section;
    section.insert(key.substr(dot + 1), *one.get(key)->as_table()->get("v"));
    root.insert(key.substr(0, dot), section);
    apply_table(c, root, "--set " + item, set, /*from_set=*/true);
  }
  c.data.dataset = data::canonical_dataset(c.data.dataset);  // "imagenet" reads as "imagefolder"
  Sources given = file;
  for (const auto& [k, v] : set) given[k] = v;
  validate(c, origin, given);
  if (combinations) check_combinations(c, origin, file, set);
  c.sources = given;
  c.origin = origin;
  return c;
}

}  // namespace

std::string key_source(const TrainConfig& c, const std::string& key) {
  auto it = c.sources.find(key);
  return (it != c.sources.end() ? it->second : c.origin) + ": key '" + key + "'";
}

TrainConfig parse_train_config(const std::string& text, const std::string& origin,
                               const std::vector<std::string>& overrides) {
  return parse(text, origin, overrides, /*combinations=*/true);
}

TrainConfig parse_stored_train_config(const std::string& text, const std::string& origin) {
  return parse(text, origin, {}, /*combinations=*/false);
}

TrainConfig load_train_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::error_code ec;
  MACER_CHECK(!std::filesystem::is_directory(path, ec), path << ": is a folder, not a config file");
  std::ifstream in(path);
  MACER_CHECK(in, path << ": cannot open config file: " << std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_train_config(ss.str(), path, overrides);
}

std::string to_toml(const TrainConfig& config) {
  TrainConfig c = config;
  toml::table root;
  std::set<std::string> inert;
  for (const Inert& i : inert_keys(c)) inert.insert(i.key);
  for (const auto& e : schema(c)) {
    auto dot = e.key.find('.');
    std::string section = e.key.substr(0, dot), name = e.key.substr(dot + 1);
    if (!root.contains(section)) root.insert(section, toml::table{});
    if (inert.count(e.key)) continue;
    toml::table& tbl = *root.get(section)->as_table();
    std::visit(
        [&](auto* field) {
          using T = std::remove_pointer_t<decltype(field)>;
          if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
            toml::array arr;
            for (int64_t v : *field) arr.push_back(v);
            tbl.insert(name, arr);
          } else {
            tbl.insert(name, *field);
          }
        },
        e.field);
  }
  std::ostringstream os;
  os << root;
  return os.str();
}

}  // namespace macer
