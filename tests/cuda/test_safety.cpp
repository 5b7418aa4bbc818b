// The divergence guard and the NaN-logit refusal on the CUDA path: the same errors as on the
// CPU (tests/test_train_safety.cpp, tests/test_certify_safety.cpp), from device-side marks.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "engine/tensor.h"
#include "macer/checkpoint.h"
#include "macer/certify/smoothing.h"
#include "macer/train/trainer.h"

bool macer_tests_need_cuda = true;

using namespace macer;
namespace fs = std::filesystem;

TEST_CASE("CUDA training stops on divergence and keeps the last finite checkpoint", "[cuda][safety]") {
  fs::path dir = fs::temp_directory_path() / ("macer_test_cuda_safety_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  auto config = [&](const std::vector<std::string>& sets) {
    std::vector<std::string> all = {"run.checkpoint_dir=\"" + dir.string() + "\""};
    all.insert(all.end(), sets.begin(), sets.end());
    return parse_train_config(
        "[data]\ndataset = \"synthetic\"\nsynthetic_size = 64\nsynthetic_classes = 3\n[model]\nname = \"lenet\"\n"
        "[objective]\nsigma = 0.25\nk = 2\nlambda = 2.0\n[optim]\nbatch = 16\nlr = 0.02\n"
        "[run]\ndevice = \"cuda\"\ncheckpoint_every = 1\nprint_every = 1000\n",
        "cuda-safety", all);
  };
  { Trainer(config({"optim.epochs=1"})).run(); }
  TrainerOptions resume;
  resume.resume = (dir / "checkpoint.safetensors").string();
  Trainer t(config({"optim.epochs=8", "optim.lr=100", "optim.weight_decay=1"}), resume);
  CHECK_THROWS_WITH(t.run(), Catch::Contains("became NaN or infinite at epoch") &&
                                 Catch::Contains("last finite checkpoint is kept"));
  CHECK(read_checkpoint_info(resume.resume).epoch >= 1);
  fs::remove_all(dir);
}

TEST_CASE("CUDA certification refuses NaN logits", "[cuda][safety]") {
  Tensor image = Tensor::zeros({1, 2, 2}, Device::CUDA);
  BaseClassifier nan_logits = [](const Tensor& x) {
    Tensor z = Tensor::full({x.dim(0), 3}, 0.0f);
    z.data()[4] = std::nanf("");
    return z.to(Device::CUDA);
  };
  CertifyOptions opt;
  opt.n0 = 10, opt.n = 100, opt.batch = 50;
  CHECK_THROWS_WITH(certify(nan_logits, image, 3, opt, 2), Catch::Contains("NaN or infinite logits"));
  opt.mode = CertifyMode::Soft;
  CHECK_THROWS_WITH(certify(nan_logits, image, 3, opt, 2), Catch::Contains("NaN or infinite logits"));
}
