// Catch2 main for every test executable. A CUDA test file defines
// `bool macer_tests_need_cuda = true;`; without a usable GPU it then exits 77, which ctest
// reports as skipped, after printing why. A test file needing something else (PyTorch) defines
// `std::string macer_tests_skip_reason()`, returning why it cannot run or "" when it can.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>

#include "engine/device.h"

extern bool macer_tests_need_cuda __attribute__((weak));
std::string macer_tests_skip_reason() __attribute__((weak));

int main(int argc, char* argv[]) {
  if (&macer_tests_need_cuda != nullptr && macer_tests_need_cuda && !macer::cuda_available()) {
    std::printf("SKIPPED: CUDA tests need a GPU: %s\n", macer::cuda_unavailable_reason().c_str());
    return 77;
  }
  if (&macer_tests_skip_reason != nullptr) {
    std::string why = macer_tests_skip_reason();
    if (!why.empty()) {
      std::printf("SKIPPED: %s\n", why.c_str());
      return 77;
    }
  }
  return Catch::Session().run(argc, argv);
}
