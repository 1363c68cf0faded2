#!/usr/bin/env bash
# usage: scripts/typical-error-calibration.sh [OUT.csv]   (default notebooks-data/typical-error-calibration.csv)
# The calibration sweep of the typical-error estimates (Sources/ConvLabCore/TypicalError.swift): 86 shapes (1-192
# channels, 1x1-7x7 kernels, 9-40 px, batch 1-3, depthwise and stride 2) x every backend x the three passes x uniform
# and normal data, 2 seeds each: measured mean error beside the plan's estimate and its worst-case bound.
# Prints, per family and pass, the spread of measured / estimate. Takes ~4 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-notebooks-data/typical-error-calibration.csv}
convlab=${CONVLAB:-.build/release/convlab}
[ -x "$convlab" ] || swift build -c release >&2
export OPENBLAS_NUM_THREADS=1
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
first=1
run() {  # C K kernel size batch groups stride
  for dist in uniform normal; do
    "$convlab" accuracy --channels "$1" --out-channels "$2" --kernel "$3" --size "$4" --batch "$5" --groups "$6" \
      --stride "$7" --pass training --seeds 2 --distributions "$dist" --format csv > "$tmp"
    if [ $first = 1 ]; then head -1 "$tmp" | sed 's/^/groups,stride,batch,/' > "$out"; first=0; fi
    tail -n +2 "$tmp" | sed "s/^/$6,$7,$5,/" >> "$out"
  done
}
batch=1
for C in 1 3 8 16 64 192; do
  K=$(( C > 1 ? (C / 2 > 4 ? C / 2 : 4) : 8 ))
  for kernel in 1 3 5 7; do
    for size in 9 24 40; do
      run "$C" "$K" "$kernel" "$size" "$batch" 1 1
      batch=$(( batch % 3 + 1 ))  # 1, 2, 3 in turn
    done
  done
done
for C in 16 48; do
  for kernel in 3 5; do
    run "$C" "$C" "$kernel" 28 2 "$C" 1
    run "$C" "$C" "$kernel" 28 1 "$C" 2
  done
done
run 8 16 3 33 2 1 2
run 32 16 3 33 2 1 2
echo "wrote $out" >&2
python3 - "$out" <<'PY'
import sys, pandas as pd, numpy as np
d = pd.read_csv(sys.argv[1])
d = d[(d.check == "pass") & (d.mean_rel_error > 0)].copy()
d["family"] = d.backend.str.replace(r"-f\d+x\d+", "", regex=True)
d["ratio"] = d.mean_rel_error / d.typical_error
q = d.groupby(["family", "pass"]).ratio.describe(percentiles=[.05, .5, .95])[["count", "min", "5%", "50%", "95%", "max"]]
print(q.to_string(float_format=lambda v: f"{v:.2f}"))
inside = ((d.ratio <= 10) & (d.ratio >= 0.1)).mean()
print(f"measured mean within 10x of the estimate: {100 * inside:.1f}% of {len(d)} rows; "
      f"geometric mean of measured/estimate {np.exp(np.log(d.ratio).mean()):.2f}")
PY
