#!/usr/bin/env bash
# Training runs that do what they say, and say what they did (ctest: cli_training), run as a user
# does: a resume writes the log line a kill or a full disk lost; data.train_count is a
# class-balanced sample; settings that do nothing are refused with the key; the startup line
# states the global and per-rank batch and what decides the bits (threads, convolution path,
# precision), which the log and the checkpoint record; sigma 0 is said plainly.
# Usage: test_cli_training.sh BIN_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/lib.sh"
bin=$1
src=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/macer_cli_training.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
export OMP_NUM_THREADS=1  # the same bits in every run (the 2-thread case sets its own)
# A log line without its timing fields, which differ between any two runs.
untimed() { sed -E 's/"seconds":[^,]*,"samples_per_second":[^,]*,//; s/"mean_seconds":[^,]*,//' "$@"; }

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
batch = 24
lr = 0.02
[run]
device = "cpu"
checkpoint_dir = "run"
checkpoint_every = 1
print_every = 1000
TOML
train=("$bin/macer_train" tiny.toml)

# ---- 4, 5: the startup line; the log and the checkpoint record the threads, conv path, precision
expect_ok "train" "${train[@]}"
has "threads, conv path and precision on the startup line" err.log \
  "^train lenet \(macer objective, sigma 0.25, k 2\) on .*: 1 thread, conv (onednn\+unfold|reference), fp32$"
has "global and per-rank batch" err.log \
  "^batch: 24 per step in all \(optim.batch is the global batch\) = 24 per rank x 1 rank; 2 steps per epoch; each epoch drops the last 16 of its 64 shuffled images"
[ "$(grep -c '"threads":1,"conv":"[a-z+]*","precision":"fp32"' run/train.jsonl)" -eq 2 ] && ok ||
  bad "every log line records threads, conv and precision: $(cat run/train.jsonl)"
has "the checkpoint records threads" run/checkpoint.safetensors '"threads":"1"'
has "the checkpoint records the precision" run/checkpoint.safetensors '"precision":"fp32"'
expect_ok "reference convolutions" env OMP_NUM_THREADS=2 MACER_CPU_CONV=reference "${train[@]}" \
  --set 'run.checkpoint_dir="run_ref"' --set optim.epochs=1
has "2 threads, reference path said" err.log ": 2 threads, conv reference, fp32$"
has "the checkpoint records the reference path" run_ref/checkpoint.safetensors '"conv":"reference"'
if command -v mpirun >/dev/null && grep -q "MACER_MPI:BOOL=ON" "$bin/../CMakeCache.txt" 2>/dev/null; then
  # LeakSanitizer off for the ranks (sanitizer build): Open MPI's own allocations, some from
  # components it has unloaded, are still held at exit (as tests/test_distributed.cpp does).
  mpi=(env "ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0" OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
       OMPI_MCA_rmaps_base_oversubscribe=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 mpirun -np 2)
  expect_ok "mpirun -np 2" "${mpi[@]}" "${train[@]}" --set 'run.checkpoint_dir="run_mpi"' --set optim.epochs=1
  has "per-rank batch under mpirun" err.log "^batch: 24 per step in all \(optim.batch is the global batch\) = 12 per rank x 2 ranks"
else
  echo "SKIPPED: mpirun -np 2 (no MPI in this build)"
fi

# ---- 1: a resume completes the log line a full disk or a kill lost -----------------------------
expect_fail "log on a full disk" "/dev/full.*writing the log failed" "${train[@]}" \
  --set 'run.checkpoint_dir="run_full"' --set 'run.log_file="/dev/full"'
expect_ok "resume after the full disk" "${train[@]}" --set 'run.checkpoint_dir="run_full"' \
  --resume run_full/checkpoint.safetensors
has "the resume says what it completed" err.log "^resume: wrote epoch 1's log line to run_full/train.jsonl"
if diff <(untimed run/train.jsonl) <(untimed run_full/train.jsonl) >/dev/null; then ok; else
  bad "log after a full disk and a resume differs from an uninterrupted one: $(cat run_full/train.jsonl)"; fi

# Killed in the last epoch's certification, after its checkpoint: the resume writes the line and
# the certification, where "nothing to train" used to lose them for good.
cert=(--set certify.every=1 --set certify.count=2 --set certify.n0=100 --set certify.n=60000 --set certify.batch=2000
      --set optim.epochs=1)
