#!/usr/bin/env bash
# The demo's kept files, all from one `make demo` on a fresh clone of this repository's HEAD:
#   make_demo.log      what `make demo` printed, after a header naming the machine, the commit
#                      and the package set-up, and ending with its wall time
#   eval_test.json     `attnjax eval --split test`'s scores (BLEU, chrF, BLEU by length)
#   alignment_test.json `attnjax eval --alignment`'s AER report
#   alignment.png      `attnjax align`'s heatmap of the demo sentence
# The clone builds its own .venv and data (ATTNJAX_DATA_DIR in a fresh folder), so the wall time
# is that of a new user's first run. Time it with the machine to itself.
#
#   experiments/demo/run.sh            # writes the four files above into experiments/demo/
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
out="$repo/experiments/demo"
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
  echo "experiments/demo/run.sh: the tree has uncommitted changes; the demo runs a clone of HEAD, so commit them first" >&2
  exit 1
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
git clone -q "$repo" "$scratch/attnjax"
cd "$scratch/attnjax"

log="$scratch/make_demo.log"
{
  echo "# make demo on a fresh clone of $(git rev-parse --short HEAD)"
  echo "# machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB"
  echo "# python: $(python3 --version 2>&1 | cut -d' ' -f2)"
} > "$log"
start=$(date +%s)
ATTNJAX_DATA_DIR="$scratch/data" make demo 2>&1 | tee -a "$log"
elapsed=$(( $(date +%s) - start ))
echo "# make demo: $((elapsed / 60)) min $((elapsed % 60)) s, set-up included" | tee -a "$log"
echo "# jax: $(.venv/bin/python -c 'import jax; print(jax.__version__)')" >> "$log"

# machine paths in the log are those of the scratch clone: name them by what they are
sed -i -e "s|$scratch/data|\$ATTNJAX_DATA_DIR|g" -e "s|$scratch/attnjax/||g" "$log"
# pip's own warnings name this machine's package index and build folders: the set-up's
# commands stay in the log, their output goes
sed -i '/^\.venv\/bin\/python -m pip install/,/^touch \.venv\/\.installed$/{/^\.venv\/bin\/python -m pip install\|^touch /!d}' "$log"
cp "$log" "$out/make_demo.log"
cp runs/demo/eval_test.json runs/demo/alignment_test.json runs/demo/alignment.png "$out/"
echo "wrote $out/make_demo.log, eval_test.json, alignment_test.json and alignment.png"
