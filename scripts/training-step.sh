#!/usr/bin/env bash
# usage: [ROUNDS=R] scripts/training-step.sh [SUITE.csv] [OUT_DIR]   (defaults: ../shared/bench/suite.csv, notebooks-data)
# The training-step study: every suite row through every convlab backend in all three passes
# (`convlab bench --pass training`) and through every oneDNN algorithm of the same passes
# (CONVLAB_PASS=all ../shared/anchors/run_onednn.sh), interleaved row by row in the same session (ROUNDS=R: each row R
# times, the sides alternating, each side's best median kept; see common.sh). Writes
#   OUT_DIR/training-step-bench.csv   convlab's measurements (one row per row × pass × backend)
#   OUT_DIR/training-step-onednn.csv  oneDNN's measurements
#   OUT_DIR/training-step.csv         per row: convlab's fastest passing backend ("/nChw16c" when on blocked
#                                     tensors, LAYOUT=both by default) and ms per pass, oneDNN's fastest
#                                     algorithm and ms per pass, the step sums, and the speedups
#                                     (oneDNN ms / convlab ms; > 1 means convlab is faster)
# The last lines printed are "summary: pass=P rows=N faster=M geomean_speedup=… worst=…" for each pass and the step.
set -euo pipefail
source "$(dirname "$0")/common.sh"
suite=${1:-../shared/bench/suite.csv}
out=${2:-notebooks-data}
onednn_anchor training-step
mkdir -p "$out"
bench=$out/training-step-bench.csv onednn=$out/training-step-onednn.csv result=$out/training-step.csv

# Row by row (interleave_rows in common.sh): whole-suite halves let the machine's drift into the ratios.
# Plans with a channel-blocked entry point are timed on nChw16c tensors too (oneDNN's own blocked layouts are its best
# case, reorders untimed), and each pass takes convlab's faster layout; LAYOUT=nchw compares NCHW only.
layout=${LAYOUT-both}
interleave_rows "$suite" "$bench" "$onednn" all -- --pass training --max-time "${MAX_TIME:-1}" \
  ${layout:+--layout "$layout"}

python3 - "$bench" "$onednn" > "$result" <<'PY'
import csv, math, sys
passes = ["forward", "backward-data", "backward-weights"]
ours, theirs, order = {}, {}, []
for r in csv.DictReader(open(sys.argv[1])):
    if r["name"] not in order:
        order.append(r["name"])
    if r["status"] != "ok" or r["passed"] != "true":
        continue
    key, ms = (r["name"], r["pass"]), float(r["ms_median"])
    # A plan timed on blocked tensors says so ("direct/nChw16c"); NCHW keeps the plain backend name.
    backend = r["backend"] + ("/nChw16c" if r.get("layout") == "nChw16c" else "")
    if key not in ours or ms < ours[key][1]:
        ours[key] = (backend, ms)
for r in csv.DictReader(open(sys.argv[2])):
    ms = float(r["ms_median"] or 0)
    key = (r["name"], r["pass"].replace("_", "-"))
    if ms > 0 and (key not in theirs or ms < theirs[key][1]):
        theirs[key] = (r["variant"], ms)
columns = ["name"]
for p in passes:
    columns += [f"{p}_convlab_backend", f"{p}_convlab_ms", f"{p}_onednn_variant", f"{p}_onednn_ms", f"{p}_speedup"]
columns += ["step_convlab_ms", "step_onednn_ms", "step_speedup"]
print(",".join(c.replace("-", "_") for c in columns))
for name in order:
    if not all((name, p) in ours and (name, p) in theirs for p in passes):
        continue
    fields, mine, peer = [name], 0.0, 0.0
    for p in passes:
        (b, ms), (v, their) = ours[(name, p)], theirs[(name, p)]
        fields += [b, f"{ms:.4f}", v, f"{their:.4f}", f"{their / ms:.3f}"]
        mine, peer = mine + ms, peer + their
    fields += [f"{mine:.4f}", f"{peer:.4f}", f"{peer / mine:.3f}"]
    print(",".join(fields))
PY

python3 - "$result" <<'PY'
import csv, math, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print(f"{'name':14s} {'forward':>30s} {'backward-data':>30s} {'backward-weights':>30s} {'step ms':>9s} {'oneDNN':>9s} {'speedup':>7s}")
for r in rows:
    cells = [f"{r[p + '_convlab_backend'][:20]:>20s} {float(r[p + '_speedup']):6.2f}x" for p in
             ("forward", "backward_data", "backward_weights")]
    print(f"{r['name']:14s} {' '.join(f'{c:>30s}' for c in cells)} {float(r['step_convlab_ms']):9.3f} "
          f"{float(r['step_onednn_ms']):9.3f} {float(r['step_speedup']):6.2f}x")
for p in ("forward", "backward_data", "backward_weights", "step"):
    s = [float(r[p + "_speedup"]) for r in rows]
    if s:
        g = math.exp(sum(map(math.log, s)) / len(s))
        print(f"summary: pass={p} rows={len(s)} faster={sum(x > 1 for x in s)} geomean_speedup={g:.2f} worst={min(s):.2f}")
PY
