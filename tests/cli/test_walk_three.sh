#!/usr/bin/env bash
# The third new-user walk's stumbles (ctest: cli_walk_three; issue 21): PREDICT files in the
# paper tables and plots, resuming into another folder, where a refused value came from, model
# names, interrupts, records, and the wording of smaller refusals, each as a user meets it.
# Usage: test_walk_three.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/lib.sh"
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd)
bin=$build/bin
work=$(mktemp -d "${TMPDIR:-/tmp}/macer_walk_three.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

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
lr = 0.02
[run]
device = "cpu"
checkpoint_dir = "run"
checkpoint_every = 1
print_every = 1000
TOML
ckpt=run/checkpoint.safetensors
expect_ok "train" "$bin/macer_train" tiny.toml

# ---- PREDICT files in --summarize's tables and plot -----------------------------------------
expect_ok "certify" "$bin/macer_certify" --checkpoint "$ckpt" --n0 20 --n 200 --batch 100 --count 4 --device cpu \
  --output A.tsv
expect_ok "predict" "$bin/macer_certify" --checkpoint "$ckpt" --predict --n 50 --count 4 --device cpu --output PRED.tsv
expect_ok "summarize certify and predict" "$bin/macer_certify" --summarize A.tsv PRED.tsv --markdown t.md \
  --latex t.tex --plot cmp.png --json s.json
has "PREDICT left out, said" out.log "^note: PRED is PREDICT \(no radii\): left out of the certified-accuracy table and the plot"
[ "$(grep -c '^| PRED |' t.md)" -eq 1 ] && ok || bad "PREDICT row in the radius table: $(cat t.md)"
has "markdown PREDICT table" t.md '^\| PREDICT \| accuracy \| abstain \| images \|$'
has "markdown PREDICT row" t.md '^\| PRED \| [01]\.[0-9]{3} \| [01]\.[0-9]{3} \| 4 \|$'
has "latex radius table" t.tex '^A & '
has "latex PREDICT table" t.tex '^PREDICT & accuracy & abstain & images'
has "latex PREDICT row" t.tex '^PRED & [01]\.[0-9]{3} & [01]\.[0-9]{3} & 4 '
[ "$(grep -c '^PRED & 0.00' t.tex)" -eq 0 ] && ok || bad "PREDICT as certified accuracy 0.00 in t.tex"
[ "$(head -c 4 cmp.png | tail -c 3)" = "PNG" ] && ok || bad "plot of A written"
expect_ok "summarize PREDICT alone with --plot" "$bin/macer_certify" --summarize PRED.tsv --plot p.png
has "no plot of PREDICT alone" out.log "^note: --plot p.png not written: PREDICT results have no radii"
[ ! -e p.png ] && ok || bad "p.png written for PREDICT alone"

finish
