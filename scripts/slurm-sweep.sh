#!/usr/bin/env bash
# usage: scripts/slurm-sweep.sh SHARDS OUT.csv [sweep options...]
#   e.g. scripts/slurm-sweep.sh 16 notebooks-data/big-sweep.csv --kernels 1,3,5,7 --channels 64,256 --sizes 28,56
# Submits a Slurm job array of SHARDS tasks (scripts/slurm-sweep.sbatch, one shard each) and a merge job that runs
# only when all of them succeeded (--dependency=afterok), writing OUT.csv. Prints "array JOBID merge JOBID". Logs
# go to the current directory; shard CSVs to OUT's folder, shards-<name>/. Rerunning a failed or cancelled index
# resumes its CSV:  SWEEP_SHARDS=16 SWEEP_DIR=<that folder> sbatch --array=5 scripts/slurm-sweep.sbatch
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,8p' "$0"; exit 2; }
shards=$1; out=$2; shift 2
[[ $shards =~ ^[0-9]+$ ]] && [ "$shards" -ge 1 ] || { echo "slurm-sweep: SHARDS '$shards' is not a positive number" >&2; exit 2; }
command -v sbatch >/dev/null || { echo "slurm-sweep: sbatch not found (no Slurm client here)" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
convlab=${CONVLAB:-$here/../.build/release/convlab}
[ -x "$convlab" ] || (cd "$here/.." && swift build -c release >&2)
case $out in /*) ;; *) out=$PWD/$out ;; esac
dir=$(dirname "$out")/shards-$(basename "$out" .csv)
mkdir -p "$dir"
grid="$*"
array=$(CONVLAB=$convlab SWEEP_SHARDS=$shards SWEEP_DIR=$dir \
  SWEEP_GRID=${grid:---kernels 1,3 --channels 16,64 --sizes 14,28 --batch 1} \
  sbatch --parsable --export=ALL --array="1-$shards" "$here/slurm-sweep.sbatch")
array=${array%%;*}
merge=$(sbatch --parsable --dependency="afterok:$array" --job-name=convlab-merge --output="slurm-convlab-merge-%j.out" \
  --wrap "'$here/merge-shards.sh' '$out' '$dir'/shard-*-of-$shards.csv")
echo "array $array merge ${merge%%;*}"
