// Catch2 main for every test executable. A CUDA test file defines
// `bool macer_tests_need_cuda = true;`; without a usable GPU it then exits 77, which ctest
// reports as skipped, after printing why.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>

#include "engine/device.h"

extern bool macer_tests_need_cuda __attribute__((weak));

int main(int argc, char* argv[]) {
  if (&macer_tests_need_cuda != nullptr && macer_tests_need_cuda && !macer::cuda_available()) {
    std::printf("SKIPPED: CUDA tests need a GPU: %s\n", macer::cuda_unavailable_reason().c_str());
    return 77;
  }
  return Catch::Session().run(argc, argv);
}
