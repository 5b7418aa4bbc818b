#!/usr/bin/env bash
# End-to-end checks of image folders as a user has them (ctest: cli_image_folders): integer class
# names, hidden files, every torchvision extension, the startup line against torchvision's
# ImageFolder, bad files found before any row is certified, macer_train --check-data.
# Usage: test_image_folders.sh BIN_DIR (needs python3 with PIL and torchvision: python3-pil,
# python3-torchvision).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
bin=$1
py=/usr/bin/python3
[ -x "$py" ] || py=python3
work=$(mktemp -d "${TMPDIR:-/tmp}/macer_cli_images.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

# Folders 0 1 2 10 11 (text order 0 1 10 11 2), images in several encodings, and what a macOS or
# Jupyter user's copy holds besides: "._" files, .DS_Store, .ipynb_checkpoints, a readme.
"$py" - <<'PY' || { echo "FAILED: needs python3 with PIL"; exit 1; }
import os
from PIL import Image
exts = ["png", "jpg", "JPEG", "webp", "tif", "bmp"]
for split, per in (("train", 6), ("val", 3)):
    for c in (0, 1, 2, 10, 11):
        d = "data/%s/%d" % (split, c)
        os.makedirs(d, exist_ok=True)
        for k in range(per):
            im = Image.new("RGB", (20 + k, 18), ((c * 20) % 256, (k * 40) % 256, 128))
            im.save("%s/img%d.%s" % (d, k, exts[(c + k) % len(exts)]))
for p in ("data/train/0/._img0.png", "data/train/1/.DS_Store", "data/train/.ipynb_checkpoints/x.png"):
    os.makedirs(os.path.dirname(p), exist_ok=True)
    open(p, "wb").write(b"\x00\x05\x16\x07 resource fork")
open("data/train/2/readme.txt", "w").write("not an image")
PY

cat >img.toml <<'TOML'
[data]
dataset = "imagefolder"
dir = "data"
image_size = 16
[model]
name = "lenet"
[objective]
name = "gaussian"
sigma = 0.25
k = 1
[optim]
epochs = 1
batch = 10
lr = 0.01
[run]
device = "cpu"
checkpoint_dir = "run"
print_every = 1000
TOML

# ---- classes ----------------------------------------------------------------------------------
expect_fail "integer names in text order refused" 'named by integers \(0, 1, 2, 10, \.\.\.\).*data.class_order' \
  "$bin/macer_train" img.toml
expect_ok "numeric order trains" "$bin/macer_train" img.toml --set data.class_order=numeric
grep -q "data: data/train: 5 classes, 30 images; skipped 2 hidden files, 1 hidden folder (names starting with '.'); skipped 1 file without an image extension" out.log \
  && ok || bad "training startup line: $(grep '^data:' out.log)"

grep -q "^train_transform = 'auto'" out.log && ok || bad "resolved config shows data.train_transform"
expect_fail "RandomResizedCrop on CIFAR-style data" 'train_transform = "random_resized_crop" needs full images' \
  "$bin/macer_train" img.toml --set data.dataset=synthetic --set 'data.dir=""' --set data.train_transform=random_resized_crop
expect_fail "RandomResizedCrop and pad-crop together" "exclude each other" \
  "$bin/macer_train" img.toml --set data.class_order=numeric --set data.augment_crop=true --overwrite
expect_ok "the evaluation transform for training on request" "$bin/macer_train" img.toml \
  --set data.class_order=numeric --set data.train_transform=center_crop --overwrite
# one class folder (data.dir one level off): refused before any training
mkdir -p onefolder/val/cat && cp data/train/0/img0.* onefolder/val/cat/ 2>/dev/null
expect_fail "one class is no classifier" "the train split has one class \('val'\): a classifier needs at least 2" \
  "$bin/macer_train" img.toml --set 'data.dir="onefolder"' --set 'run.checkpoint_dir="run_one"'

# The count and class list equal torchvision's ImageFolder on the folder without hidden entries.
"$py" - <<'PY' >tv.txt 2>tv.err || bad "torchvision ImageFolder: $(tail -n 1 tv.err)"
from torchvision.datasets import ImageFolder
ds = ImageFolder("data/val")
print(len(ds.classes), len(ds))
PY
read -r tv_classes tv_images <tv.txt
ckpt=run/checkpoint.safetensors
expect_ok "certify" "$bin/macer_certify" --checkpoint "$ckpt" --n0 10 --n 20 --batch 20 --count 4 --device cpu
grep -q "data: data/val: $tv_classes classes, $tv_images images$" out.log && ok \
  || bad "certify startup line vs torchvision ($tv_classes classes, $tv_images images): $(grep '^data:' out.log)"
# The checkpoint's class_order serves by default; --class-order overrides it (auto refuses again).
expect_fail "--class-order auto" "named by integers" "$bin/macer_certify" --checkpoint "$ckpt" --class-order auto \
  --n0 10 --n 20 --batch 20 --count 1 --device cpu

# ---- bad files: found before the first row ----------------------------------------------------
"$py" -c "
d = open('data/val/1/img0.jpg', 'rb').read(); open('data/val/1/img0.jpg', 'wb').write(d[:len(d) // 2])
d = bytearray(open('data/val/11/img1.png', 'rb').read()); d[45] ^= 1; open('data/val/11/img1.png', 'wb').write(bytes(d))
" || bad "damaging files"
expect_fail "certify refuses before any row" "2 of the 15 selected images cannot be read: .*data/val/1/img0.jpg: (truncated|cannot decode) JPEG.*img1.png: cannot decode PNG" \
  "$bin/macer_certify" --checkpoint "$ckpt" --n0 10 --n 20 --batch 20 --device cpu --output res.tsv
[ ! -e res.tsv ] && ok || bad "no results file after a refused run"
expect_ok "images before the bad ones certify" "$bin/macer_certify" --checkpoint "$ckpt" --n0 10 --n 20 --batch 20 \
  --count 3 --device cpu --output res.tsv
expect_fail "check-data lists every bad file" "2 of 45 images cannot be read" \
  "$bin/macer_train" img.toml --set data.class_order=numeric --check-data
[ "$(grep -c '^bad: ' out.log)" -eq 2 ] && grep -q "^bad: data/val/11/img1.png: cannot decode PNG" out.log && ok \
  || bad "check-data lists: $(grep '^bad:' out.log)"

# A training image found bad mid-run: the error names it, the last checkpoint stays.
sum_before=$(md5sum "$ckpt" | cut -d' ' -f1)
"$py" -c "
import glob
f = sorted(glob.glob('data/train/2/img*'))[0]
d = open(f, 'rb').read()
open(f, 'wb').write(d[:len(d) // 3])
print(f)" >damaged.txt || bad "damaging a training file"
expect_fail "training stops naming the bad file" "$(cat damaged.txt)" \
  "$bin/macer_train" img.toml --set data.class_order=numeric --set data.train_transform=center_crop \
  --set optim.epochs=2 --resume "$ckpt"
[ "$(md5sum "$ckpt" | cut -d' ' -f1)" = "$sum_before" ] && ok || bad "the last checkpoint is kept"

finish cli_image_folders
