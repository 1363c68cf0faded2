# Shared by the sweep scripts: build once, find the binary, and a helper that runs `convlab sweep` into a CSV.
# shellcheck shell=bash
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CONVLAB=${CONVLAB:-.build/release/convlab}
if [ ! -x "$CONVLAB" ]; then swift build -c release >&2; fi
THREADS=${THREADS:-$(nproc)}
# convlab calls OpenBLAS with one thread and splits the work itself, but OpenBLAS starts its own pool when the library
# loads, and on the Intel kind one of those threads polled (sched_yield) for ~0.3 s of every process, taking a core
# from whatever was measured first. One OpenBLAS thread from the start avoids that.
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
# run_sweep OUT.csv [sweep options...]: a fresh sweep into OUT.csv (resumable: rerunning continues it).
run_sweep() {
  local out=$1; shift
  "$CONVLAB" sweep --threads "$THREADS" --max-time "${MAX_TIME:-0.5}" --resume "$out" "$@"
  echo "wrote $out" >&2
}
# onednn_anchor NAME: sets $anchor to the oneDNN timing script (ONEDNN, default ../shared/anchors/run_onednn.sh), or
# stops the calling script NAME with a message saying how to point at it.
onednn_anchor() {
  anchor=${ONEDNN:-../shared/anchors/run_onednn.sh}
  [ -x "$anchor" ] || { echo "$1: $anchor not found (set ONEDNN=path/to/run_onednn.sh)" >&2; exit 2; }
}
# interleave_rows SUITE BENCH.csv ONEDNN.csv PASS_ENV -- CONVLAB_BENCH_ARGS...: row by row, `convlab bench` then the
# oneDNN anchor (with CONVLAB_PASS=PASS_ENV) on the same one-row suite, each appending to its CSV (one header).
# Drift of the machine between the two halves of a whole-suite run once moved oneDNN's medians by up to 37% against
# ours (vgg1_2), and the geomean of 55 network layers between 0.49 and 0.88 for the same code.
# ROUNDS=R (default 1) measures each row R times, the two sides alternating (ours, theirs, ours, theirs, ...), and
# both CSVs keep every round; the summaries take each side's best median. On the Intel kind a row's two medians
# moved together by up to 1.7x from one round to the next (MobileNetV2's 32 -> 16 1x1 at 112^2, five rounds: oneDNN
# 0.043-0.071 ms, ours 0.055-0.081), so one round's ratio is partly which moment each side drew.
interleave_rows() {
  local suite=$1 bench=$2 onednn=$3 pass_env=$4; shift 5
  local row header first=1 line round
  row=$(mktemp)
  header=$(head -n 1 "$suite")
  while IFS= read -r line; do
    [ -n "$line" ] || continue
    printf '%s\n%s\n' "$header" "$line" > "$row"
    for round in $(seq 1 "${ROUNDS:-1}"); do
      if [ $first = 1 ]; then
        "$CONVLAB" bench --suite "$row" --threads "$THREADS" "$@" > "$bench"
        CONVLAB_PASS=$pass_env "$anchor" "$row" "$THREADS" > "$onednn"
        first=0
      else
        "$CONVLAB" bench --suite "$row" --threads "$THREADS" "$@" | tail -n +2 >> "$bench"
        CONVLAB_PASS=$pass_env "$anchor" "$row" "$THREADS" | tail -n +2 >> "$onednn"
      fi
    done
    echo "${line%%,*} done" >&2
  done < <(tail -n +2 "$suite")
  rm -f "$row"
}
