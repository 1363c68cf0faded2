#!/usr/bin/env bash
# usage: scripts/winograd-accuracy.sh [OUT.csv]   (default notebooks-data/winograd-accuracy.csv)
# Float32 error of Winograd F(m×m, r×r) versus the tile size m, for 3×3 and 5×5 kernels, on Gaussian and post-ReLU
# inputs, 64 channels accumulated, against the float64 reference; direct and fft-tiled rows as the baseline.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-notebooks-data/winograd-accuracy.csv}
convlab=${CONVLAB:-.build/release/convlab}
[ -x "$convlab" ] || swift build -c release >&2
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
header_written=0
run() {  # kernel, m (or - for baselines), backends
  local kernel=$1 m=$2 backends=$3 extra=()
  [ "$m" != - ] && extra=(--winograd-tile "$m")
  "$convlab" accuracy --kernel "$kernel" --channels 64 --size 32 --distributions normal,relu --seeds 4 \
    --backends "$backends" "${extra[@]}" --format csv > "$tmp"
  if [ $header_written = 0 ]; then head -1 "$tmp" | sed 's/^/m,/' > "$out"; header_written=1; fi
  tail -n +2 "$tmp" | sed "s/^/${m/-/},/" >> "$out"
}
run 3 - direct,fft-tiled
for m in 2 3 4 5 6 7 8; do run 3 "$m" winograd; done
run 5 - direct,fft-tiled
for m in 2 3 4 5 6; do run 5 "$m" winograd; done
echo "wrote $out" >&2
