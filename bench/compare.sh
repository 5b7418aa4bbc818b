#!/usr/bin/env bash
# Runs bench/macer_bench and bench/torch_reference.py on the same device in one go and prints
# ours over theirs (time ratio; below 1 means the engine is faster) for each shared case.
# Usage: bench/compare.sh [cpu|cuda|auto] [extra macer_bench flags]
set -euo pipefail
cd "$(dirname "$0")/.."
device=${1:-auto}
shift || true
out=${BENCH_OUT:-bench/out}
mkdir -p "$out"
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null && ! python3 -c 'import torch' 2>/dev/null; then
  scripts/setup.sh python3-torch
fi
py=python3
python3 -c 'import torch' 2>/dev/null || py=/usr/bin/python3
scripts/setup.sh
scripts/build.sh macer_bench
build=${BUILD_DIR:-build}
"$build/bench/macer_bench" --device "$device" --json "$out/ours.json" "$@"
# The same cases in PyTorch: macer_bench's --filter/-f (and --repeats/--warmup) go to it too.
torch_flags=()
while [ $# -gt 0 ]; do
  case $1 in
    --filter | -f | --repeats | --warmup) [ $# -ge 2 ] && torch_flags+=("${1/#-f/--filter}" "$2") && shift ;;
    --filter=* | --repeats=* | --warmup=*) torch_flags+=("$1") ;;
  esac
  shift
done
echo
"$py" bench/torch_reference.py --device "$device" --json "$out/torch.json" "${torch_flags[@]}"
echo
"$py" - "$out/ours.json" "$out/torch.json" <<'PY'
import json, sys
ours = {r["name"]: r for r in json.load(open(sys.argv[1]))["results"]}
theirs = {r["name"]: r for r in json.load(open(sys.argv[2]))["results"]}
print(f"{'case':28s} {'ours ms':>10s} {'torch ms':>10s} {'ours/torch':>11s} {'speed-up':>9s}")
# A ".folded" case (the inference form macer_certify runs) is set beside PyTorch's eval model.
for name, o in ours.items():
    t = theirs.get(name[:-len(".folded")] if name.endswith(".folded") else name)
    if t is None:
        continue
    ratio = o["median_s"] / t["median_s"]
    print(f"{name:28s} {o['median_s']*1e3:10.3f} {t['median_s']*1e3:10.3f} {ratio:11.3f} {1/ratio:8.2f}x")
PY
