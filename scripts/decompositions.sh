#!/usr/bin/env bash
# usage: scripts/decompositions.sh [OUT.csv]   (default notebooks-data/decompositions.csv)
# Low-rank kernel decompositions (SVD of Jaderberg et al., CP of Lebedev et al., Tucker-2 of Kim et al.) of synthetic
# trained-like kernels at several ranks: weight and output error, FLOP reduction and measured speed-up.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-notebooks-data/decompositions.csv}
convlab=${CONVLAB:-.build/release/convlab}
[ -x "$convlab" ] || swift build -c release >&2
threads=${THREADS:-$(nproc)}
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
header_written=0
run() {  # kernel K,C,R,S; size; method; rank option; rank
  "$convlab" decompose --synthetic "$1" --size "$2" --method "$3" "$4" "$5" --threads "$threads" --format csv > "$tmp"
  if [ $header_written = 0 ]; then head -1 "$tmp" | sed 's/^/kernel,size,/' > "$out"; header_written=1; fi
  tail -n +2 "$tmp" | sed "s/^/${1//,/x},$2,/" >> "$out"
}
for spec in "64,64,3,3 56" "128,128,3,3 28" "64,64,5,5 56"; do
  set -- $spec
  kernel=$1 size=$2
  IFS=, read -r K C R S <<< "$kernel"
  svd_max=$(( C * R < K * S ? C * R : K * S ))
  for t in 4 8 16 32 64; do [ "$t" -le "$svd_max" ] && run "$kernel" "$size" svd --rank "$t"; done
  for r in 8 16 32 64; do run "$kernel" "$size" cp --rank "$r"; done
  for r in 8 16 32 48; do [ "$r" -le "$C" ] && run "$kernel" "$size" tucker --ranks "$r,$r"; done
done
echo "wrote $out" >&2
