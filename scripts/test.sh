#!/usr/bin/env bash
# The test command: installs what is needed, builds everything (the CUDA code too when nvcc is
# there) and runs ctest. CUDA tests report themselves skipped on a machine without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh python3-torch python3-torchvision python3-scipy  # tests/test_convert.cpp
CMAKE_ARGS="-DMACER_TESTS=ON -DMACER_BENCH=ON ${CMAKE_ARGS:-}" scripts/build.sh
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j "$(nproc)"
