#!/usr/bin/env bash
# usage: scripts/parallel-sweep.sh SHARDS OUT.csv [sweep options...]
#   e.g. scripts/parallel-sweep.sh 4 notebooks-data/big-sweep.csv --kernels 1,3,5,7 --channels 64,256 --sizes 28,56
# Runs `convlab sweep --shard i/SHARDS` for every i with GNU parallel (one process per shard, each pinned to
# THREADS_PER_SHARD threads), then merges the shard CSVs into OUT.csv (one header). Shards are deterministic
# slices, so the same command on several machines, each running some of the i, produces the same rows; rerunning
# resumes every shard's CSV (in OUT's folder, shards-<name>/).
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,8p' "$0"; exit 2; }
shards=$1; out=$2; shift 2
[[ $shards =~ ^[0-9]+$ ]] && [ "$shards" -ge 1 ] || { echo "parallel-sweep: SHARDS '$shards' is not a positive number" >&2; exit 2; }
case $out in /*) ;; *) out=$PWD/$out ;; esac
source "$(dirname "$0")/common.sh"
command -v parallel >/dev/null || { echo "parallel-sweep: GNU parallel not found (apt-get install parallel)" >&2; exit 1; }
dir=$(dirname "$out")/shards-$(basename "$out" .csv)
mkdir -p "$dir"
seq 1 "$shards" | parallel --will-cite --halt now,fail=1 --line-buffer "$CONVLAB" sweep \
  --threads "${THREADS_PER_SHARD:-1}" --shard {}/"$shards" --resume "$dir/shard-{}-of-$shards.csv" "$@"
scripts/merge-shards.sh "$out" "$dir"/shard-*-of-"$shards".csv
