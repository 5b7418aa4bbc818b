#!/usr/bin/env bash
# End-to-end checks of bin/macer_train and bin/macer_certify as a user runs them (ctest: cli_safety):
# no run overwritten, divergence and failed writes end in one error line and a non-zero exit,
# certification resumes to the same rows, outputs are checked before any work.
# Usage: test_cli_safety.sh BIN_DIR
set -uo pipefail
source "$(dirname "$0")/lib.sh"
bin=$1
work=$(mktemp -d "${TMPDIR:-/tmp}/macer_cli_safety.XXXXXX")
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
epochs = 2
batch = 16
lr = 0.02
[run]
device = "cpu"
checkpoint_dir = "run"
checkpoint_every = 1
print_every = 1000
TOML
ckpt=run/checkpoint.safetensors

# ---- training -------------------------------------------------------------------------------
expect_ok "train" "$bin/macer_train" tiny.toml
expect_fail "rerun refused" "already holds a run.*--resume.*--overwrite" "$bin/macer_train" tiny.toml
[ "$(wc -l <run/train.jsonl)" -eq 2 ] && ok || bad "log kept after a refused rerun"
expect_ok "finished resume" "$bin/macer_train" tiny.toml --resume "$ckpt"
grep -q "nothing to train" err.log && ok || bad "a finished run says so"
expect_fail "resume with another sigma" "sigma.*--allow-changes" "$bin/macer_train" tiny.toml --resume "$ckpt" \
  --set objective.sigma=0.5 --set optim.epochs=3
expect_fail "divergence" "became NaN or infinite at epoch [0-9]+ step [0-9]+ .*lower optim.lr.*last finite checkpoint" \
  "$bin/macer_train" tiny.toml --resume "$ckpt" --set optim.lr=100 --set optim.weight_decay=1 --set optim.epochs=10
expect_fail "log on a full disk" "/dev/full.*writing the log failed" "$bin/macer_train" tiny.toml \
  --set 'run.checkpoint_dir="run_full"' --set 'run.log_file="/dev/full"'
[ -c /dev/full ] && ok || bad "/dev/full is still a device"
mkdir -p a_folder
expect_fail "config is a folder" "a_folder: is a folder" "$bin/macer_train" a_folder
expect_fail "unwritable checkpoint dir" "run.checkpoint_dir.*Not a directory" "$bin/macer_train" tiny.toml \
  --set 'run.checkpoint_dir="tiny.toml/sub"'
expect_fail "huge depth" "resnet99999999999999.*too large" "$bin/macer_train" tiny.toml --set model.name=resnet99999999999999 \
  --set 'run.checkpoint_dir="run_depth"'

# ---- certification -------------------------------------------------------------------------
cert=("$bin/macer_certify" --checkpoint "$ckpt" --n0 20 --n 200 --batch 100 --device cpu)
expect_ok "certify" "${cert[@]}" --count 6 --output full.tsv
expect_fail "existing output refused" "full.tsv exists.*--resume.*--overwrite" "${cert[@]}" --count 6 --output full.tsv
before=$(md5sum full.tsv)
expect_fail "bad flag leaves the output alone" "n0" "${cert[@]}" --count 6 --output full.tsv --overwrite --n0 zero
[ "$(md5sum full.tsv)" = "$before" ] && ok || bad "output untouched after a bad flag"
expect_ok "certify the first half" "${cert[@]}" --count 3 --output part.tsv
printf '3\t1\t' >>part.tsv  # the half row a kill leaves
expect_ok "resume" "${cert[@]}" --count 6 --output part.tsv --resume
if diff <(cut -f1-5 full.tsv) <(cut -f1-5 part.tsv) >/dev/null; then ok; else bad "resumed rows differ from an uninterrupted run"; fi
expect_fail "resume with another sigma" "sigma = .* this run has" "${cert[@]}" --count 6 --output part.tsv --resume --sigma 0.5
expect_fail "count 0" "no images to certify" "${cert[@]}" --count 0
expect_fail "start past the end" "no images to certify" "${cert[@]}" --start 100000
expect_fail "--config is gone" "config" "${cert[@]}" --config tiny.toml
expect_fail "json into a missing folder" "--json .*No such file or directory" "${cert[@]}" --count 1 --json nowhere/s.json
expect_fail "plot into a folder" "--plot .*is a folder" "${cert[@]}" --count 1 --plot a_folder
expect_fail "a folder without a checkpoint" "a_folder/checkpoint.safetensors: cannot open: No such file or directory" \
  "$bin/macer_certify" --checkpoint a_folder --count 1
ln -s real.json link.json
expect_ok "json through a symlink" "$bin/macer_certify" --summarize full.tsv --json link.json
[ -L link.json ] && [ -s real.json ] && ok || bad "the symlink stays and its target is written"
{ head -n 2 full.tsv; sed -n 2p full.tsv; } >dup.tsv
expect_fail "summarize refuses duplicates" "already given on line 2" "$bin/macer_certify" --summarize dup.tsv
expect_fail "summary json on a full disk" "/dev/full" "$bin/macer_certify" --summarize full.tsv --json /dev/full
[ -c /dev/full ] && ok || bad "/dev/full is still a device"

expect_ok "resume of an output that is not there yet" "${cert[@]}" --count 1 --output fresh_resume.tsv --resume
has "it says it starts the file" out.log "^note: --resume: fresh_resume.tsv does not exist yet, so this run starts it"

finish
