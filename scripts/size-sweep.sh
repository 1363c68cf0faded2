#!/usr/bin/env bash
# usage: scripts/size-sweep.sh [OUT.csv]   (default notebooks-data/size-sweep.csv)
# Time versus image size (7…224) for 3×3 and 7×7 kernels, 64→64 channels.
set -euo pipefail
source "$(dirname "$0")/common.sh"
run_sweep "${1:-notebooks-data/size-sweep.csv}" --kernels 3,7 --channels 64 --sizes 7,14,28,56,112,224 --batch 1
