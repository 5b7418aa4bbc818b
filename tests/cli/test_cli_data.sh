#!/usr/bin/env bash
# End-to-end checks of what identifies a run's data and statistics, as a user meets them
# (ctest: cli_data): the data set a checkpoint was trained on is recorded and compared, runs
# that can never certify are refused, another sigma is warned about and recorded, tiny alpha
# never aborts, repeated keys in a checkpoint's header are refused. Data made here, in IDX form.
# Usage: test_cli_data.sh BIN_DIR
set -uo pipefail
source "$(dirname "$0")/lib.sh"
bin=$1
work=$(mktemp -d "${TMPDIR:-/tmp}/macer_cli_data.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
# check NAME PYTHON-EXPRESSION: the expression (json, sys imported) is true.
check() {
  if python3 -c "import json, sys; sys.exit(0 if ($2) else 1)"; then ok; else bad "$1"; fi
}

# A small data set in MNIST's IDX layout: 64 training and 16 test images of 28x28.
python3 - <<'PY'
import os, random, struct
random.seed(1)
os.makedirs("fm", exist_ok=True)
for split, n in (("train", 64), ("t10k", 16)):
    labels = [i % 10 for i in range(n)]
    pixels = bytes(min(255, random.randrange(60) + (140 if (r // 7 + c // 7) % 4 == lab % 4 else 0))
                   for lab in labels for r in range(28) for c in range(28))
    open(f"fm/{split}-images-idx3-ubyte", "wb").write(struct.pack(">IIII", 2051, n, 28, 28) + pixels)
    open(f"fm/{split}-labels-idx1-ubyte", "wb").write(struct.pack(">II", 2049, n) + bytes(labels))
PY

config() {  # config DATASET RUN_DIR
  cat <<TOML
[data]
dataset = "$1"
dir = "fm"
augment_crop = false
augment_flip = false
[model]
name = "lenet"
[objective]
sigma = 0.25
k = 2
[optim]
epochs = 1
batch = 16
lr = 0.01
[run]
device = "cpu"
checkpoint_dir = "$2"
print_every = 1000
TOML
}
config fashion-mnist run >fashion.toml
expect_ok "train on fashion-mnist" "$bin/macer_train" fashion.toml
ckpt=run/checkpoint.safetensors

# ---- the data identity a checkpoint records ------------------------------------------------
python3 - "$ckpt" >meta.json <<'PY'
import json, struct, sys
f = open(sys.argv[1], "rb")
n = struct.unpack("<Q", f.read(8))[0]
print(json.dumps(json.loads(f.read(n))["__metadata__"]))
PY
check "metadata names the data set" 'json.load(open("meta.json"))["dataset"] == "fashion-mnist"'
check "metadata has class names in label order" \
  'json.loads(json.load(open("meta.json"))["class_names"])[:2] == ["T-shirt/top", "Trouser"]'
check "metadata has the data fingerprint" \
  'json.load(open("meta.json"))["data_fingerprint"].startswith("fnv1a64:") and "/64 images" in json.load(open("meta.json"))["data_fingerprint"]'

base=("$bin/macer_certify" --checkpoint "$ckpt" --data-dir fm --n0 20 --batch 50 --device cpu)
cert=("${base[@]}" --n 100 --count 2)
expect_fail "another data set name refused" "trained on fashion-mnist, this run reads mnist.*--other-data" \
  "${cert[@]}" --dataset mnist
expect_ok "--other-data certifies anyway" "${cert[@]}" --dataset mnist --other-data
grep -q "warning: .*trained on fashion-mnist, this run reads mnist" err.log && ok || bad "--other-data warns naming both"
expect_ok "the right data set certifies" "${cert[@]}" --output right.tsv

# Missing IDX files name the flag and key to set and where to get them (as CIFAR-10's do).
expect_fail "missing Fashion-MNIST IDX files" \
  "IDX file not found \(looked in /nonexistent/fmnist for t10k-images-idx3-ubyte.*\); pass the folder holding fashion-mnist with --data-dir DIR; get it as Debian's dataset-fashion-mnist .*/usr/share/datasets/fashion-mnist" \
  "$bin/macer_certify" --checkpoint "$ckpt" --data-dir /nonexistent/fmnist --n 100 --count 1 --device cpu
expect_fail "missing MNIST IDX files" \
  "IDX file not found .*; pass the folder holding mnist with --data-dir DIR; get it as .*IDX files from https://yann.lecun.com/exdb/mnist/" \
  "$bin/macer_certify" --checkpoint "$ckpt" --dataset mnist --other-data --data-dir /nonexistent/mnist --n 100 \
  --count 1 --device cpu
expect_fail "missing IDX files in training" "looked in /nonexistent/fmnist .*with --set data.dir=DIR \(or data.dir in the config\); get it as" \
  "$bin/macer_train" fashion.toml --set 'data.dir="/nonexistent/fmnist"' --set 'run.checkpoint_dir="run_nodata"'
expect_fail "--summarize of a missing file" "cannot open certification results missing.tsv: No such file or directory" \
  "$bin/macer_certify" --summarize missing.tsv
mkdir -p folder.tsv
expect_fail "--summarize of a folder" "certification results folder.tsv: is a folder, not a TSV file" \
  "$bin/macer_certify" --summarize folder.tsv
check "the run record holds the data fingerprint" \
  'json.load(open("right.tsv.run.json"))["data_fingerprint"].startswith("fnv1a64:") and "/16 images" in json.load(open("right.tsv.run.json"))["data_fingerprint"]'

# Official files are recognised by content: a model trained on "mnist" (these files) certified
# with --dataset mnist on the real Fashion-MNIST files (Debian: dataset-fashion-mnist).
real=/usr/share/datasets/fashion-mnist
if [ -f "$real/t10k-images-idx3-ubyte.gz" ]; then
  config mnist run_mnist >mnist.toml
  expect_ok "train on mnist" "$bin/macer_train" mnist.toml
  expect_fail "fashion-mnist files read as mnist refused" "holds fashion-mnist test \\(recognised by the digest" \
    "$bin/macer_certify" --checkpoint run_mnist/checkpoint.safetensors --dataset mnist --data-dir "$real" \
    --n0 20 --n 100 --batch 50 --device cpu --count 1
else
  echo "WARNING: $real not found (Debian dataset-fashion-mnist): the recognition of official files did NOT run"
fi

# ---- runs that can never certify ----------------------------------------------------------
expect_fail "--n 9 refused" "--n 9 can never certify at alpha 0.001.*use --n 10 or more" "${base[@]}" --count 2 --n 9
expect_fail "--predict --n 10 refused" "--n 10 can never predict at alpha 0.001.*use --n 11 or more" \
  "${base[@]}" --count 2 --n 10 --predict
expect_fail "--mode soft --n 36 refused" "--n 36 can never certify.*use --n 37 or more" "${base[@]}" --count 2 --n 36 --mode soft
expect_ok "--n 10 runs" "${base[@]}" --count 2 --n 10
expect_ok "--predict --n 11 runs" "${base[@]}" --count 2 --n 11 --predict
expect_ok "--any-n forces the run" "${base[@]}" --count 2 --n 9 --any-n --output n9.tsv
[ "$(awk -F'\t' 'NR > 1 && $3 != -1' n9.tsv | wc -l)" -eq 0 ] && ok || bad "--n 9 rows all abstain"

# ---- Clopper-Pearson at the extremes: every row abstains, none aborts ---------------------
expect_ok "n 11 at alpha 1e-300" "${base[@]}" --n 11 --alpha 1e-300 --any-n --count 4 --output tiny_alpha.tsv
[ "$(awk -F'\t' 'NR > 1' tiny_alpha.tsv | wc -l)" -eq 4 ] && ok || bad "alpha 1e-300: all 4 rows written"
[ "$(awk -F'\t' 'NR > 1 && $3 != -1' tiny_alpha.tsv | wc -l)" -eq 0 ] && ok || bad "alpha 1e-300: every row abstains"

# ---- another sigma than the training one: warned about and recorded ---------------------------
expect_ok "certify at sigma 0.5" "${cert[@]}" --sigma 0.5 --output s.tsv --json s.json
grep -q "warning: certifying at sigma 0.5, but .* was trained at sigma 0.25" err.log && ok || bad "other sigma warned"
check "summary JSON records both sigmas" 'json.load(open("s.json"))[0]["sigma"] == 0.5 and json.load(open("s.json"))[0]["train_sigma"] == 0.25'
check "run record holds both sigmas" \
  'float(json.load(open("s.tsv.run.json"))["sigma"]) == 0.5 and float(json.load(open("s.tsv.run.json"))["train_sigma"]) == 0.25'
expect_ok "the training sigma gives no warning" "${cert[@]}"
grep -q "warning" err.log && bad "no warning at the training sigma" || ok

# ---- repeated keys in a checkpoint's header -----------------------------------------------
# "sigma" given twice (0.25, then 1.0): read last-wins it would certify at sigma 1.
python3 - "$ckpt" twice.safetensors <<'PY'
import struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = raw[8:8 + n].decode().rstrip()
assert '"sigma":"0.25"' in header
header = header.replace('"sigma":"0.25"', '"sigma":"0.25","sigma":"1.0"', 1)
header += " " * ((8 - len(header) % 8) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(header)) + header.encode() + raw[8 + n:])
PY
expect_fail "repeated metadata key refused" "twice.safetensors: header: metadata key 'sigma' is given twice" \
  "$bin/macer_certify" --checkpoint twice.safetensors --data-dir fm --n 100 --device cpu --count 1

# A damaged class list: one error naming the key.
python3 - "$ckpt" badnames.safetensors <<'PY'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
header["__metadata__"]["class_names"] = "[\"a\", 3]"
text = json.dumps(header, separators=(",", ":"))
text += " " * ((8 - len(text) % 8) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(text)) + text.encode() + raw[8 + n:])
PY
expect_fail "damaged class_names refused" "badnames.safetensors: metadata 'class_names' is not a JSON array of strings" \
  "$bin/macer_certify" --checkpoint badnames.safetensors --data-dir fm --n 100 --device cpu --count 1

finish
