#!/usr/bin/env bash
# On a machine with a GPU: builds with all cores (CUDA on), runs all of ctest including the
# CUDA tests, then the bench; prints a summary. Results go to ${OUT:-gpu-check-out}/.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-check-out}
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
export BUILD_DIR=${BUILD_DIR:-build-gpu}
CMAKE_ARGS="-DMACER_CUDA=ON -DMACER_TESTS=ON -DMACER_BENCH=ON ${CMAKE_ARGS:-}" scripts/build.sh 2>&1 | tail -n 30 | tee "$out/build.log"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j 4 2>&1 | tee "$out/ctest.log"
status=${PIPESTATUS[0]}
if [ -x "$BUILD_DIR/bench/macer_bench" ]; then
  "$BUILD_DIR/bench/macer_bench" --device cuda --json "$out/bench-cuda.json" 2>&1 | tee "$out/bench.log"
fi
echo "gpu-check: $(date -u +%FT%TZ) $(head -n1 "$out/gpu.txt"): ctest exit $status"
grep -E "tests passed|tests failed" "$out/ctest.log"
exit "$status"