expect_ok "uninterrupted run with certification" "${train[@]}" "${cert[@]}" --set 'run.checkpoint_dir="run_cert"'
"${train[@]}" "${cert[@]}" --set 'run.checkpoint_dir="run_kill"' >kill.out 2>kill.err &
pid=$!
for _ in $(seq 1 600); do [ -s run_kill/checkpoint.safetensors ] && break; sleep 0.05; done
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
if [ -s run_kill/train.jsonl ]; then
  echo "SKIPPED: the kill came after the certification (a slow poll); the run logged its line"
else
  expect_ok "resume after a kill in the certification" "${train[@]}" "${cert[@]}" --set 'run.checkpoint_dir="run_kill"' \
    --resume run_kill/checkpoint.safetensors
  has "the resume says so" err.log "^resume: wrote epoch 1's log line and its certification"
  has "then nothing to train" err.log "nothing to train"
  if diff <(untimed run_cert/train.jsonl) <(untimed run_kill/train.jsonl) >/dev/null; then ok; else
    bad "the completed line differs: $(cat run_kill/train.jsonl) vs $(cat run_cert/train.jsonl)"; fi
fi
# Lines lost before the checkpoint cannot be rebuilt: said, not hidden.
: >run/train.jsonl
expect_ok "resume with an emptied log" "${train[@]}" --resume run/checkpoint.safetensors
has "lost lines are named" err.log "warning: run/train.jsonl lacks the line of epoch 1 .*cannot be rebuilt"
has "the checkpoint's own line is written" run/train.jsonl '"epoch":2'

# ---- 2: data.train_count is a class-balanced sample; its classes are named -----------------------
folder="$src/tests/data/folder4"
cat >folder.toml <<TOML
[data]
dataset = "imagefolder"
dir = "$folder/train"
image_size = 16
train_count = 8
[model]
name = "lenet"
[objective]
name = "gaussian"
sigma = 0.25
k = 1
[optim]
epochs = 1
batch = 4
lr = 0.01
milestones = []
[run]
device = "cpu"
checkpoint_dir = "run_folder"
print_every = 1000
TOML
expect_ok "train on 8 of a class-ordered folder" "$bin/macer_train" folder.toml
has "the sample covers every class" err.log \
  "^data: imagefolder, 8 of its 32 training images \(data.train_count: a class-balanced sample drawn with run.seed 0\), 4 of 4 classes, 2 images each$"
expect_ok "an odd count" "$bin/macer_train" folder.toml --set data.train_count=6 --set 'run.checkpoint_dir="run_f6"'
has "6 of 4 classes: 1 or 2 each" err.log "6 of its 32 training images .* 4 of 4 classes, 1 to 2 images each$"
expect_ok "certified test images of one class" "$bin/macer_train" folder.toml --set 'run.checkpoint_dir="run_fc"' \
  --set certify.every=1 --set certify.count=4 --set certify.n0=10 --set certify.n=50 --set certify.batch=50
has "the certified range names its one class" err.log "^certify: every 1 epochs, 4 test images from 0 every 1, 1 of 4 classes \((cat|0): 4\)$"
has "the summary row names its epoch" err.log "^epoch 1 +[0-9]"
awk '/^epoch 1:/ { e = NR } /^approximate certified/ { a = NR } END { exit !(e && a && e < a) }' err.log && ok ||
  bad "the epoch's line comes before its certification table: $(grep -n 'epoch 1' err.log)"
has "and says how to spread it" err.log "^note: the certified test images miss some classes: spread them with certify.skip"
expect_fail "train_count smaller than a batch" \
  "--set data.train_count=10: key 'data.train_count' = 10 is smaller than optim.batch = 64: an epoch takes full batches only \(the last partial batch is dropped\).*set data.train_count to at least 64 or lower optim.batch" \
  "$bin/macer_train" folder.toml --set data.train_count=10 --set optim.batch=64 --set 'run.checkpoint_dir="run_f10"'
expect_fail "train_count past the set" "--set data.train_count=100: key 'data.train_count' = 100, but imagefolder has only 32 training images" \
  "$bin/macer_train" folder.toml --set data.train_count=100 --set 'run.checkpoint_dir="run_f100"'

