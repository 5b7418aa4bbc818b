#!/usr/bin/env bash
# The main job in one command: installs what is needed (Fashion-MNIST from Debian's
# dataset-fashion-mnist), builds in Release, trains LeNet with MACER (GPU if any, else CPU),
# then certifies test images and prints the certified-accuracy table.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dataset-fashion-mnist
scripts/build.sh macer_train macer_certify
bin=${BUILD_DIR:-build}/bin
run=runs/quickstart-fashion-mnist
# --overwrite: running the quickstart again replaces its previous run (other runs are refused).
"$bin/macer_train" configs/quickstart-fashion-mnist.toml --overwrite "$@"
# Every 50th test image (200 images), n = 1000 noisy copies each, alpha = 0.001.
"$bin/macer_certify" --checkpoint "$run/checkpoint.safetensors" \
  --dataset fashion-mnist --data-dir /usr/share/datasets/fashion-mnist \
  --sigma 0.25 --skip 50 --n0 100 --n 1000 --alpha 0.001 --batch 500 \
  --output "$run/certify.tsv" --overwrite --plot "$run/certify.png" --device auto
echo "quickstart: log $run/train.jsonl, certification $run/certify.tsv, plot $run/certify.png"
