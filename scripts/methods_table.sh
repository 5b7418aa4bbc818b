#!/usr/bin/env bash
# The README's table of training methods: trains configs/methods/fashion-mnist-<method>.toml for
# each method, certifies every 20th Fashion-MNIST test image with n = 1000, prints one row each.
# Usage: scripts/methods_table.sh [OUT_DIR] [METHOD ...]   (default: runs/methods-table, all three)
# TRAIN_ARGS / CERTIFY_ARGS in the environment add flags (a quick trial: TRAIN_ARGS="--set
# data.train_count=640" CERTIFY_ARGS="--count 40").
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/methods-table}
shift || true
methods=("$@")
[ ${#methods[@]} -gt 0 ] || methods=(smoothadv consistency smoothmix)
mkdir -p "$out"
for m in "${methods[@]}"; do
  build/bin/macer_train "configs/methods/fashion-mnist-$m.toml" --set run.checkpoint_dir="$out/$m" --overwrite ${TRAIN_ARGS:-} \
    > "$out/$m.train.log" 2>&1
  build/bin/macer_certify --checkpoint "$out/$m/checkpoint.safetensors" --skip 20 --n0 100 --n 1000 \
    --output "$out/$m.tsv" --json "$out/$m.json" --overwrite ${CERTIFY_ARGS:-} > "$out/$m.certify.log" 2>&1
done
echo "| method | s/epoch | r = 0 | 0.25 | 0.5 | 0.75 | ACR |"
echo "|---|---|---|---|---|---|---|"
for m in "${methods[@]}"; do
  python3 - "$out/$m/train.jsonl" "$out/$m.json" "$m" <<'PY'
import json, sys
epochs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
s = json.load(open(sys.argv[2]))
s = s[0] if isinstance(s, list) else s
acc = dict(zip([round(r, 2) for r in s["radii"]], s["certified_accuracy"]))
secs = sum(e["seconds"] for e in epochs) / len(epochs)
print(f"| {sys.argv[3]} | {secs:.0f} | " + " | ".join(f"{acc[r]:.3f}" for r in (0.0, 0.25, 0.5, 0.75)) +
      f" | {s['acr']:.3f} |")
PY
done
