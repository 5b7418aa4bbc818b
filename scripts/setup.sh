#!/usr/bin/env bash
# Installs the Debian packages the engine builds and runs with (skips apt when all are present).
# Used by scripts/test.sh and scripts/quickstart.sh; pass extra package names as arguments.
set -euo pipefail
packages=(cmake ninja-build g++ ccache pkg-config catch2 libopenblas-dev libtomlplusplus-dev
          libcli11-dev zlib1g-dev libboost-dev libstb-dev nlohmann-json3-dev libopenmpi-dev openmpi-bin libdnnl-dev
          libjpeg62-turbo-dev libpng-dev libwebp-dev libtiff-dev python3-matplotlib python3-venv "$@")  # python3-matplotlib: scripts/plot_certify.py; python3-venv: tests/cli/test_python_scripts.sh
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
