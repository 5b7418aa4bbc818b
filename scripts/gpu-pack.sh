#!/usr/bin/env bash
# On the CPU machine: builds (CUDA on) and packs what a GPU machine needs to run the tests and the
# bench without compiling on its clock: the build's programs, tests and ctest files, and the shared
# libraries they link that the GPU machine lacks (OpenBLAS, toml++, Open MPI...), in gpu-pack/.
# Then, with the device tool: carry ["gpu-pack"], command "bash scripts/gpu-run.sh".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
CMAKE_ARGS="-DMACER_CUDA=ON -DMACER_TESTS=ON -DMACER_BENCH=ON ${CMAKE_ARGS:-}" scripts/build.sh
build=${BUILD_DIR:-build}
rm -rf gpu-pack
mkdir -p gpu-pack/lib
pwd >gpu-pack/root  # ctest files name absolute paths: gpu-run.sh makes this path lead to the tree
tar -C "$build" -czf gpu-pack/build.tar.gz --exclude='*.o' --exclude='*.a' --exclude='*_tmp' --exclude=Testing \
  bin tests bench CTestTestfile.cmake CMakeCache.txt
# Every library the programs load from outside the CUDA toolkit and the C/C++ runtime.
for f in "$build"/bin/* "$build"/tests/* "$build"/bench/macer_bench; do
  [ -x "$f" ] && [ -f "$f" ] || continue
  ldd "$f" 2>/dev/null | awk '$3 ~ /^\// {print $3}'
done | sort -u | grep -vE '/cuda|/(libc|libm|libdl|librt|libpthread|libstdc\+\+|libgcc_s|ld-linux)[.-]' |
  while read -r lib; do cp -L "$lib" gpu-pack/lib/; done
tar -C gpu-pack -czf gpu-pack/lib.tar.gz lib && rm -rf gpu-pack/lib  # the device tool carries 64 MiB at most
du -sh gpu-pack
echo "gpu-pack: run on the GPU machine: bash scripts/gpu-run.sh"
