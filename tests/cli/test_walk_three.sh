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

# ---- --resume of a run in another folder than run.checkpoint_dir ----------------------------
expect_ok "run B" "$bin/macer_train" tiny.toml --set 'run.checkpoint_dir="B"' --set optim.epochs=2 --set run.keep_every=1
expect_fail "resume B into another folder" "--resume B/checkpoint.safetensors continues the run in B, but run.checkpoint_dir = other.*--set run.checkpoint_dir=\"B\"" \
  "$bin/macer_train" tiny.toml --set 'run.checkpoint_dir="other"' --set optim.epochs=3 --resume B
[ ! -e other ] && ok || bad "a refused resume left the folder 'other'"
expect_ok "resume B in B" "$bin/macer_train" tiny.toml --set 'run.checkpoint_dir="B"' --set optim.epochs=3 --resume B
has "resumes at epoch 3" err.log "^resuming at epoch 3 of 3"
grep -qE "^warning:|^resume: wrote" err.log && bad "false warnings: $(cat err.log)" || ok
[ "$(wc -l <B/train.jsonl)" -eq 3 ] && ok || bad "B/train.jsonl: $(cat B/train.jsonl)"
expect_ok "branch from a kept epoch" "$bin/macer_train" tiny.toml --set 'run.checkpoint_dir="C"' --set optim.epochs=2 \
  --resume B/epoch_1.safetensors
has "branch said once" err.log "^resume: branching from B/epoch_1.safetensors \(epoch 1\) into run.checkpoint_dir = C: C/train.jsonl starts at epoch 2; the log lines of epochs 1 to 1 stay in B's log"
grep -qE "^warning:|^resume: wrote|cannot be rebuilt" err.log && bad "false warnings on a branch: $(cat err.log)" || ok
[ "$(wc -l <C/train.jsonl)" -eq 1 ] && grep -q '"epoch":2' C/train.jsonl && ok || bad "C/train.jsonl: $(cat C/train.jsonl)"

# ---- every refusal names where the value came from ---------------------------------------------
expect_fail "sigma 0 by --set" "^error: --set objective.sigma=0: key 'objective.sigma' must be > 0" \
  "$bin/macer_train" tiny.toml --set objective.sigma=0 --print-config
expect_fail "lr 0 by --set" "^error: --set optim.lr=0: key 'optim.lr' = 0" "$bin/macer_train" tiny.toml --set optim.lr=0 --print-config
expect_fail "k at sigma 0 names the file line of k and the --set that made it wrong" \
  "^error: tiny.toml:9 \(with --set objective.sigma=0\): key 'objective.k' = 2 at objective.sigma = 0" \
  "$bin/macer_train" tiny.toml --set objective.name=gaussian --set objective.sigma=0 --print-config
sed 's/^lr = 0.02$/lr = 0/' tiny.toml >lr0.toml
expect_fail "lr 0 in the file" "^error: lr0.toml:14: key 'optim.lr' = 0" "$bin/macer_train" lr0.toml --print-config
expect_fail "unknown section, did you mean" "^error: opt.toml:[0-9]+: unknown section \[optimizer\] \(did you mean 'optim'\?\)" \
  bash -c "{ cat tiny.toml; printf '[optimizer]\nlr = 0.1\n'; } >opt.toml && exec '$bin/macer_train' opt.toml"
{ sed 's/^dataset = "synthetic"$/dataset = "cifar10"\ndir = "cifar"/; /^synthetic_/d' tiny.toml; } >cifar.toml
expect_fail "data.dir under --set data.dataset=synthetic" \
  "^error: cifar.toml:3: key 'data.dir' has no effect: .*\(data.dataset from --set data.dataset=synthetic\); remove it, or add --set data.dir=\"\"" \
  "$bin/macer_train" cifar.toml --set data.dataset=synthetic --print-config
expect_ok "--set data.dir=\"\" clears it" "$bin/macer_train" cifar.toml --set data.dataset=synthetic --set 'data.dir=""' --print-config

# ---- an unknown model: the key, its source, natural order, did you mean ------------------------
expect_fail "unknown model by --set" \
  "^error: --set model.name=resnet21: key 'model.name': unknown model 'resnet21' \(did you mean 'resnet20'\?.*known: lenet, resnet18, resnet20, resnet34, resnet50, resnet56, resnet101, resnet110, resnet152, resnet<6n\+2>" \
  "$bin/macer_train" tiny.toml --set model.name=resnet21 --print-config
sed 's/^name = "lenet"$/name = "lenett"/' tiny.toml >model.toml
expect_fail "unknown model in the file" "^error: model.toml:6: key 'model.name': unknown model 'lenett' \(did you mean 'lenet'\?" \
  "$bin/macer_train" model.toml --print-config
expect_ok "any Cifar depth 6n+2" "$bin/macer_train" tiny.toml --set model.name=resnet26 --print-config
expect_fail "unknown --model" "^error: --model: unknown model 'resnet21' \(did you mean 'resnet20'\?" \
  "$bin/macer_certify" --checkpoint "$ckpt" --model resnet21 --count 1 --device cpu

