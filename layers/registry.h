// The model registry: config names ("lenet", "resnet20", "resnet110", "resnet50", or
// "resnet<6n+2>") to constructors, so that bin/ never grows a chain of ifs.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "layers/models.h"

namespace macer::layers {

std::unique_ptr<Module> make_model(const std::string& name, const ModelOptions& opt);
std::vector<std::string> model_names();

}  // namespace macer::layers
