// The model registry: config names ("lenet", Cifar "resnet20", "resnet110", any "resnet<6n+2>" or
// "cifar_resnet<6n+2>", torchvision's "resnet18" ... "resnet152") to constructors, so that bin/
// never grows a chain of ifs. "resnet50" and "resnet152" are torchvision's.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "layers/models.h"

namespace macer::layers {

std::unique_ptr<Module> make_model(const std::string& name, const ModelOptions& opt);
std::vector<std::string> model_names();

}  // namespace macer::layers
