#!/usr/bin/env bash
# usage: scripts/network-vs-onednn.sh NAME [OUT_DIR] [-- convlab network options, e.g. --batch 16]
#        (default OUT_DIR notebooks-data/networks)
# One network, layer by layer, in one session:
#   1. `convlab network NAME --suite-out` writes its convolutions as a suite;
#   2. scripts/vs-onednn.sh times every convlab backend and every oneDNN algorithm on it, row by row
#      (OUT_DIR/NAME-vs-onednn.csv: convlab's fastest passing backend against oneDNN's fastest algorithm);
#   3. `convlab network NAME` times the selector's choice and the direct-only policy on every layer.
# Then prints the whole-network forward time four ways: selector, direct only, convlab's best backend per layer and
# oneDNN's best algorithm per layer, and the geometric-mean speedup over oneDNN.
set -euo pipefail
source "$(dirname "$0")/common.sh"
name=${1:?usage: network-vs-onednn.sh NAME [OUT_DIR] [-- network options]}; shift
out=notebooks-data/networks
if [ $# -gt 0 ] && [ "$1" != "--" ]; then out=$1; shift; fi
[ "${1:-}" = "--" ] && shift
mkdir -p "$out"
suite=$out/$name-suite.csv
"$CONVLAB" network "$name" --no-run --suite-out "$suite" "$@" > /dev/null
scripts/vs-onednn.sh "$suite" "$out/$name-onednn-run" | tail -1
cp "$out/$name-onednn-run/suite-vs-onednn.csv" "$out/$name-vs-onednn.csv"
"$CONVLAB" network "$name" --format csv --no-check --threads "$THREADS" "$@" > "$out/$name-selector.csv"
"$CONVLAB" network "$name" --format csv --no-check --threads "$THREADS" --backend direct "$@" > "$out/$name-direct.csv"
python3 - "$name" "$out/$name-vs-onednn.csv" "$out/$name-selector.csv" "$out/$name-direct.csv" <<'PY'
import csv, math, sys
name, versus, selector, direct = sys.argv[1:]
rows = list(csv.DictReader(open(versus)))
def total(path):
    for r in csv.DictReader(open(path)):
        if r["name"] == "total" and r["pass"] == "forward":
            return float(r["median_ms"] or "nan")
best = sum(float(r["convlab_ms"]) for r in rows)
onednn = sum(float(r["onednn_ms"]) for r in rows)
geomean = math.exp(sum(math.log(float(r["speedup"])) for r in rows) / len(rows))
print(f"{name}: forward ms  selector {total(selector):.3f}  direct-only {total(direct):.3f}  "
      f"convlab-best {best:.3f}  onednn-best {onednn:.3f}  "
      f"(network speedup {onednn / best:.2f}, layer geomean {geomean:.2f}, {len(rows)} layers)")
PY
