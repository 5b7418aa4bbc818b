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
# Open MPI's runtime, for the NCCL check under `mpirun -np 1` (gpu-run.sh sets OPAL_PREFIX to
# gpu-pack/mpi; the layout mirrors Debian's, whose install paths all sit under the prefix /usr).
mpi_lib=$(ompi_info --path libdir --parsable 2>/dev/null | cut -d: -f3)
if [ -n "$mpi_lib" ] && command -v orterun >/dev/null; then
  mpi=gpu-pack/mpi
  mkdir -p "$mpi/bin" "$mpi${mpi_lib#/usr}" "$mpi/share"
  cp -L "$(command -v orterun)" "$(command -v orted)" "$mpi/bin/"
  ln -s orterun "$mpi/bin/mpirun"
  cp -rL "$mpi_lib/openmpi3" "$mpi${mpi_lib#/usr}/"
  cp -r /usr/share/openmpi "$mpi/share/"
  multiarch=$(dirname "$(dirname "$mpi_lib")")  # /usr/lib/x86_64-linux-gnu
  # Debian's Open MPI uses an external PMIx with plugins of its own (gpu-run.sh: PMIX_INSTALL_PREFIX)
  [ -d "$multiarch/pmix2" ] && cp -rL "$multiarch/pmix2" "$mpi${multiarch#/usr}/"
  for f in "$mpi"/bin/orterun "$mpi"/bin/orted "$mpi${mpi_lib#/usr}"/openmpi3/*.so "$mpi${multiarch#/usr}"/pmix2/lib/pmix/*.so; do
    ldd "$f" 2>/dev/null | awk '$3 ~ /^\// {print $3}'
  done | sort -u | grep -vE '/(libc|libm|libdl|librt|libpthread|libstdc\+\+|libgcc_s|ld-linux)[.-]|/cuda' |
    while read -r lib; do [ -e "gpu-pack/lib/$(basename "$lib")" ] || cp -L "$lib" gpu-pack/lib/; done
  tar -C gpu-pack -czf gpu-pack/mpi.tar.gz mpi && rm -rf "$mpi"
fi
tar -C gpu-pack -I 'xz -T0' -cf gpu-pack/lib.tar.xz lib && rm -rf gpu-pack/lib  # the device tool carries 64 MiB at most (xz: 16 MB, gzip: 29)
du -sh gpu-pack
echo "gpu-pack: run on the GPU machine: bash scripts/gpu-run.sh"
