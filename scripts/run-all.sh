#!/usr/bin/env bash
# usage: scripts/run-all.sh
# Regenerates every CSV in notebooks-data/ (a fresh run: old CSVs are moved to *.old), then the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release >&2
for f in kernel-sweep size-sweep channel-sweep batch-sweep; do
  [ -f "notebooks-data/$f.csv" ] && mv "notebooks-data/$f.csv" "notebooks-data/$f.csv.old"
  "scripts/$f.sh"
done
scripts/winograd-accuracy.sh
scripts/strassen-depth.sh
scripts/selector-regret.sh
scripts/layers.sh
scripts/decompositions.sh
if [ -f ../shared/bench/suite.csv ]; then
  .build/release/convlab bench --suite ../shared/bench/suite.csv --threads "${THREADS:-$(nproc)}" > notebooks-data/suite-bench.csv
  # The training-step study and the comparisons need the oneDNN anchor beside the suite.
  if [ -x ../shared/anchors/run_onednn.sh ]; then
    scripts/training-step.sh
    scripts/vs-onednn.sh ../shared/bench/suite.csv notebooks-data
    scripts/vs-onednn.sh bench/networks.csv notebooks-data/networks  # the layers of real networks
  fi
fi
python3 scripts/plot.py
