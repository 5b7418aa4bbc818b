#!/usr/bin/env bash
# --precision fp32|bf16 as a user runs it (ctest: cli_precision): a bf16 training records its
# precision in the checkpoint and a resume keeps it; certification records it in the run record
# and its resume keeps it; bad values end in one error line; bf16 and fp32 certification of one
# checkpoint agree on at least 98% of the predictions (here a tiny LeNet; the quickstart's in
# test_bf16_quickstart.sh).
# Usage: test_precision.sh BIN_DIR
set -uo pipefail
source "$(dirname "$0")/lib.sh"
bin=$1
work=$(mktemp -d "${TMPDIR:-/tmp}/macer_cli_precision.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
# The JSON header of a safetensors file (8-byte length, then the header).
header() { python3 -c 'import json,struct,sys; f=open(sys.argv[1],"rb"); n=struct.unpack("<Q",f.read(8))[0]; print(json.loads(f.read(n))["__metadata__"].get("precision","(none)"))' "$1"; }

cat >tiny.toml <<'TOML'
[data]
dataset = "synthetic"
synthetic_size = 64
synthetic_classes = 3
[model]
name = "lenet"
[objective]
sigma = 0.25
k = 2
lambda = 2.0
[optim]
epochs = 1
batch = 16
lr = 0.05
[run]
device = "cpu"
checkpoint_dir = "run"
checkpoint_every = 1
print_every = 1000
TOML
ckpt=run/checkpoint.safetensors

# ---- training ----------------------------------------------------------------------------------
expect_fail "unknown precision" "run.precision.*fp16" "$bin/macer_train" tiny.toml --set 'run.precision="fp16"'
expect_fail "unknown --precision" "precision" "$bin/macer_train" tiny.toml --precision fp16
expect_ok "train in bf16" "$bin/macer_train" tiny.toml --precision bf16
[ "$(header $ckpt)" = bf16 ] && ok || bad "checkpoint metadata precision: $(header $ckpt)"
grep -q "precision = 'bf16'" out.log && ok || bad "the resolved configuration shows run.precision"
expect_fail "resume in fp32 refused" 'run.precision = "bf16".*asks for "fp32"' "$bin/macer_train" tiny.toml \
  --resume "$ckpt" --set optim.epochs=2
expect_fail "resume in fp32 refused with --allow-changes too" "run.precision" "$bin/macer_train" tiny.toml \
  --resume "$ckpt" --set optim.epochs=2 --allow-changes
expect_ok "resume in bf16" "$bin/macer_train" tiny.toml --resume "$ckpt" --set optim.epochs=2 --precision bf16
[ "$(wc -l <run/train.jsonl)" -eq 2 ] && ok || bad "resumed log has 2 epochs"
expect_ok "train in fp32 (default)" "$bin/macer_train" tiny.toml --set 'run.checkpoint_dir="run32"'
[ "$(header run32/checkpoint.safetensors)" = fp32 ] && ok || bad "fp32 checkpoint metadata"
expect_fail "bf16 on cuda refused" "bf16 runs on the CPU only|CUDA" "$bin/macer_train" tiny.toml \
  --precision bf16 --set 'run.device="cuda"' --set 'run.checkpoint_dir="run_cuda"'

# ---- certification -----------------------------------------------------------------------------
cert=("$bin/macer_certify" --checkpoint "$ckpt" --n0 20 --n 100 --batch 100 --device cpu)
expect_fail "unknown certify precision" "precision" "${cert[@]}" --count 2 --precision fp16
expect_ok "certify in bf16" "${cert[@]}" --count 2 --output b.tsv --precision bf16
grep -q '"precision": "bf16"' b.tsv.run.json && ok || bad "run record holds the precision"
grep -q 'precision bf16' out.log && ok || bad "the start line names the precision"
expect_fail "resume in fp32 refused" "precision = bf16, this run has fp32" "${cert[@]}" --count 4 --output b.tsv --resume
expect_ok "resume in bf16" "${cert[@]}" --count 4 --output b.tsv --resume --precision bf16
[ "$(($(wc -l <b.tsv) - 1))" -eq 4 ] && ok || bad "resumed TSV has 4 rows"
grep -q '"activations": "bf16"' b.tsv.run.json && ok || bad "run record holds bf16 activations"
# A bf16 record from before bf16 activations (its activations were fp32) is not continued.
python3 -c 'import json,sys; p=sys.argv[1]; r=json.load(open(p)); assert r.pop("activations")=="bf16"; json.dump(r,open(p,"w"))' b.tsv.run.json
expect_fail "old bf16 record refuses bf16 activations" "activations = fp32, this run has bf16" "${cert[@]}" --count 5 \
  --output b.tsv --resume --precision bf16
# A record from before the key existed counts as fp32.
expect_ok "certify in fp32" "${cert[@]}" --count 2 --output f.tsv
python3 -c 'import json,sys; p=sys.argv[1]; r=json.load(open(p)); assert r.pop("precision")=="fp32"; json.dump(r,open(p,"w"))' f.tsv.run.json
expect_ok "old record resumes in fp32" "${cert[@]}" --count 3 --output f.tsv --resume
expect_fail "old record refuses bf16" "precision = fp32, this run has bf16" "${cert[@]}" --count 4 --output f.tsv \
  --resume --precision bf16

# ---- agreement: PREDICT of one checkpoint in both precisions, 50 images -------------------------
pred=("$bin/macer_certify" --checkpoint run32/checkpoint.safetensors --predict --n 100 --batch 100 --device cpu --count 50)
expect_ok "predict fp32" "${pred[@]}" --output p32.tsv
expect_ok "predict bf16" "${pred[@]}" --output p16.tsv --precision bf16
agree=$(paste p32.tsv p16.tsv | awk -F'\t' 'NR > 1 { n++; if ($3 == $(NF/2 + 3)) a++ } END { printf "%d %d", a, n }')
read -r a n <<<"$agree"
echo "bf16 vs fp32 predictions: $a of $n agree"
[ "$n" -eq 50 ] && [ $((100 * a)) -ge $((98 * n)) ] && ok || bad "bf16 agrees with fp32 on $a of $n predictions (< 98%)"

finish
