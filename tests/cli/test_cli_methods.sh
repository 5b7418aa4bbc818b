#!/usr/bin/env bash
# bin/macer_train with every training method as a user runs it (ctest: cli_methods): SmoothAdv,
# Consistency (+ SmoothAdv) and SmoothMix train on a tiny set and log their schedules; bad
# hyperparameters end in one `error:` line naming the key and a non-zero exit.
# Usage: test_cli_methods.sh BIN_DIR
set -uo pipefail
source "$(dirname "$0")/lib.sh"
bin=$1
work=$(mktemp -d "${TMPDIR:-/tmp}/macer_cli_methods.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

cat >tiny.toml <<'TOML'
[data]
dataset = "synthetic"
synthetic_size = 32
synthetic_classes = 3
[model]
name = "lenet"
[objective]
name = "gaussian"
sigma = 0.25
k = 2
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

expect_ok "smoothadv" "$bin/macer_train" tiny.toml --set run.checkpoint_dir=adv --set attack.name=pgd \
  --set attack.eps=0.5 --set attack.steps=2 --set attack.warmup_epochs=2
grep -q '"attack_eps":0.25' adv/train.jsonl && grep -q '"attack_eps":0.5' adv/train.jsonl && ok ||
  bad "eps warm-up in the log: $(cat adv/train.jsonl)"
expect_ok "consistency + smoothadv" "$bin/macer_train" tiny.toml --set run.checkpoint_dir=cons \
  --set objective.name=consistency --set objective.lambda=10 --set attack.name=pgd
expect_ok "smoothmix" "$bin/macer_train" tiny.toml --set run.checkpoint_dir=mix --set objective.name=smoothmix \
  --set attack.name=smoothmix --set attack.warmup_epochs=2 --set objective.eta=5
grep -q '"smoothmix_weight":0.5' mix/train.jsonl && grep -q '"smoothmix_weight":1' mix/train.jsonl && ok ||
  bad "w_e warm-up in the log: $(cat mix/train.jsonl)"
expect_fail "resume with another attack" "attack pgd.*--allow-changes" "$bin/macer_train" tiny.toml \
  --set run.checkpoint_dir=adv --resume adv/checkpoint.safetensors --set optim.epochs=3

expect_fail "eps < 0" "attack.eps.*out of range" "$bin/macer_train" tiny.toml --set attack.name=pgd --set attack.eps=-1
expect_fail "T < 1" "attack.steps.*out of range" "$bin/macer_train" tiny.toml --set attack.name=pgd --set attack.steps=0
expect_fail "smoothmix attack with gaussian" "attack.name" "$bin/macer_train" tiny.toml --set attack.name=smoothmix
expect_fail "smoothmix with pgd" "attack.name" "$bin/macer_train" tiny.toml --set objective.name=smoothmix \
  --set attack.name=pgd
expect_fail "consistency k = 1" "objective.k.*k >= 2" "$bin/macer_train" tiny.toml --set objective.name=consistency \
  --set objective.k=1
expect_fail "alpha 0" "attack.alpha" "$bin/macer_train" tiny.toml --set objective.name=smoothmix \
  --set attack.name=smoothmix --set attack.alpha=0
expect_fail "mix_step 2" "attack.mix_step" "$bin/macer_train" tiny.toml --set attack.mix_step=2

finish
