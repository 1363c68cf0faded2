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
interleave_rows() {
  local suite=$1 bench=$2 onednn=$3 pass_env=$4; shift 5
  local row header first=1 line
  row=$(mktemp)
  header=$(head -n 1 "$suite")
  while IFS= read -r line; do
    [ -n "$line" ] || continue
    printf '%s\n%s\n' "$header" "$line" > "$row"
    if [ $first = 1 ]; then
      "$CONVLAB" bench --suite "$row" --threads "$THREADS" "$@" > "$bench"
      CONVLAB_PASS=$pass_env "$anchor" "$row" "$THREADS" > "$onednn"
      first=0
    else
      "$CONVLAB" bench --suite "$row" --threads "$THREADS" "$@" | tail -n +2 >> "$bench"
      CONVLAB_PASS=$pass_env "$anchor" "$row" "$THREADS" | tail -n +2 >> "$onednn"
    fi
    echo "${line%%,*} done" >&2
  done < <(tail -n +2 "$suite")
  rm -f "$row"
}
