#!/usr/bin/env bash
# Configures and builds into ${BUILD_DIR:-build} (CUDA too when nvcc is found); extra arguments
# are build targets. Used by the other scripts.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
if [ -z "${CUDACXX:-}" ] && ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release ${CMAKE_ARGS:-} >/dev/null
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build "$build" -j "$(OMP_NUM_THREADS= nproc)" "${targets[@]}"  # (nproc answers OMP_NUM_THREADS when set)
