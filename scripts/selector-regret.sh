#!/usr/bin/env bash
# usage: scripts/selector-regret.sh [SUITE.csv] [OUT.txt]   (defaults ../shared/bench/suite.csv, notebooks-data/selector-regret.txt)
# Measures every candidate on each suite row and reports the heuristic selector's regret; the last line is
# "summary: rows=N within10=M mean_regret=… worst_regret=…".
set -euo pipefail
source "$(dirname "$0")/common.sh"
suite=${1:-../shared/bench/suite.csv}
out=${2:-notebooks-data/selector-regret.txt}
"$CONVLAB" select --evaluate --suite "$suite" --threads "$THREADS" --no-wisdom | tee "$out"
