// The model names of configs and --model checked before anything is built: an unknown one is
// refused naming where it came from, the nearest name and the known ones in natural order.
#pragma once
#include <string>

namespace macer {

// Refuses a model name the registry (layers/registry.h) does not build: "AT: unknown model
// 'NAME' (did you mean ...?; known: lenet, resnet18, resnet20, ...)", the names in natural order;
// `at` names where the name came from ("FILE:LINE: key 'model.name'", "--model").
void check_model_name(const std::string& name, const std::string& at);

}  // namespace macer
