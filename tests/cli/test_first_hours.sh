#!/usr/bin/env bash
# A new user's first hours with the programs (ctest: cli_first_hours; issue 21): every command
# the README and the configs print exists and takes its flags, refusals say what to do, and a
# resumed certification, its summary, JSON and .mat equal the uninterrupted run exactly.
# Usage: test_first_hours.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/lib.sh"
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd)
bin=$build/bin
work=$(mktemp -d "${TMPDIR:-/tmp}/macer_first_hours.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

# ---- 1. every command a user copies runs as written ------------------------------------------
# The README's shell blocks and the configs' "Train:" comments: each program they start exists
# where they say (relative to the repository, as a user in it types them), and each --flag they
# pass is one the program knows (its --help lists it).
prog_path() {  # the program a README path names, in this build
  case $1 in
    build/bin/*) echo "$bin/${1#build/bin/}" ;;
    build/bench/*) echo "$build/bench/${1#build/bench/}" ;;
    *) echo "$src/$1" ;;
  esac
}
check_command() {  # check_command WHERE LINE
  local where=$1 line=$2 word prog
  for word in $line; do
    case $word in
      build/bin/* | build/bench/* | bin/* | bench/* | scripts/*)
        prog=$(prog_path "$word")
        if [[ $word == build/bench/* && ! -d $build/bench ]]; then
          echo "note: $word not checked (this build has MACER_BENCH=OFF)"
          return
        fi
        if [[ $word == bin/* || ! -x $prog ]]; then bad "$where: '$word' is not a program ($line)"; return; fi
        if [[ $word == build/* ]]; then
          local help
          help=$("$prog" --help 2>&1)
          local flag
          for flag in $(grep -oE -- '(^| )--[a-zA-Z][a-zA-Z0-9-]*' <<<"${line#*"$word"}"); do
            grep -qE -- "(^|[ ,])$flag([ ,=]|$)" <<<"$help" || bad "$where: $word does not know $flag"
          done
        fi
        ok
        return
        ;;
    esac
  done
}
commands=0
while IFS= read -r line; do
  check_command README.md "$line"
  commands=$((commands + 1))
done < <(awk '/^```sh/{on=1; next} /^```/{on=0} on' "$src/README.md" | sed -e 's/#.*//' |
         awk '{ if (sub(/\\$/, "")) { held = held $0 } else { print held $0; held = "" } }' | grep -E '(bin|bench|scripts)/')
[ "$commands" -ge 15 ] && ok || bad "README: only $commands commands found"
# Inline commands of the README's prose (`build/bin/macer_train ...`) never say bin/ for build/bin/.
if grep -nE '(^|[ `(])bin/macer_(train|certify)' "$src/README.md" | grep -v '^[0-9]*:## '; then
  bad "README names bin/macer_* (the sources) for a program"
else ok; fi
# The README's table of contents leads to its headings.
python3 - "$src/README.md" <<'PY' && ok || bad "README: a contents link leads nowhere"
import re, sys
text = open(sys.argv[1]).read()
heads = {re.sub(r"[^a-z0-9 _-]", "", l[3:].strip().lower()).replace(" ", "-")
         for l in text.splitlines() if l.startswith("## ")}
missing = [a for a in re.findall(r"\]\(#([^)]+)\)", text) if a not in heads]
if missing: sys.exit("no heading for " + ", ".join(missing))
PY
# Every config says in its first lines how to run it (the README says so), and that command runs.
for cfg in "$src"/configs/*.toml "$src"/configs/methods/*.toml; do
  line=$(head -n 8 "$cfg" | grep -oE 'Train: .*' | sed 's/^Train: //')
  if [ -z "$line" ]; then bad "${cfg#"$src"/}: no 'Train: build/bin/macer_train ...' in its first lines"; continue; fi
  [ "$line" = "build/bin/macer_train ${cfg#"$src"/}" ] && ok || bad "${cfg#"$src"/}: 'Train: $line' names another config"
  check_command "$(basename "$cfg")" "$line"
  # ... and the config it names parses.
  (cd "$src" && "$(prog_path "${line%% *}")" ${line#* } --print-config >/dev/null 2>"$work/err.log") && ok ||
    bad "$(basename "$cfg"): '$line --print-config' fails: $(tail -n 1 "$work/err.log")"
done
# The design documents lie beside the repository: configs and README cite ../shared/SPEC.md.
bare=$(cd "$src" && grep -rnE '(^|[^/])SPEC\.md' README.md configs | head -3)
[ -z "$bare" ] && ok || bad "SPEC.md cited without ../shared/: $bare"
# data.train_count is a class-balanced sample drawn with run.seed, not the first N images.
first=$(cd "$src" && grep -rniE 'the first [0-9,]+ (Fashion-MNIST|images)' README.md configs | head -3)
[ -z "$first" ] && ok || bad "train_count described as the first N images: $first"
"$bin/macer_train" --version | grep -qE '^macer_train [0-9a-f]{7,}|^macer_train unknown' && ok || bad "macer_train --version"
"$bin/macer_certify" --version | grep -qE '^macer_certify ' && ok || bad "macer_certify --version"

# ---- 2. refusals point the right way ---------------------------------------------------------
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
expect_fail "typo in a key" "optim.eopchs.*did you mean 'optim.epochs'" "$bin/macer_train" tiny.toml --set optim.eopchs=3
{ cat tiny.toml; printf '[optm]\nlr = 0.1\n'; } >typo.toml
expect_fail "unknown section" "typo.toml:[0-9]+: unknown section \[optm\].*did you mean 'optim'" "$bin/macer_train" typo.toml
expect_fail "run folder taken" "already holds a run.*--resume run,.*--overwrite" "$bin/macer_train" tiny.toml
expect_ok "resume a run folder" "$bin/macer_train" tiny.toml --resume run --set optim.epochs=2
grep -q "resuming at epoch 2 of 2 (after the checkpoint.s 1)" err.log && ok || bad "resume says where it starts: $(cat err.log)"
grep -qF "saying \`resuming at epoch N of M (after the checkpoint's K)\`" "$src/README.md" && ok ||
  bad "the README quotes the resume line as the program prints it"
[ "$(wc -l <run/train.jsonl)" -eq 2 ] && ok || bad "the resumed run logs epoch 2"
# ---- 7. what Cohen's and MACER's users expect in training ------------------------------------
expect_ok "gaussian with kept checkpoints" "$bin/macer_train" tiny.toml --set 'run.checkpoint_dir="gauss"' \
  --set objective.name=gaussian --set optim.epochs=2 --set run.keep_every=1
[ -f gauss/epoch_1.safetensors ] && [ -f gauss/epoch_2.safetensors ] && [ -f gauss/checkpoint.safetensors ] && ok ||
  bad "run.keep_every = 1 keeps every epoch's checkpoint: $(ls gauss)"
grep -qE '^epoch 2: loss [0-9.]+ smoothed-acc' err.log && ! grep -q ' cl ' err.log && ok ||
  bad "the Gaussian log has no MACER terms: $(grep '^epoch' err.log)"
python3 -c "
import json
for l in open('gauss/train.jsonl'):
    j = json.loads(l)
    assert 'cl' not in j and 'lambda' not in j and 'loss' in j, j
" && ok || bad "the Gaussian JSON log has no MACER terms"
python3 -c "
import json
for l in open('gauss/train.jsonl'):
    j = json.loads(l)
    assert 0 <= j['test_accuracy'] <= 1 and j['test_loss'] > 0, j
" && ok || bad "each epoch logs the noisy test loss and accuracy (Cohen's train.py)"
grep -qE '^epoch 1: .*\| test loss [0-9.]+ acc [0-9.]+' err.log && ok || bad "the epoch line shows the test loss"
expect_ok "no test pass" "$bin/macer_train" tiny.toml --set 'run.checkpoint_dir="notest"' --set run.test_every=0
! grep -q test_loss notest/train.jsonl && ok || bad "run.test_every = 0 logs no test loss"
expect_ok "resume from a kept epoch" "$bin/macer_train" tiny.toml --set 'run.checkpoint_dir="gauss_b"' \
  --set objective.name=gaussian --set optim.epochs=2 --resume gauss/epoch_1.safetensors
grep -q "resuming at epoch 2 of 2 (after the checkpoint.s 1)" err.log && ok || bad "resume from epoch_1: $(tail -n 2 err.log)"

expect_fail "failed start" "unknown model" "$bin/macer_train" tiny.toml --set 'run.checkpoint_dir="fresh"' --set model.name=lenett
[ ! -e fresh ] && ok || bad "a failed start leaves its run folder: $(ls -A fresh)"
mkdir -p kept
expect_fail "failed start in a folder of the user's" "unknown model" "$bin/macer_train" tiny.toml \
  --set 'run.checkpoint_dir="kept"' --set model.name=lenett
[ -d kept ] && [ -z "$(ls -A kept)" ] && ok || bad "a folder the user made stays, without a lock file"
python3 -c "import pickle; pickle.dump({'net': {}}, open('legacy.pth', 'wb'), protocol=2)"
python3 -c "import zipfile; z = zipfile.ZipFile('zip.pth', 'w'); z.writestr('archive/data.pkl', b'x'); z.close()"
expect_fail "legacy .pth" "legacy.pth: is a PyTorch file.*scripts/convert_checkpoint.py legacy.pth" \
  "$bin/macer_certify" --checkpoint legacy.pth --model lenet
expect_fail "zip .pth" "zip.pth: is a PyTorch file.*convert_checkpoint.py" "$bin/macer_certify" --checkpoint zip.pth
# --model on a file with this engine's metadata (a converted model): its data set and sigma are read.
expect_ok "--model reads the metadata" "$bin/macer_certify" --checkpoint "$ckpt" --model lenet --n0 10 --n 50 \
  --count 1 --device cpu
expect_fail "missing data set names --data-dir and the source" \
  "cannot open.*--data-dir.*current folder.*(cifar-10-batches-py|kriz)" \
  "$bin/macer_certify" --checkpoint "$ckpt" --dataset cifar10 --count 1 --device cpu

# ---- 4. one run, one number ------------------------------------------------------------------
# sigma 2 on this model: radii that differ between images and are not round.
cert=("$bin/macer_certify" --checkpoint "$ckpt" --sigma 2 --n0 20 --n 300 --batch 100 --device cpu --mode both)
expect_ok "certify" "${cert[@]}" --count 8 --output full.tsv --json full.json --mat full.mat
expect_ok "certify half" "${cert[@]}" --count 4 --output part.tsv
printf '4\t0.1' >>part.tsv.radii  # a kill between the two files
printf '4\t1\t' >>part.tsv
expect_ok "resume" "${cert[@]}" --count 8 --output part.tsv --resume --json part.json --mat part.mat
expect_ok "summarize" "$bin/macer_certify" --summarize full.tsv --json summary.json
cmp -s full.mat part.mat && ok || bad "the resumed .mat differs from the uninterrupted one"
numbers() { python3 -c "
import json, sys
print([(s['acr'], s['certified_accuracy'], s['radii']) for s in json.load(open(sys.argv[1]))])" "$1"; }
[ "$(numbers full.json)" = "$(numbers part.json)" ] && ok || bad "resumed JSON: $(numbers part.json) != $(numbers full.json)"
[ "$(numbers full.json)" = "$(numbers summary.json)" ] && ok || bad "--summarize: $(numbers summary.json) != $(numbers full.json)"
# The test can fail: the TSV's 3-digit radii alone give another ACR.
rounded=$(awk -F'\t' 'NR > 1 { s += $5 * $4 } END { printf "%.12f", s / (NR - 1) }' full.tsv)
full=$(python3 -c "import json; print('%.12f' % json.load(open('full.json'))[0]['acr'])")
[ "$rounded" != "$full" ] && ok || bad "the radii here are round: the test above proves nothing ($full)"
python3 -c "
import json, sys
s = json.load(open('full.json'))
run = s[0]['run']
for k in ('sigma', 'n0', 'n', 'alpha', 'model', 'checkpoint', 'checkpoint_path', 'dataset', 'input'):
    assert k in run, k
assert run['sigma'] == 2 and run['n'] == 300 and run['model'] == 'lenet' and run['input'] == '3x32x32', run
assert s[0]['label'] == 'full (hard)', s[0]['label']
assert json.load(open('summary.json'))[0]['run']['n0'] == 20
" 2>err.log && ok || bad "the summary JSON records the run: $(tail -n 1 err.log)"
python3 -c "
import json
r = json.load(open('full.tsv.run.json'))
assert r['model'] == 'lenet' and r['normalize'] == 'none' and r['input'] == '3x32x32', r
assert '(from' not in json.dumps(r), r
" 2>err.log && ok || bad "the run record holds what ran: $(tail -n 1 err.log)"
expect_ok "certify without --output" "${cert[@]}" --count 2 --json noout.json
python3 -c "import json; assert json.load(open('noout.json'))[0]['label'] == 'run (hard)'" && ok ||
  bad "without --output the label is the run folder's name"
cp full.tsv edited.tsv && sed '2s/\t[0-9.e+-]*\t/\t9.99\t/' full.tsv.radii >edited.tsv.radii
expect_fail "radii that disagree" "edited.tsv.radii line 2 does not match edited.tsv" "$bin/macer_certify" --summarize edited.tsv

# ---- 5. the startup line says when a range is cut short ---------------------------------------
expect_ok "range cut short" "${cert[@]}" --start 62 --count 5
grep -q "images 62, 63: 2 of the 5 asked for, the test split has 64 images" out.log && ok ||
  bad "cut range: $(head -n 1 out.log)"
expect_ok "range cut to one image" "${cert[@]}" --start 63 --count 5
grep -q "; image 63: 1 of the 5 asked for" out.log && ok || bad "one image left names only it: $(head -n 1 out.log)"

expect_ok "predict" "$bin/macer_certify" --checkpoint "$ckpt" --predict --n 50 --count 2 --device cpu --output predict.tsv
# ---- 8. Cohen's flag names, the radius grid --------------------------------------------------
expect_ok "Cohen's flags" "$bin/macer_certify" --checkpoint "$ckpt" --N0 20 --N 100 --alpha 0.001 --batch 100 \
  --skip 2 --max 6 --device cpu --output cohen.tsv
[ "$(cut -f1 cohen.tsv | tr '\n' ' ')" = "idx 0 2 4 " ] && ok || bad "--skip 2 --max 6: $(cut -f1 cohen.tsv | tr '\n' ' ')"
expect_ok "radius grid by sigma" "$bin/macer_certify" --summarize full.tsv --json grid.json
python3 -c "import json; r = json.load(open('grid.json'))[0]['radii']; assert r[-1] == 8.0 and r[1] == 0.25, r" &&
  ok || bad "sigma 2 reports radii up to 4 sigma"
expect_ok "radius grid flags" "$bin/macer_certify" --summarize full.tsv --radius-step 0.5 --radius-max 1 --json g.json
python3 -c "import json; assert json.load(open('g.json'))[0]['radii'] == [0, 0.5, 1]" && ok || bad "--radius-step/--radius-max"

expect_fail "one file given twice" "full.tsv is given twice" "$bin/macer_certify" --summarize full.tsv ./full.tsv
expect_ok "shard 0 of 2" "${cert[@]}" --count 4 --shard 0/2 --output s0.tsv
expect_ok "shard 1 of 2" "${cert[@]}" --count 4 --shard 1/2 --output s1.tsv
expect_ok "shards merged" "$bin/macer_certify" --summarize s0.tsv s1.tsv --output all.tsv --json merged.json
python3 -c "import json; l = json.load(open('merged.json'))[0]['label']; assert l.startswith('all '), l" && ok ||
  bad "a merge written to all.tsv is labelled all: $(head -c 300 merged.json)"

# ---- 3. tables and figures for a paper ------------------------------------------------------
expect_ok "markdown and latex tables" "$bin/macer_certify" --summarize full.tsv part.tsv --radius-max 1 \
  --markdown t.md --latex t.tex
[ "$(sed -n 1p t.md)" = "|  | r = 0.00 | r = 0.25 | r = 0.50 | r = 0.75 | r = 1.00 | ACR |" ] &&
  grep -q '^| full (hard) |' t.md && ok || bad "markdown table: $(cat t.md)"
grep -q '^\\begin{tabular}{lcccccc}$' t.tex && grep -q '^full (hard) & ' t.tex && grep -q '^\\bottomrule$' t.tex && ok ||
  bad "latex table: $(cat t.tex)"
expect_ok "figures" "$src/scripts/plot_certify.py" full.tsv cohen.tsv --label MACER --label Cohen --title "a title" \
  -o fig.pdf -o fig.svg -o fig.png
[ "$(head -c 5 fig.pdf)" = "%PDF-" ] && grep -q "<svg" fig.svg && [ "$(head -c 4 fig.png | tail -c 3)" = "PNG" ] && ok ||
  bad "figures in PDF, SVG and PNG"
grep -q "MACER (hard)" fig.svg && grep -q "a title" fig.svg && ok || bad "legend names and title in the SVG"
expect_fail "figure of a PREDICT file" "no radii" "$src/scripts/plot_certify.py" predict.tsv -o p.png
# beside a certification TSV, a PREDICT file is left out with a note (as --summarize --plot does)
expect_ok "figure with a PREDICT file beside" "$src/scripts/plot_certify.py" full.tsv predict.tsv -o fp.png
has "the PREDICT file left out, said" err.log "^note: predict.tsv is PREDICT \(no radii\): left out of the plot$"

finish
