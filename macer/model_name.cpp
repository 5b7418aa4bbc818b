// check_model_name of macer/model_name.h: layers::model_names() and the Cifar ResNet depths,
// with a "did you mean" by edit distance (macer/config.h).
#include "macer/model_name.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <vector>

#include "kernels/check.h"
#include "layers/registry.h"
#include "macer/config.h"

namespace macer {

namespace {

// Cifar ResNets of any depth 6n+2 >= 8 are "resnet<depth>" or "cifar_resnet<depth>", as
// layers/registry.cpp builds them (the named ones are listed by layers::model_names()).
bool is_cifar_depth(const std::string& name) {
  for (const std::string prefix : {"resnet", "cifar_resnet"}) {
    if (name.compare(0, prefix.size(), prefix) != 0 || name.size() == prefix.size() || name.size() > prefix.size() + 4 ||
        name.find_first_not_of("0123456789", prefix.size()) != std::string::npos)
      continue;
    const int depth = std::atoi(name.c_str() + prefix.size());
    if (depth >= 8 && depth <= 1000 && (depth - 2) % 6 == 0) return true;
  }
  return false;
}

// "resnet18" before "resnet110": letters compared as text, digit runs as numbers.
bool natural_less(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) && std::isdigit(static_cast<unsigned char>(b[j]))) {
      size_t ie = a.find_first_not_of("0123456789", i), je = b.find_first_not_of("0123456789", j);
      ie = ie == std::string::npos ? a.size() : ie, je = je == std::string::npos ? b.size() : je;
      const long long x = std::atoll(a.substr(i, ie - i).c_str()), y = std::atoll(b.substr(j, je - j).c_str());
      if (x != y) return x < y;
      i = ie, j = je;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i, ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

}  // namespace

void check_model_name(const std::string& name, const std::string& at) {
  std::vector<std::string> named, patterns;
  for (const std::string& n : layers::model_names()) (n.find('<') == std::string::npos ? named : patterns).push_back(n);
  if (std::find(named.begin(), named.end(), name) != named.end() || is_cifar_depth(name)) return;
  std::sort(named.begin(), named.end(), natural_less);
  std::string best, known;
  size_t best_d = std::max<size_t>(2, name.size() / 3) + 1;
  for (const auto& n : named)
    if (size_t d = edit_distance(name, n); d < best_d) best = n, best_d = d;
  for (const auto& n : named) known += (known.empty() ? "" : ", ") + n;
  for (const auto& n : patterns) known += ", " + n;
  const bool resnet_depth = name.rfind("resnet", 0) == 0 && name.size() > 6 &&
                            name.find_first_not_of("0123456789", 6) == std::string::npos;
  if (resnet_depth && (name.size() > 10 || std::atoi(name.c_str() + 6) > 1000))  // as the registry says it
    throw Error(at + ": model '" + name + "': depth " + name.substr(6) + " too large (at most 1000 layers)");
  throw Error(at + ": unknown model '" + name + "' (" + (best.empty() ? "" : "did you mean '" + best + "'? ") +
              (resnet_depth ? "a Cifar ResNet's depth is 6n+2: 20, 26, 32, ..., 110; torchvision's are 18, 34, 50, "
                              "101, 152; "
                            : "") +
              "known: " + known + ")");
}

}  // namespace macer