# ---- 3: settings that do nothing or contradict each other are refused, the key named -------------
refuse() {  # refuse NAME PATTERN --set ...: the tiny config with these settings is refused
  local name=$1 pattern=$2
  shift 2
  expect_fail "$name" "$pattern" "${train[@]}" --print-config "$@"
}
refuse "nesterov without momentum" "key 'optim.nesterov' = true needs optim.momentum > 0" \
  --set optim.nesterov=true --set optim.momentum=0
refuse "gaussian with lambda" "^error: --set objective.lambda=3: key 'objective.lambda' has no effect: the gaussian objective" \
  --set objective.name=gaussian --set objective.lambda=3
sed 's/^sigma = 0.25$/name = "gaussian"\nsigma = 0.25/' tiny.toml >gauss.toml
expect_fail "a gaussian config with lambda" "^error: gauss.toml:[0-9]+: key 'objective.lambda' has no effect: the gaussian objective" \
  "$bin/macer_train" gauss.toml --print-config
# An override may leave keys of the file without effect: it wins, and the printed config drops them.
expect_ok "--set switches the objective" "${train[@]}" --print-config --set objective.name=gaussian
if grep -q "^lambda" out.log; then bad "the printed config holds a key without effect"; else ok; fi
refuse "lambda 0 with beta" "key 'objective.beta' has no effect: objective.lambda = 0" \
  --set objective.lambda=0 --set objective.beta=4
refuse "warm-up of a constant schedule" "key 'objective.lambda_warmup_epochs' has no effect" \
  --set objective.lambda_warmup_epochs=3
refuse "deferred without warm-up" "key 'objective.lambda_schedule' = \"deferred\" with lambda_warmup_epochs = 0" \
  --set objective.lambda_schedule=deferred
refuse "gamma 0" "key 'objective.gamma' = 0" --set objective.gamma=0
refuse "image_size of a synthetic set" "key 'data.image_size' has no effect" --set data.image_size=64
refuse "dir of a synthetic set" "key 'data.dir' has no effect" --set 'data.dir="x"'
refuse "synthetic_size of cifar10" "key 'data.synthetic_size' has no effect" --set data.dataset=cifar10 --set 'data.dir="x"' \
  --set data.synthetic_size=5
refuse "lr_factor without milestones" "key 'optim.lr_factor' has no effect" --set 'optim.milestones=[]' --set optim.lr_factor=0.5
refuse "lr_factor 1" "key 'optim.lr_factor' = 1" --set optim.lr_factor=1
refuse "lr 0" "key 'optim.lr' = 0" --set optim.lr=0
refuse "certify keys without certification" "key 'certify.n' has no effect: certify.every = 0" --set certify.n=5000
refuse "certify.n too small" "key 'certify.n' = 8 at certify.alpha = 0.001 certifies no image" \
  --set certify.every=1 --set certify.n=8
