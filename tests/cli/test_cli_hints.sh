#!/usr/bin/env bash
# Refusals of the command line that say what to do, as a new user meets them (ctest: cli_hints;
# issue 21): a stray word or an unknown flag (did you mean ...?), --version in every program, and
# a --plot name that is not a PNG's.
# Usage: test_cli_hints.sh BUILD_DIR
set -uo pipefail
source "$(dirname "$0")/lib.sh"
build=$(cd "$1" && pwd)
bin=$build/bin
work=$(mktemp -d "${TMPDIR:-/tmp}/macer_cli_hints.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

# ---- arguments a program does not take: what it takes instead ------------------------------
expect_fail "checkpoint as a positional" \
  "^error: macer_certify does not take runs/mine/checkpoint.safetensors: macer_certify takes the checkpoint as --checkpoint FILE.*; see macer_certify --help$" \
  "$bin/macer_certify" runs/mine/checkpoint.safetensors
[ "$(cat out.log)" = "" ] && ok || bad "a refusal prints nothing on stdout: $(head -3 out.log)"
expect_fail "unknown flag: the closest one" \
  "^error: macer_certify does not take --outfile x.tsv: --outfile: did you mean --output\?; see macer_certify --help$" \
  "$bin/macer_certify" --checkpoint c.safetensors --outfile x.tsv
expect_fail "unknown flag with =" "does not take --outfile=x.tsv: --outfile: did you mean --output\?" \
  "$bin/macer_certify" --checkpoint c.safetensors --outfile=x.tsv
expect_fail "each unknown flag, one line" \
  "--sigm: did you mean --sigma\?; --mdoe: did you mean --mode\?; see macer_certify --help$" \
  "$bin/macer_certify" --checkpoint c.safetensors --sigm 0.5 --mdoe hard
expect_fail "nothing close: no guess" "--frobnicate is not an option of macer_certify; see macer_certify --help$" \
  "$bin/macer_certify" --checkpoint c.safetensors --frobnicate
expect_fail "macer_train: a second config" \
  "^error: macer_train does not take b.toml: macer_train takes one config file, then flags.*see macer_train --help$" \
  "$bin/macer_train" a.toml b.toml
expect_fail "macer_train without its config: the usage" \
  "^error: config is required; usage: macer_train \[OPTIONS\] config; see macer_train --help$" "$bin/macer_train"
# An error found once the config is read (here: no data) is the only output, not a line under
# the 50 of the resolved configuration.
printf '[data]\ndataset = "cifar10"\ndir = "nowhere"\n[model]\nname = "lenet"\n' >nodata.toml
expect_fail "a refusal after the config is read" "nowhere" "$bin/macer_train" nodata.toml
[ "$(cat out.log)" = "" ] && ok || bad "stdout before the refusal: $(head -3 out.log)"
expect_fail "macer_train: a typo" "--prnt-config: did you mean --print-config\?; see macer_train --help$" \
  "$bin/macer_train" a.toml --prnt-config
[ "$(cd "$bin" && ./macer_train a.toml --overwrit 2>&1)" = \
  "error: macer_train does not take --overwrit: --overwrit: did you mean --overwrite?; see macer_train --help" ] && ok ||
  bad "the program's own name, without its folder, in the refusal"
if [ -x "$build/bench/macer_bench" ]; then
  expect_fail "macer_bench: a typo" "--fitler: did you mean --filter\?; see macer_bench --help$" \
    "$build/bench/macer_bench" --fitler conv
  expect_fail "macer_bench: a case name as a positional" "takes case names as --filter NAME" \
    "$build/bench/macer_bench" conv
fi

# ---- --version: every program prints the commit it was built from --------------------------
# (the commit, "-dirty" when the tree had changes, or "unknown" outside git: scripts/version.cmake)
version='[0-9a-f]{7,}(-dirty)?|unknown'
expect_ok "macer_train --version" "$bin/macer_train" --version
has "macer_train --version" out.log "^macer_train ($version)$"
expect_ok "macer_certify --version" "$bin/macer_certify" --version
has "macer_certify --version" out.log "^macer_certify ($version)$"
if [ -x "$build/bench/macer_bench" ]; then
  expect_ok "macer_bench --version" "$build/bench/macer_bench" --version
  has "macer_bench --version" out.log "^macer_bench ($version)$"
else
  echo "note: macer_bench --version not checked (this build has MACER_BENCH=OFF)"
fi

# ---- --plot draws PNG: another extension is refused before any work -------------------------
for name in x.jpg x.pdf x.svg plot; do
  expect_fail "--plot $name" \
    "^error: --plot $name: --plot draws PNG only, so its file must end in .png; for PDF or SVG run scripts/plot_certify.py" \
    "$bin/macer_certify" --checkpoint missing.safetensors --plot "$name"
  [ ! -e "$name" ] && ok || bad "--plot $name was written"
done
expect_fail "--plot with --summarize" "--plot x.jpg: --plot draws PNG only" \
  "$bin/macer_certify" --summarize missing.tsv --plot x.jpg
# A .png (any case) passes this check: the refusal is the missing checkpoint's.
expect_fail "--plot X.PNG" "missing.safetensors" "$bin/macer_certify" --checkpoint missing.safetensors --plot X.PNG

finish cli_hints
