#!/usr/bin/env bash
# usage: scripts/channel-sweep.sh [OUT.csv]   (default notebooks-data/channel-sweep.csv)
# Time versus channel count (C = K, 4…512) for 3×3 and 7×7 kernels at 28×28.
set -euo pipefail
source "$(dirname "$0")/common.sh"
run_sweep "${1:-notebooks-data/channel-sweep.csv}" --kernels 3,7 --channels 4,16,64,128,256,512 --sizes 28 --batch 1
