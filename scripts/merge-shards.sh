#!/usr/bin/env bash
# usage: scripts/merge-shards.sh OUT.csv SHARD.csv...
# Concatenates sweep CSVs that share a header (shards, or resumed runs) into OUT.csv with one header.
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,3p' "$0"; exit 2; }
out=$1; shift
head -1 "$1" > "$out.tmp"
for f in "$@"; do
  [ "$(head -1 "$f")" = "$(head -1 "$1")" ] || { echo "merge-shards: $f has a different header" >&2; exit 1; }
  tail -n +2 "$f" >> "$out.tmp"
done
mv "$out.tmp" "$out"
echo "merged $# files into $out ($(($(wc -l < "$out") - 1)) rows)" >&2
