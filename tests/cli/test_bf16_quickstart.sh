#!/usr/bin/env bash
# The quickstart (configs/quickstart-fashion-mnist.toml) trained in fp32 and in bf16 (ctest:
# cli_bf16_quickstart, a few minutes on 2 cores; skipped, exit 77, without Fashion-MNIST): both
# certified on the same 200 test images; certified accuracy at r = 0 and the ACR of the bf16 model
# within 0.02 of the fp32 model's, and the fp32 checkpoint certified in bf16 agreeing with its fp32
# certification on at least 98% of the predictions.
# Usage: test_bf16_quickstart.sh BIN_DIR [REPO_DIR]
set -uo pipefail
bin=$1
repo=${2:-$(cd "$(dirname "$0")/../.." && pwd)}
data=/usr/share/datasets/fashion-mnist
[ -f "$data/t10k-images-idx3-ubyte.gz" ] || { echo "no Fashion-MNIST in $data: skipped"; exit 77; }
work=$(mktemp -d "${TMPDIR:-/tmp}/macer_bf16_quickstart.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
failed=0
bad() { failed=$((failed + 1)); echo "FAILED: $*"; }
run() { "$@" >log.txt 2>&1 || { bad "$* (exit $?): $(tail -n 1 log.txt)"; }; }
for p in fp32 bf16; do
  run "$bin/macer_train" "$repo/configs/quickstart-fashion-mnist.toml" --precision $p \
    --set "run.checkpoint_dir=\"$p\"" --set 'run.device="cpu"'
  grep '"epoch"' $p/train.jsonl | tail -n 1
done
cert=(--dataset fashion-mnist --data-dir "$data" --sigma 0.25 --skip 50 --n0 100 --n 1000 --alpha 0.001 --batch 500
  --device cpu)
run "$bin/macer_certify" --checkpoint fp32/checkpoint.safetensors "${cert[@]}" --output fp32.tsv --json fp32.json
run "$bin/macer_certify" --checkpoint bf16/checkpoint.safetensors "${cert[@]}" --output bf16.tsv --json bf16.json \
  --precision bf16
run "$bin/macer_certify" --checkpoint fp32/checkpoint.safetensors "${cert[@]}" --output fp32_in_bf16.tsv --precision bf16
# Certified accuracy at r = 0 (correct and not abstained) and ACR (mean radius of the correct ones
# over all images), from Cohen's TSV: idx label predict radius correct time.
stats() { awk -F'\t' 'NR > 1 { n++; if ($5 == 1) { c++; r += $4 } } END { printf "%.4f %.4f", c / n, r / n }' "$1"; }
read -r acc32 acr32 <<<"$(stats fp32.tsv)"
read -r acc16 acr16 <<<"$(stats bf16.tsv)"
echo "trained in fp32: accuracy at r=0 $acc32, ACR $acr32; trained and certified in bf16: $acc16, $acr16"
awk -v a="$acc32" -v b="$acc16" 'BEGIN { d = a - b; exit !(d <= 0.02 && d >= -0.02) }' || bad "accuracy differs by more than 0.02"
awk -v a="$acr32" -v b="$acr16" 'BEGIN { d = a - b; exit !(d <= 0.02 && d >= -0.02) }' || bad "ACR differs by more than 0.02"
read -r a n <<<"$(paste fp32.tsv fp32_in_bf16.tsv | awk -F'\t' 'NR > 1 { n++; if ($3 == $9) a++ } END { print a, n }')"
echo "fp32 checkpoint certified in bf16: $a of $n predictions as in fp32"
[ "$n" -eq 200 ] && [ $((100 * a)) -ge $((98 * n)) ] || bad "only $a of $n predictions agree (< 98%)"
[ "$failed" -eq 0 ] && echo "bf16 quickstart: passed"
[ "$failed" -eq 0 ]
