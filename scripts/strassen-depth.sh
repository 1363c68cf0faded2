#!/usr/bin/env bash
# usage: scripts/strassen-depth.sh [OUT.csv] [THREADS]   (default notebooks-data/strassen-depth.csv, all cores)
# Speed and error of Strassen–Winograd by recursion depth against its native base GEMM, for square products.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-notebooks-data/strassen-depth.csv}
threads=${2:-$(nproc)}
convlab=${CONVLAB:-.build/release/convlab}
[ -x "$convlab" ] || swift build -c release >&2
echo "engine,depth,m,n,k,threads,ms_median,ms_min,gflops,max_rel_error,workspace_bytes" > "$out"
for size in 1024 2048 4096; do
  for depth in 0 1 2 3; do
    engine=strassen; [ "$depth" = 0 ] && engine=native
    "$convlab" matmul --size "$size" --engine "$engine" --depth "$depth" --cutoff 128 --threads "$threads" \
      --check-rows 32 --format csv | tail -n +2 | awk -F, -v d="$depth" 'BEGIN{OFS=","} {$1=$1","d; print}' >> "$out"
  done
done
echo "wrote $out" >&2