# ---- a .pth checkpoint: the README's way to convert it (not "python3 scripts/...") -------------
python3 -c "import pickle; pickle.dump({'net': {}}, open('legacy.pth', 'wb'), protocol=2)"
expect_fail ".pth to macer_certify" "^error: legacy.pth: is a PyTorch file .*convert it first with scripts/convert_checkpoint.py legacy.pth OUT.safetensors$" \
  "$bin/macer_certify" --checkpoint legacy.pth
grep -q "python3 scripts" err.log && bad "the hint says python3 scripts/...: $(cat err.log)" || ok
expect_fail ".pth to macer_train --resume" "^error: legacy.pth: is a PyTorch file .*with scripts/convert_checkpoint.py" \
  "$bin/macer_train" tiny.toml --set 'run.checkpoint_dir="pth"' --resume legacy.pth

# ---- Ctrl-C and SIGTERM: one line saying what is kept, exit 128 + signal ----------------------
# wait_for FILE LINES: polls until FILE has LINES lines (the program is past its start), at most 60 s.
wait_for() { for _ in $(seq 1 600); do [ "$({ wc -l <"$1"; } 2>/dev/null || echo 0)" -ge "$2" ] && return 0; sleep 0.1; done; return 1; }
long=(--set 'run.checkpoint_dir="int"' --set optim.epochs=100000 --set run.test_every=0)
"$bin/macer_train" tiny.toml "${long[@]}" --set run.checkpoint_every=100000 >int.out 2>int.err &
pid=$!
wait_for int/train.jsonl 1 && kill -INT "$pid"
wait "$pid"
rc=$?
[ "$rc" -eq 130 ] && ok || bad "SIGINT before the first checkpoint: exit $rc"
has "nothing kept, said" int.err "^interrupted: nothing of this run was kept in int \(no checkpoint was written yet\); start it again with [^ ]*macer_train tiny.toml --set 'run.checkpoint_dir=\"int\"' .* --overwrite$"
"$bin/macer_train" tiny.toml "${long[@]}" --set run.checkpoint_every=1 --overwrite >int.out 2>int.err &
pid=$!
# (the first checkpoint of this run: its handlers are installed; the old log may be read before)
for _ in $(seq 1 600); do [ -s int/checkpoint.safetensors ] && break; sleep 0.1; done
kill -TERM "$pid"
wait "$pid"
rc=$?
[ "$rc" -eq 143 ] && ok || bad "SIGTERM: exit $rc"
has "the kept checkpoint, said" int.err "^interrupted: int keeps the checkpoint of epoch [0-9]+; continue with [^ ]*macer_train tiny.toml .* --resume int$"
epoch=$(sed -n 's/^interrupted: int keeps the checkpoint of epoch \([0-9]*\);.*/\1/p' int.err)
again=$(sed -n 's/^interrupted: .*; continue with [^ ]*macer_train //p' int.err)
# The printed command continues the run (here for one more epoch), the lock released.
expect_ok "the printed command continues" bash -c "exec '$bin/macer_train' $again --set optim.epochs=$((epoch + 1))"
has "resumed where it stopped" err.log "^resuming at epoch $((epoch + 1)) of $((epoch + 1)) \(after the checkpoint's $epoch\)"
slow=(--checkpoint "$ckpt" --n0 100 --n 100000 --batch 1000 --count 64 --device cpu)
"$bin/macer_certify" "${slow[@]}" --output slow.tsv >slow.out 2>slow.err &
pid=$!
wait_for slow.tsv 2 && kill -INT "$pid"
wait "$pid"
rc=$?
[ "$rc" -eq 130 ] && ok || bad "macer_certify SIGINT: exit $rc"
rows=$(($(wc -l <slow.tsv) - 1))
has "rows kept, said" slow.err "^interrupted: the $rows rows? written so far (is|are) kept in slow.tsv; add --resume to continue$"

# ---- records: the data folder read, sigma in --summarize's JSON, the in-training certification --
# (the last run above: 64 images in batches of 16, none dropped)
has "no 'drops the last 0'" err.log "^batch: 16 per step in all .* 4 steps per epoch$"
python3 - "$src" <<'PY' && ok || bad "summarize --json: sigma, train_sigma and the run record"
import json
j = json.load(open("s.json"))
a = [e for e in j if e["label"] == "A"][0]
assert a["sigma"] == 0.25 and a["train_sigma"] == 0.25, a
assert a["run"]["n"] == 200 and a["run"]["results"] == "A.tsv", a["run"]
PY
if [ -d /usr/share/datasets/fashion-mnist ]; then
  cat >fm.toml <<'TOML'
[data]
dataset = "fashion-mnist"
dir = "/usr/share/datasets/fashion-mnist"
train_count = 48
[model]
name = "lenet"
[objective]
name = "gaussian"
sigma = 0.25
k = 1
[optim]
epochs = 1
batch = 16
milestones = []
[run]
device = "cpu"
checkpoint_dir = "fm"
test_every = 0
[certify]
every = 1
count = 2
n0 = 10
n = 100
batch = 100
TOML
  expect_ok "train on Debian's Fashion-MNIST with certification" "$bin/macer_train" fm.toml
  python3 -c "
