// Model names to constructors: torchvision's resnet18/34/50/101/152, Cifar ResNets of any depth
// 6n+2 as "resnet<depth>" (or "cifar_resnet<depth>", Cohen's arch name, for the depths 50 and
// 152 that torchvision's names take), and LeNet; the named ones are listed for --help and errors.
#include "layers/registry.h"

#include <cstdlib>
#include <functional>
#include <map>

namespace macer::layers {

namespace {
using Factory = std::function<std::unique_ptr<Module>(const ModelOptions&)>;

const std::map<std::string, Factory>& factories() {
  static const std::map<std::string, Factory> table = [] {
    std::map<std::string, Factory> t = {
        {"lenet", [](const ModelOptions& o) { return std::make_unique<LeNet>(o); }},
        {"resnet20", [](const ModelOptions& o) { return std::make_unique<CifarResNet>(20, o); }},
        {"resnet56", [](const ModelOptions& o) { return std::make_unique<CifarResNet>(56, o); }},
        {"resnet110", [](const ModelOptions& o) { return std::make_unique<CifarResNet>(110, o); }},
    };
    for (int depth : {18, 34, 50, 101, 152})
      t["resnet" + std::to_string(depth)] = [depth](const ModelOptions& o) {
        return std::make_unique<TorchvisionResNet>(depth, o);
      };
    return t;
  }();
  return table;
}

// The depth of "<prefix><digits>", or 0 when `name` is not that; past 1000 layers refused.
int depth_after(const std::string& name, const std::string& prefix) {
  if (name.rfind(prefix, 0) != 0 || name.size() == prefix.size() ||
      name.find_first_not_of("0123456789", prefix.size()) != std::string::npos)
    return 0;
  // Depths past 1000 layers are refused by length before any conversion can overflow.
  const bool short_enough = name.size() - prefix.size() <= 4;
  const int depth = short_enough ? std::atoi(name.c_str() + prefix.size()) : 0;
  MACER_CHECK(short_enough && depth <= 1000,
              "model '" << name << "': depth " << name.substr(prefix.size()) << " too large (at most 1000 layers)");
  return depth;
}
}  // namespace

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const auto& [name, f] : factories()) names.push_back(name);
  names.push_back("resnet<6n+2>");
  names.push_back("cifar_resnet<6n+2>");
  return names;
}

std::unique_ptr<Module> make_model(const std::string& name, const ModelOptions& opt) {
  auto it = factories().find(name);
  if (it != factories().end()) return it->second(opt);
  // Any other Cifar depth: "resnet" or "cifar_resnet" followed by digits with depth = 6n+2.
  for (const char* prefix : {"resnet", "cifar_resnet"})
    if (int depth = depth_after(name, prefix); depth >= 8 && (depth - 2) % 6 == 0)
      return std::make_unique<CifarResNet>(depth, opt);
  std::string known;
  for (const auto& n : model_names()) known += (known.empty() ? "" : ", ") + n;
  throw Error("unknown model '" + name + "' (known: " + known + ")");
}

}  // namespace macer::layers
