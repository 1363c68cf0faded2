#!/usr/bin/env bash
# usage: scripts/batch-sweep.sh [OUT.csv]   (default notebooks-data/batch-sweep.csv)
# Time versus batch size (1…16) for a 3×3 128→128 layer at 28×28 and a 5×5 64→64 layer at 32×32.
set -euo pipefail
source "$(dirname "$0")/common.sh"
out=${1:-notebooks-data/batch-sweep.csv}
run_sweep "$out" --kernels 3 --channels 128 --sizes 28 --batch 1,2,4,8,16
run_sweep "$out" --kernels 5 --channels 64 --sizes 32 --batch 1,2,4,8,16
