#!/usr/bin/env bash
# usage: scripts/check-spills.sh [BINARY]   (default .build/release/convlab; build it with `swift build -c release`)
#
# Lists the functions of a release binary that hold FMA loops and move zmm registers to or from the stack, and fails
# when one moves more vectors through the stack than half its FMA count: a register tile that spills. The build uses
# `-target-cpu native`, so LLVM schedules, unrolls and allocates registers for the machine it is built on, and a tile
# that is clean on one kind can spill on another (the 2 × 12 blocked tile: none on the Intel kind, 108 stack moves per
# unrolled body on AMD Zen 5, half its speed). Run it on every new machine kind.
set -euo pipefail
bin=${1:-.build/release/convlab}
[ -f "$bin" ] || { echo "check-spills: no binary at $bin (swift build -c release first)" >&2; exit 2; }
objdump -d --no-show-raw-insn "$bin" | awk '
  function report() {
    if (name != "" && fmas >= 16 && stack > 0) {
      bad = 2 * stack > fmas
      printf "%s %5d FMAs %4d zmm stack moves  %s\n", bad ? "SPILLS" : "ok    ", fmas, stack, name
      if (bad) failed = 1
    }
  }
  /^[0-9a-f]+ <.*>:$/ { report(); name = $2; fmas = 0; stack = 0; next }
  /vfmadd|vfnmadd/ { fmas++ }
  /zmm/ && /\(%rsp\)/ { stack++ }
  END { report(); exit failed }'
