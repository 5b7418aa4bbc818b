#!/usr/bin/env bash
# Runs bench/macer_bench (fp32, and bf16 when built with it) and bench/torch_reference.py on the
# same device in one go: Debian's PyTorch (fp32 eager) and PyPI's current PyTorch in the modes a
# user switches on (fp32, channels_last, bf16 autocast, torch.compile + bf16), then per case ours
# over the best PyTorch variant.
# Usage: bench/compare.sh [cpu|cuda|auto] [extra macer_bench flags, e.g. --filter step.macer]
# PyPI's torch is installed on first use into bench/.venv-torch (ignored by git; about 5 GB with
# its CUDA libraries, so never in CI); MACER_BENCH_PYPI=0 skips it, MACER_BENCH_TORCH pins it.
set -euo pipefail
cd "$(dirname "$0")/.."
device=${1:-auto}
shift || true
out=${BENCH_OUT:-bench/out}
mkdir -p "$out"
rm -f "$out"/ours-*.json "$out"/torch-*.json

# The same cases in PyTorch: macer_bench's --filter/-f (and --repeats/--warmup) go to it too.
torch_flags=()
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --filter | -f | --repeats | --warmup) torch_flags+=("${args[i]/#-f/--filter}" "${args[i + 1]%.folded}") && i=$((i + 1)) ;;
    --filter=* | --repeats=* | --warmup=*) torch_flags+=("${args[i]%.folded}") ;;
  esac
done

/usr/bin/python3 -c 'import torch' 2>/dev/null || scripts/setup.sh python3-torch
venv=bench/.venv-torch
if [ "${MACER_BENCH_PYPI:-1}" != 0 ] && [ ! -x "$venv/bin/python" ]; then
  echo "compare.sh: installing PyPI's torch into $venv (first use; large download)"
  scripts/setup.sh python3-venv
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q "torch${MACER_BENCH_TORCH:+==$MACER_BENCH_TORCH}"
fi
scripts/setup.sh
scripts/build.sh macer_bench
build=${BUILD_DIR:-build}

precisions=(fp32)
"$build/bench/macer_bench" --help 2>&1 | grep -q -- '--precision' && precisions+=(bf16)
for p in "${precisions[@]}"; do
  extra=()
  [ "$p" != fp32 ] && extra=(--precision "$p")
  "$build/bench/macer_bench" --device "$device" "${extra[@]}" --json "$out/ours-$p.json" "$@"
  echo
done
/usr/bin/python3 bench/torch_reference.py --device "$device" "${torch_flags[@]}" --json "$out/torch-debian-fp32.json"
echo
if [ "${MACER_BENCH_PYPI:-1}" != 0 ]; then
  for v in fp32 channels_last bf16 compile; do
    "$venv/bin/python" bench/torch_reference.py --device "$device" --variant "$v" "${torch_flags[@]}" \
      --json "$out/torch-pypi-$v.json"
    echo
  done
fi

/usr/bin/python3 - "$out" <<'PY'
import glob, json, os, sys
out = sys.argv[1]
def load(path):
    d = json.load(open(path))
    return d, {r["name"]: r for r in d["results"]}
ours = {os.path.basename(p)[5:-5]: load(p)[1] for p in sorted(glob.glob(f"{out}/ours-*.json"))}
theirs = {}
for p in sorted(glob.glob(f"{out}/torch-*.json")):
    d, rows = load(p)
    theirs[f"{d['torch'].split('+')[0]} {d.get('variant', 'fp32')}"] = rows
cols = list(ours) + list(theirs)
print("medians in ms; a .folded case (the inference form macer_certify runs) is set beside PyTorch's eval model")
print(f"{'case':30s}" + "".join(f"{'ours ' + c if c in ours else c:>22s}" for c in cols) + f"{'ours/best':>11s}{'speed-up':>10s}")
names = list(dict.fromkeys(n for rows in ours.values() for n in rows))
for name in names:
    base = name[:-len(".folded")] if name.endswith(".folded") else name
    t = {c: rows[base]["median_s"] for c, rows in theirs.items() if base in rows}
    if not t:
        continue
    o = {c: rows[name]["median_s"] for c, rows in ours.items() if name in rows}
    cells = [o.get(c, t.get(c)) for c in cols]
    line = f"{name:30s}" + "".join(f"{v * 1e3:22.3f}" if v is not None else f"{'-':>22s}" for v in cells)
    best_ours, best_torch = min(o.values()), min(t.values())
    print(line + f"{best_ours / best_torch:11.3f}{best_torch / best_ours:9.2f}x")
PY
