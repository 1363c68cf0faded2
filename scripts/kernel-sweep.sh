#!/usr/bin/env bash
# usage: scripts/kernel-sweep.sh [OUT.csv]   (default notebooks-data/kernel-sweep.csv)
# Time of every backend versus kernel size (1…15) for 64→64 channels at 64×64: where FFT and Winograd overtake the
# direct methods.
set -euo pipefail
source "$(dirname "$0")/common.sh"
run_sweep "${1:-notebooks-data/kernel-sweep.csv}" --kernels 1,3,5,7,9,11,13,15 --channels 64 --sizes 64 --batch 1