import json
c = json.loads(open('fm/train.jsonl').readline())['certify']
assert (c['sigma'], c['n0'], c['n'], c['alpha']) == (0.25, 10, 100, 0.001), c" && ok || bad "in-training certify entry: $(cat fm/train.jsonl)"
  grep -q "class by class" err.log && bad "Fashion-MNIST told that an image folder is ordered class by class" || ok
  # A checkpoint without a stored config (as converted ones): the default folder is read, and recorded.
  python3 - <<'PY'
import json, struct
b = open("fm/checkpoint.safetensors", "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
h["__metadata__"].pop("config")
t = json.dumps(h).encode()
t += b" " * ((8 - len(t) % 8) % 8)
open("noconfig.safetensors", "wb").write(struct.pack("<Q", len(t)) + t + b[8 + n:])
PY
  expect_ok "certify with the default data folder" "$bin/macer_certify" --checkpoint noconfig.safetensors --n0 10 \
    --n 100 --batch 100 --count 1 --device cpu --output fmd.tsv
  python3 -c "import json; assert json.load(open('fmd.tsv.run.json'))['data_dir'] == '/usr/share/datasets/fashion-mnist'" &&
    ok || bad "data_dir recorded: $(cat fmd.tsv.run.json)"
else
  echo "SKIPPED: Debian's dataset-fashion-mnist is not installed (records of the default folder)"
fi

# ---- smaller wording ---------------------------------------------------------------------------
expect_fail "--radius-step 0 in the house's words" "^error: --radius-step 0 is out of range: pass a value from 0.001 to 1000$" \
  "$bin/macer_certify" --summarize A.tsv --radius-step 0
expect_fail "no images: count all" "^error: no images to certify: start 10000, count all, skip 1 select none of the 64 images \(start must be below 64\)$" \
  "$bin/macer_certify" --checkpoint "$ckpt" --start 10000 --device cpu
"$bin/macer_train" --help >help.txt 2>&1
has "--help lists the five methods" help.txt "Gaussian noise \(Cohen et al.\), MACER, SmoothAdv .*Consistency or SmoothMix"
expect_fail "certify's missing data names --data-dir only" "pass the folder holding cifar10 with --data-dir DIR; get it as" \
  "$bin/macer_certify" --checkpoint "$ckpt" --dataset cifar10 --other-data --data-dir /nonexistent --count 1 --device cpu
grep -qF "data.dir" err.log && bad "macer_certify names data.dir: $(cat err.log)" || ok
expect_fail "train's missing data names --set data.dir only" "pass the folder holding cifar10 with --set data.dir=DIR \(or data.dir in the config\); get it as" \
  "$bin/macer_train" cifar.toml --set 'run.checkpoint_dir="nodata"'
grep -q -- "--data-dir" err.log && bad "macer_train names --data-dir: $(cat err.log)" || ok
if "$bin/macer_certify" --checkpoint "$ckpt" --device cuda --count 1 --n0 10 --n 100 >cuda.out 2>cuda.err; then
  echo "SKIPPED: a CUDA device is available (the no-GPU message)"
else
  has "--device cuda without a GPU" cuda.err "^error: --device cuda: no CUDA device is available \(.*\); pass --device cpu"
  expect_fail "run.device cuda without a GPU" "^error: run.device = \"cuda\": no CUDA device is available \(.*\); train on the CPU with --set run.device=cpu" \
    "$bin/macer_train" tiny.toml --set 'run.device="cuda"' --set 'run.checkpoint_dir="cuda"'
fi

# ---- startup lines of SmoothAdv and SmoothMix name the attack -----------------------------------
expect_ok "smoothadv startup" "$bin/macer_train" tiny.toml --set 'run.checkpoint_dir="adv"' --set attack.name=pgd \
  --set attack.eps=0.5 --set attack.steps=2 --set attack.warmup_epochs=3
has "PGD named" err.log "^train lenet \(macer objective, sigma 0.25, k 2, SmoothAdv's PGD attack: eps 0.5, 2 steps, warm-up 3 epochs\) on "
expect_ok "smoothmix startup" "$bin/macer_train" tiny.toml --set 'run.checkpoint_dir="mix"' --set objective.name=smoothmix \
  --set attack.name=smoothmix --set attack.steps=2 --set attack.alpha=0.25
has "SmoothMix's attack named" err.log "^train lenet \(smoothmix objective, sigma 0.25, k 2, SmoothMix's attack: 2 steps of size 0.25, mix step 0\) on "

# ---- the converter refuses to overwrite (test_convert) and the shipped configs' data/ is ignored --
(cd "$src" && git check-ignore -q data/cifar-10-batches-bin/data_batch_1.bin) && ok || bad "data/ contents are not in .gitignore"

finish
