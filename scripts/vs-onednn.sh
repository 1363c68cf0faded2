#!/usr/bin/env bash
# usage: [ROUNDS=R] [PASS=forward|backward-data|backward-weights] scripts/vs-onednn.sh [SUITE.csv] [OUT_DIR]
#        (defaults: forward, ../shared/bench/suite.csv, notebooks-data)
# Times every convlab backend (`convlab bench --pass PASS`) and every oneDNN algorithm of the same pass
# (CONVLAB_PASS=… ../shared/anchors/run_onednn.sh) on the same suite in the same session, interleaved row by row,
# then writes (ROUNDS=R: every row R times, the sides alternating, each side's best median kept; see common.sh)
# OUT_DIR/suite-vs-onednn[-PASS].csv: per row, convlab's fastest passing backend, oneDNN's fastest algorithm, and the
# speedup (oneDNN ms / convlab ms; > 1 means convlab is faster). Forward keeps the unsuffixed file names.
# The last line printed is "summary: rows=N faster=M geomean_speedup=… worst=…". Rows whose stride, pad or dilation
# is not a plain integer (e.g. "0x3") are left out with a note on stderr: the anchor reads each as one integer.
set -euo pipefail
source "$(dirname "$0")/common.sh"
suite=${1:-../shared/bench/suite.csv}
out=${2:-notebooks-data}
onednn_anchor vs-onednn
pass=${PASS:-forward}
# convlab's plans that have a channel-blocked entry point are timed on nChw16c tensors too (oneDNN's own blocked
# layouts are its best case, reorders untimed); LAYOUT=nchw compares NCHW only, LAYOUT= passes no --layout (for
# binaries that predate it).
layout=${LAYOUT-both}
case "$pass" in
  forward) suffix= ;;
  backward-data|backward-weights) suffix=-$pass ;;
  *) echo "vs-onednn: PASS must be forward, backward-data or backward-weights, not '$pass'" >&2; exit 2 ;;
esac
mkdir -p "$out"
bench=$out/suite-bench$suffix.csv onednn=$out/onednn$suffix.csv result=$out/suite-vs-onednn$suffix.csv

# Row by row (interleave_rows in common.sh): whole-suite halves let the machine's drift into the ratios.
interleave_rows "$suite" "$bench" "$onednn" "${pass//-/_}" -- --pass "$pass" --max-time "${MAX_TIME:-1.5}" \
  ${layout:+--layout "$layout"}

# Best per row on each side (convlab: status ok and passed; oneDNN: every variant it ran), joined on name.
# (Python's csv module: convlab's variant and message columns are quoted and may hold commas.)
python3 - "$bench" "$onednn" "$suite" > "$result" <<'PY'
import csv, sys
ours, theirs, order = {}, {}, []
# The anchor reads one integer stride, padding and dilation per row (`std::stol`: "0x3" is 0); a row written otherwise
# (Inception's 1×7 with "0x3") is a different, smaller problem there, so its ratio would compare unequal work.
anchor_differs = {r["name"] for r in csv.DictReader(line for line in open(sys.argv[3]) if not line.startswith("#"))
                  if any(not (r.get(k) or "1").strip().isdigit() for k in ("stride", "pad", "dilation"))}
for r in csv.DictReader(open(sys.argv[1])):
    if r["status"] != "ok" or r["passed"] != "true":
        continue
    name, ms = r["name"], float(r["ms_median"])
    if name not in ours:
        order.append(name)
    if name not in ours or ms < ours[name][1]:
        ours[name] = (r["backend"], ms, r.get("layout") or "nchw")
for r in csv.DictReader(open(sys.argv[2])):
    ms = float(r["ms_median"] or 0)
    if ms > 0 and (r["name"] not in theirs or ms < theirs[r["name"]][1]):
        theirs[r["name"]] = (r["variant"], ms)
print("name,convlab_backend,convlab_ms,onednn_variant,onednn_ms,speedup,convlab_layout")
for name in order:
    if name in theirs:
        if name in anchor_differs:
            print(f"vs-onednn: {name} left out: the anchor reads its stride/pad/dilation as one integer, "
                  "so oneDNN would run another problem", file=sys.stderr)
            continue
        (b, ms, lay), (v, their) = ours[name], theirs[name]
        print(f"{name},{b},{ms:.4f},{v},{their:.4f},{their / ms:.3f},{lay}")
PY

column -s, -t < "$result"
awk -F, 'NR > 1 { n++; if ($6 > 1) f++; g += log($6); if (w == "" || $6 < w) w = $6 }
         END { printf "summary: rows=%d faster=%d geomean_speedup=%.2f worst=%.2f\n", n, f, exp(g / n), w }' \
  "$result"