refuse "train_count 0" "key 'data.train_count' = 0" --set data.train_count=0
# What --print-config prints is a config that is accepted again (keys without effect left out).
"$bin/macer_train" "$src/configs/cifar10-gaussian-sigma0.25.toml" --print-config 2>/dev/null | grep -v '^#' >resolved.toml
expect_ok "a printed config reads back" "$bin/macer_train" resolved.toml --print-config
if grep -q "lambda" resolved.toml; then bad "gaussian's printed config holds MACER's lambda"; else ok; fi
for f in "$src"/configs/*.toml; do expect_ok "shipped $(basename "$f")" "$bin/macer_train" "$f" --print-config; done

# ---- 6: sigma 0 ---------------------------------------------------------------------------------
cat >plain.toml <<'TOML'
[data]
dataset = "synthetic"
synthetic_size = 64
synthetic_classes = 3
[model]
name = "lenet"
[objective]
name = "gaussian"
sigma = 0.0
k = 1
[optim]
epochs = 1
batch = 16
lr = 0.02
[run]
device = "cpu"
checkpoint_dir = "run_plain"
print_every = 1000
TOML
expect_fail "sigma 0 with k copies" "key 'objective.k' = 2 at objective.sigma = 0: without noise the copies are identical" \
  "$bin/macer_train" plain.toml --set objective.k=2
expect_fail "in-training certification at sigma 0" "key 'certify.every' at objective.sigma = 0: certification at sigma 0 gives radius 0" \
  "$bin/macer_train" plain.toml --set certify.every=1
expect_ok "train at sigma 0" "$bin/macer_train" plain.toml
has "the startup line says it trains without noise" err.log "^sigma 0: training without noise \(plain training\)"
plain=("$bin/macer_certify" --checkpoint run_plain/checkpoint.safetensors --count 2 --n0 10 --n 100 --batch 100 --device cpu)
expect_fail "certify a sigma-0 checkpoint" "was trained at sigma 0, without noise: it is a plain classifier.*pass --sigma S" "${plain[@]}"
expect_fail "certify at --sigma 0" "--sigma 0 certifies radius 0 for every image.*--predict --sigma 0" "${plain[@]}" --sigma 0
expect_ok "predict at sigma 0" "${plain[@]}" --sigma 0 --predict
has "predict at sigma 0 says what it is" out.log "^note: sigma 0: no noise, so PREDICT gives the plain classifier's prediction"
expect_ok "certify it under noise" "${plain[@]}" --sigma 0.25
has "certifying under noise names the training sigma" out.log "^note: .* was trained at sigma 0 \(without noise\)"

# ---- a new user's stumbles (issue 21's README walk) ----------------------------------------------
# keys that a method or attack does not use are refused, naming what would use them
refuse "attack keys without an attack" "key 'attack.eps' has no effect: attack.name = \"none\".*set attack.name = \"pgd\"" \
  --set attack.eps=1.0
refuse "eta with MACER" "key 'objective.eta' has no effect: MACER's objective has no eta" --set objective.eta=2
refuse "class order without image folders" "key 'data.class_order' has no effect: only image folders" \
  --set 'data.class_order="numeric"'
# --resume: a missing file, a run folder without a checkpoint, a checkpoint outside run.checkpoint_dir
expect_fail "resume of nothing" "--resume nothere/checkpoint.safetensors: no such file or folder" "${train[@]}" --resume nothere/checkpoint.safetensors
mkdir -p stopped
expect_fail "resume before the first checkpoint" "--resume stopped: no checkpoint.safetensors in it yet.*--overwrite" \
  "${train[@]}" --resume stopped
expect_ok "a second run" "${train[@]}" --set 'run.checkpoint_dir="run_b"' --set optim.epochs=1
expect_fail "resume from another folder" "is not in run.checkpoint_dir = run, which holds another run.*--set run.checkpoint_dir=\"run_b\"" \
  "${train[@]}" --resume run_b
# --overwrite removes the old run's checkpoints (run.keep_every's too) and names what it leaves
echo "old rows" >run_b/certify.tsv
touch run_b/epoch_1.safetensors
expect_ok "overwrite" "${train[@]}" --set 'run.checkpoint_dir="run_b"' --set optim.epochs=1 --overwrite
has "overwrite names the files it leaves" err.log "^note: --overwrite replaced the old run's checkpoints and log; other files in run_b stay \(certify.tsv\)"
[ ! -e run_b/epoch_1.safetensors ] && ok || bad "--overwrite left the old run's epoch_1.safetensors"
# a text value without quotes
printf '[data]\ndataset = synthetic\n' >unquoted.toml
expect_fail "unquoted text" "unquoted.toml:2: .*\(a text value needs quotes: key = \"value\"\)" "$bin/macer_train" unquoted.toml
# macer_certify: a run folder for --checkpoint, the note without --output, the reason a file cannot be opened
cert=("$bin/macer_certify" --count 2 --n0 10 --n 100 --batch 100 --device cpu)
expect_ok "certify a run folder" "${cert[@]}" --checkpoint run
has "the folder's checkpoint is used" out.log "^certify run/checkpoint.safetensors on"
has "no --output is said" out.log "^note: no --output: the per-image rows are kept nowhere"
expect_fail "a checkpoint that is not there" "none/checkpoint.safetensors: cannot open: No such file or directory" \
  "${cert[@]}" --checkpoint none/checkpoint.safetensors
# two runs' files of one name: labelled by their folders
expect_ok "certify run" "${cert[@]}" --checkpoint run --output run/certify.tsv
expect_ok "certify run_b" "${cert[@]}" --checkpoint run_b --output run_b/certify.tsv --overwrite
expect_ok "summarize both" "$bin/macer_certify" --summarize run/certify.tsv run_b/certify.tsv
has "labels by folder" out.log "^run/certify "
has "labels by folder (2)" out.log "^run_b/certify "

finish
