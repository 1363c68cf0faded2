#!/usr/bin/env bash
# usage: scripts/merge-shards.sh OUT.csv SHARD.csv...
# Merges sweep CSVs (shards of one sweep, or resumed runs) into OUT.csv with one header. Refuses, with one line
# saying which files: different headers, rows from different convlab versions or commits (a cluster whose nodes run
# different builds), and the same (shape, backend, threads) row twice (a shard given twice, or two overlapping grids).
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,5p' "$0"; exit 2; }
out=$1; shift
for f in "$@"; do [ -r "$f" ] || { echo "merge-shards: cannot read $f" >&2; exit 1; }; done
python3 - "$out" "$@" <<'PY'
import csv, os, sys
out, shards = sys.argv[1], sys.argv[2:]
identity = ["name", "backend", "N", "C", "H", "W", "K", "R", "S", "stride_h", "stride_w", "pad_top", "pad_bottom",
            "pad_left", "pad_right", "dilation_h", "dilation_w", "groups", "threads"]
def fail(message):
    print(f"merge-shards: {message}", file=sys.stderr)
    sys.exit(1)
header, rows, seen, builds = None, [], {}, {}
for path in shards:
    with open(path, newline="") as f:
        reader = csv.reader(f)
        first = next(reader, None)
        if first is None:
            fail(f"{path} is empty (no header)")
        if header is None:
            header = first
            missing = [c for c in identity + ["convlab_version", "git_commit"] if c not in header]
            if missing:
                fail(f"{path} is not a convlab sweep CSV (no column {missing[0]})")
        elif first != header:
            fail(f"{path} has a different header from {shards[0]}")
        for line, record in enumerate(reader, start=2):
            if len(record) != len(header):
                fail(f"{path} line {line} has {len(record)} fields, the header {len(header)}")
            row = dict(zip(header, record))
            build = (row["convlab_version"], row["git_commit"])
            builds.setdefault(build, path)
            if len(builds) > 1:
                (a, pa), (b, pb) = list(builds.items())[:2]
                fail(f"rows from different builds: {pa} has convlab {a[0]} ({a[1]}), {pb} has {b[0]} ({b[1]})")
            key = tuple(row[c] for c in identity)
            if key in seen:
                fail(f"{'/'.join(key[:2])} {'x'.join(key[2:9])} appears in {seen[key]} and {path}")
            seen[key] = path
            rows.append(record)
tmp = out + ".tmp"
with open(tmp, "w", newline="") as f:
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
os.replace(tmp, out)
print(f"merged {len(shards)} files into {out} ({len(rows)} rows)", file=sys.stderr)
PY
