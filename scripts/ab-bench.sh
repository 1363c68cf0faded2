#!/usr/bin/env bash
# usage: scripts/ab-bench.sh BEFORE_BINARY AFTER_BINARY [SUITE.csv] [ROUNDS]   (defaults ../shared/bench/suite.csv, 3)
# Did a change make convlab slower? Runs `convlab bench --no-check` with both binaries on every suite row,
# alternating BEFORE and AFTER row by row for ROUNDS rounds (so machine drift hits both sides alike), and prints per
# row each side's fastest backend (best median over rounds) and after/before. The last line is
# "summary: rows=N geomean_after_over_before=… worst=…" (< 1: AFTER is faster). Accuracy is the tests' job.
set -euo pipefail
before=${1:?usage: $0 BEFORE AFTER [SUITE] [ROUNDS]}
after=${2:?usage: $0 BEFORE AFTER [SUITE] [ROUNDS]}
suite=${3:-../shared/bench/suite.csv}
rounds=${4:-3}
for b in "$before" "$after"; do [ -x "$b" ] || { echo "ab-bench: $b is not an executable" >&2; exit 2; }; done
[ -r "$suite" ] || { echo "ab-bench: cannot read $suite" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
header=$(head -n 1 "$suite")
grep -v '^[[:space:]]*\(#\|$\)' "$suite" | tail -n +2 > "$work/rows"
total=$(wc -l < "$work/rows")
index=0
while IFS= read -r line; do
  index=$((index + 1))
  printf '%s\n%s\n' "$header" "$line" > "$work/row.csv"
  echo "ab-bench: [$index/$total] ${line%%,*}" >&2
  for round in $(seq 1 "$rounds"); do
    for side in before after; do
      bin=$before; [ "$side" = after ] && bin=$after
      "$bin" bench --suite "$work/row.csv" --threads "${THREADS:-$(nproc)}" --max-time "${MAX_TIME:-0.5}" --no-check \
        > "$work/$side-$index-$round.csv"
    done
  done
done < "$work/rows"
python3 - "$work" <<'PY'
import csv, glob, math, sys
work = sys.argv[1]
best, order = {"before": {}, "after": {}}, []
for side in best:
    for path in sorted(glob.glob(f"{work}/{side}-*.csv")):
        for r in csv.DictReader(open(path)):
            if r["status"] != "ok":
                continue
            name, ms = r["name"], float(r["ms_median"])
            if name not in order:
                order.append(name)
            if name not in best[side] or ms < best[side][name][1]:
                best[side][name] = (r["backend"], ms)
print(f"{'row':<14} {'before':<16} {'ms':>9} {'after':<16} {'ms':>9} {'after/before':>12}")
ratios = []
for name in order:
    if name in best["before"] and name in best["after"]:
        (b0, t0), (b1, t1) = best["before"][name], best["after"][name]
        ratios.append(t1 / t0)
        print(f"{name:<14} {b0:<16} {t0:9.4f} {b1:<16} {t1:9.4f} {t1 / t0:12.3f}")
g = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
print(f"summary: rows={len(ratios)} geomean_after_over_before={g:.3f} worst={max(ratios):.3f}")
PY
