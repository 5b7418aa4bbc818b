#!/usr/bin/env bash
# scripts/convert_checkpoint.py and scripts/plot_certify.py under a python3 that is not Debian's
# (a venv here, as pyenv, conda or a venv first on PATH; ctest: cli_python_scripts; issue 21): a
# missing PyTorch, numpy or matplotlib is one error line naming /usr/bin/python3 or what to install.
# Usage: test_python_scripts.sh SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/lib.sh"
src=$(cd "$1" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/macer_python_scripts.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

# Both scripts name the python they need on their first line (the README says which).
for s in convert_checkpoint.py plot_certify.py; do
  [ "$(head -n 1 "$src/scripts/$s")" = "#!/usr/bin/python3" ] && [ -x "$src/scripts/$s" ] && ok ||
    bad "$s: first line '$(head -n 1 "$src/scripts/$s")', not #!/usr/bin/python3 (or not executable)"
done

# A venv of Debian's python3 without its dist-packages: another interpreter, as a pyenv one is.
if ! /usr/bin/python3 -m venv --without-pip venv >venv.log 2>&1; then
  bad "cannot make a venv (Debian: apt-get install python3-venv; scripts/setup.sh does): $(tail -n 1 venv.log)"
  finish cli_python_scripts
  exit
fi
py=$work/venv/bin/python3
deb=/usr/lib/python3/dist-packages
# What the error says of /usr/bin/python3: "which has Debian's ..." when its dist-packages hold the modules.
if [ -d $deb/torch ] && [ -d $deb/numpy ]; then torch_hint="run it with /usr/bin/python3, which has Debian's PyTorch and numpy"
else torch_hint="run it with /usr/bin/python3 after apt-get install"; fi
if [ -d $deb/matplotlib ]; then plot_hint="run it with /usr/bin/python3, which has Debian's matplotlib"
else plot_hint="run it with /usr/bin/python3 after apt-get install python3-matplotlib"; fi

: >r18.pth
expect_fail "convert under a venv" "^error: PyTorch and numpy are needed to read r18.pth, and this python3 \($py\) has no PyTorch and numpy: $torch_hint" \
  "$py" "$src/scripts/convert_checkpoint.py" r18.pth x.safetensors
[ ! -e x.safetensors ] && ! grep -q Traceback err.log && ok || bad "convert under a venv: a traceback or an output"
printf '\x10\x00\x00\x00\x00\x00\x00\x00{"__metadata__":{}}' >a.safetensors
expect_fail "--to-pth under a venv (no numpy traceback)" "^error: PyTorch and numpy are needed to write b.pth, and this python3 \($py\) has no PyTorch and numpy: $torch_hint" \
  "$py" "$src/scripts/convert_checkpoint.py" --to-pth a.safetensors b.pth
! grep -q Traceback err.log && [ ! -e b.pth ] && ok || bad "--to-pth under a venv: $(head -3 err.log)"
printf 'idx\tlabel\tpredict\tradius\tcorrect\ttime\n0\t1\t1\t0.5\t1\t0:00:01\n' >a.tsv
expect_fail "plot under a venv" "^error: matplotlib is needed to draw fig.pdf, and this python3 \($py\) has no matplotlib: $plot_hint" \
  "$py" "$src/scripts/plot_certify.py" a.tsv -o fig.pdf
[ ! -e fig.pdf ] && ok || bad "plot under a venv wrote fig.pdf"

# Debian's own python3 without its dist-packages (-S): nothing else to run it with, so what to install.
expect_fail "convert under python3 -S" "^error: PyTorch and numpy are needed to read r18.pth \(Debian: apt-get install python3-torch python3-numpy\)$" \
  /usr/bin/python3 -S "$src/scripts/convert_checkpoint.py" r18.pth x.safetensors
expect_fail "plot under python3 -S" "^error: matplotlib is needed to draw fig.pdf \(Debian: apt-get install python3-matplotlib\)$" \
  /usr/bin/python3 -S "$src/scripts/plot_certify.py" a.tsv -o fig.pdf

finish cli_python_scripts
