// Model names to constructors. Cifar ResNets of any depth 6n+2 are accepted as "resnet<depth>";
// the named ones are listed for --help and error messages.
#include "layers/registry.h"

#include <cstdlib>
#include <functional>
#include <map>

namespace macer::layers {

namespace {
using Factory = std::function<std::unique_ptr<Module>(const ModelOptions&)>;

const std::map<std::string, Factory>& factories() {
  static const std::map<std::string, Factory> table = {
      {"lenet", [](const ModelOptions& o) { return std::make_unique<LeNet>(o); }},
      {"resnet20", [](const ModelOptions& o) { return std::make_unique<CifarResNet>(20, o); }},
      {"resnet56", [](const ModelOptions& o) { return std::make_unique<CifarResNet>(56, o); }},
      {"resnet110", [](const ModelOptions& o) { return std::make_unique<CifarResNet>(110, o); }},
      {"resnet50", [](const ModelOptions& o) { return std::make_unique<ResNet50>(o); }},
  };
  return table;
}
}  // namespace

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const auto& [name, f] : factories()) names.push_back(name);
  names.push_back("resnet<6n+2>");
  return names;
}

std::unique_ptr<Module> make_model(const std::string& name, const ModelOptions& opt) {
  auto it = factories().find(name);
  if (it != factories().end()) return it->second(opt);
  // Any other Cifar depth: "resnet" followed by digits with depth = 6n+2.
  if (name.rfind("resnet", 0) == 0 && name.size() > 6 &&
      name.find_first_not_of("0123456789", 6) == std::string::npos) {
    // Depths past 1000 layers are refused by length before any conversion can overflow.
    int depth = name.size() <= 10 ? std::atoi(name.c_str() + 6) : 0;
    MACER_CHECK(name.size() <= 10 && depth <= 1000,
                "model '" << name << "': depth " << name.substr(6) << " too large (at most 1000 layers)");
    if (depth >= 8 && (depth - 2) % 6 == 0) return std::make_unique<CifarResNet>(depth, opt);
  }
  std::string known;
  for (const auto& n : model_names()) known += (known.empty() ? "" : ", ") + n;
  throw Error("unknown model '" + name + "' (known: " + known + ")");
}

}  // namespace macer::layers
