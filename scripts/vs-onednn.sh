#!/usr/bin/env bash
# usage: scripts/vs-onednn.sh [SUITE.csv] [OUT_DIR]   (defaults ../shared/bench/suite.csv, notebooks-data)
# Times every convlab backend (`convlab bench`) and every oneDNN algorithm (../shared/anchors/run_onednn.sh) on the
# same suite in the same session, then writes OUT_DIR/suite-vs-onednn.csv: per row, convlab's fastest passing
# backend, oneDNN's fastest algorithm, and the speedup (oneDNN ms / convlab ms; > 1 means convlab is faster).
# The last line printed is "summary: rows=N faster=M geomean_speedup=… worst=…".
set -euo pipefail
source "$(dirname "$0")/common.sh"
suite=${1:-../shared/bench/suite.csv}
out=${2:-notebooks-data}
anchor=${ONEDNN:-../shared/anchors/run_onednn.sh}
[ -x "$anchor" ] || { echo "vs-onednn: $anchor not found (set ONEDNN=path/to/run_onednn.sh)" >&2; exit 2; }
mkdir -p "$out"

"$CONVLAB" bench --suite "$suite" --threads "$THREADS" --max-time "${MAX_TIME:-1.5}" > "$out/suite-bench.csv"
"$anchor" "$suite" "$THREADS" > "$out/onednn.csv"

# Best per row on each side (convlab: status ok and passed; oneDNN: every variant it ran), joined on name.
# (Python's csv module: convlab's variant and message columns are quoted and may hold commas.)
python3 - "$out/suite-bench.csv" "$out/onednn.csv" > "$out/suite-vs-onednn.csv" <<'PY'
import csv, sys
ours, theirs, order = {}, {}, []
for r in csv.DictReader(open(sys.argv[1])):
    if r["status"] != "ok" or r["passed"] != "true":
        continue
    name, ms = r["name"], float(r["ms_median"])
    if name not in ours:
        order.append(name)
    if name not in ours or ms < ours[name][1]:
        ours[name] = (r["backend"], ms)
for r in csv.DictReader(open(sys.argv[2])):
    ms = float(r["ms_median"] or 0)
    if ms > 0 and (r["name"] not in theirs or ms < theirs[r["name"]][1]):
        theirs[r["name"]] = (r["variant"], ms)
print("name,convlab_backend,convlab_ms,onednn_variant,onednn_ms,speedup")
for name in order:
    if name in theirs:
        (b, ms), (v, their) = ours[name], theirs[name]
        print(f"{name},{b},{ms:.4f},{v},{their:.4f},{their / ms:.3f}")
PY

column -s, -t < "$out/suite-vs-onednn.csv"
awk -F, 'NR > 1 { n++; if ($6 > 1) f++; g += log($6); if (w == "" || $6 < w) w = $6 }
         END { printf "summary: rows=%d faster=%d geomean_speedup=%.2f worst=%.2f\n", n, f, exp(g / n), w }' \
  "$out/suite-vs-onednn.csv"
