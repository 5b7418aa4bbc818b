#!/usr/bin/env bash
# On the GPU machine, in the repository root, with gpu-pack/ (made by scripts/gpu-pack.sh)
# carried along: unpacks the build, runs all of ctest (CUDA tests included), the bench and
# PyTorch's reference on the GPU, and leaves the logs and JSON in $OUT (or gpu-run-out/).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-run-out}
mkdir -p "$out"
root=$(cat gpu-pack/root)
if [ "$(pwd -P)" != "$root" ] && [ ! -e "$root" ]; then  # the build's absolute paths lead here
  mkdir -p "$(dirname "$root")" && ln -s "$(pwd -P)" "$root"
fi
mkdir -p build && tar -C build -xzf gpu-pack/build.tar.gz && tar -C gpu-pack -xJf gpu-pack/lib.tar.xz
export LD_LIBRARY_PATH="$(pwd -P)/gpu-pack/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if [ -f gpu-pack/mpi.tar.gz ]; then  # Open MPI's runtime, relocated (scripts/gpu-pack.sh)
  tar -C gpu-pack -xzf gpu-pack/mpi.tar.gz
  export OPAL_PREFIX="$(pwd -P)/gpu-pack/mpi" PATH="$(pwd -P)/gpu-pack/mpi/bin:$PATH"
  export PMIX_INSTALL_PREFIX="$(ls -d "$OPAL_PREFIX"/lib/*/pmix2 2>/dev/null | head -n 1)"
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
start=$SECONDS
ctest --test-dir build --output-on-failure -j 8 ${CTEST_ARGS:-} >"$out/ctest.log" 2>&1
status=$?
tail -n 25 "$out/ctest.log"
echo "gpu-run: ctest exit $status in $((SECONDS - start)) s"
if [ "${SKIP_VALIDATE:-0}" != 1 ]; then  # folded == model rows; mpirun -np 1 (NCCL) == no launcher
  scripts/gpu-validate.sh build "$out" || status=1
fi
if [ "${SKIP_BENCH:-0}" != 1 ]; then
  build/bench/macer_bench --device cuda --json "$out/ours.json" ${BENCH_ARGS:-} >"$out/bench.log" 2>&1
  tail -n 45 "$out/bench.log"
  python3 bench/torch_reference.py --device cuda --json "$out/torch.json" >"$out/torch.log" 2>&1
  tail -n 8 "$out/torch.log"
fi
echo "gpu-run: done in $((SECONDS)) s"
exit "$status"
