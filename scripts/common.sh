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
