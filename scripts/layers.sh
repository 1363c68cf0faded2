#!/usr/bin/env bash
# usage: scripts/layers.sh [OUT_DIR]   (default notebooks-data)
# Layer designs (standard, separable, stacked 3×3, bottleneck, depthwise, grouped + shuffle, ShuffleNet V2 unit) for a
# few C→K k×k layers: counted parameters, FLOPs and memory access beside measured time → OUT_DIR/layers.csv; and
# ShuffleNet V2's four guideline experiments on this machine → OUT_DIR/layer-guidelines.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
out_dir=${1:-notebooks-data}
convlab=${CONVLAB:-.build/release/convlab}
[ -x "$convlab" ] || swift build -c release >&2
threads=${THREADS:-$(nproc)}
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
out=$out_dir/layers.csv
header_written=0
# C K kernel size
for layer in "64 128 5 56" "128 128 3 28" "256 256 3 14" "32 64 7 112" "64 64 3 56"; do
  set -- $layer
  "$convlab" layers --in "$1" --out "$2" --kernel "$3" --size "$4" --threads "$threads" --format csv > "$tmp"
  if [ $header_written = 0 ]; then head -1 "$tmp" > "$out"; header_written=1; fi
  tail -n +2 "$tmp" >> "$out"
done
echo "wrote $out" >&2
"$convlab" layers --guidelines --threads "$threads" --format csv > "$out_dir/layer-guidelines.csv"
echo "wrote $out_dir/layer-guidelines.csv" >&2
