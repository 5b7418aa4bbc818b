#!/usr/bin/env bash
# Whole-program checks of paths that unit tests cannot reach, run by gpu-run.sh on the GPU machine
# (DEVICE=cpu runs them here): the folded inference form certifies the rows of the model form,
# and training under `mpirun -np 1` (the NCCL all-reduce on CUDA) gives the weights of a run
# without mpirun. Usage: scripts/gpu-validate.sh BUILD_DIR OUT_DIR; exit 1 when a check fails.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd -P)
bin=$(cd "${1:-build}" && pwd -P)/bin
out=$(mkdir -p "${2:-gpu-run-out}" && cd "${2:-gpu-run-out}" && pwd -P)/validate
device=${DEVICE:-cuda}
rm -rf "$out" && mkdir -p "$out" && cd "$out" || exit 1
failed=0
check() {  # check NAME COMMAND...: runs it, logs to NAME.log, counts a failure
  local name=$1
  shift
  if "$@" >"$name.log" 2>&1; then echo "validate: $name: ok"; else echo "validate: $name: FAILED ($(tail -n 1 "$name.log"))"; failed=1; fi
}
cat >tiny.toml <<TOML
[data]
dataset = "synthetic"
synthetic_size = 256
synthetic_classes = 3
[model]
name = "lenet"
[objective]
sigma = 0.25
k = 2
lambda = 2.0
[optim]
epochs = 2
batch = 32
lr = 0.02
[run]
device = "$device"
checkpoint_every = 1
print_every = 1000
TOML

# 1. folded == model: a ResNet-20 trained briefly, certified both ways on the same images.
check train_resnet20 "$bin/macer_train" tiny.toml --set model.name='"resnet20"' \
  --set data.synthetic_size=128 --set optim.epochs=1 --set 'run.checkpoint_dir="resnet20"'
for form in folded model; do
  check "certify_$form" "$bin/macer_certify" --checkpoint resnet20/checkpoint.safetensors --device "$device" \
    --count 16 --n0 64 --n 512 --batch 256 --inference "$form" --output "$form.tsv"
done
# idx, label, prediction and correctness equal; radii within 2e-3 (the two forms round differently)
check folded_equals_model awk -F'\t' 'NR == FNR { r[FNR] = $0; next }
  { split(r[FNR], a, "\t"); d = a[4] - $4; if (a[1] != $1 || a[2] != $2 || a[3] != $3 || a[5] != $5 ||
    d > 2e-3 || d < -2e-3) { print "row " FNR ": " r[FNR] " vs " $0; bad = 1 } }
  END { if (FNR < 2) { print "no rows"; bad = 1 } exit bad }' folded.tsv model.tsv

# 2. mpirun -np 1 (NCCL on CUDA, MPI_Allreduce on the CPU) == no launcher.
check train_single "$bin/macer_train" tiny.toml --set 'run.checkpoint_dir="single"'
if command -v mpirun >/dev/null; then
  check train_mpirun mpirun --allow-run-as-root --oversubscribe -np 1 "$bin/macer_train" tiny.toml \
    --set 'run.checkpoint_dir="mpirun"'
  check mpirun_equals_single python3 - single/checkpoint.safetensors mpirun/checkpoint.safetensors <<'PY'
import array, json, struct, sys
def tensors(path):  # safetensors: u64 header length, JSON header, raw little-endian data
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__" or t["dtype"] != "F32":
            continue
        a, b = t["data_offsets"]
        out[name] = array.array("f", data[8 + n + a:8 + n + b])
    return out
x, y = tensors(sys.argv[1]), tensors(sys.argv[2])
assert x.keys() == y.keys(), "different tensors"
worst = max(max((abs(p - q) for p, q in zip(x[k], y[k])), default=0.0) for k in x)
print(f"largest weight difference {worst:.3g} over {len(x)} tensors")
sys.exit(0 if worst <= 1e-6 else 1)
PY
else
  echo "validate: mpirun: not on PATH (the pack's Open MPI runtime is missing): SKIPPED"
  failed=1
fi
exit "$failed"
