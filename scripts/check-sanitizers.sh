#!/usr/bin/env bash
# usage: scripts/check-sanitizers.sh [thread|address|all]   (default all)
# Runs the concurrency, plan-contract, property, non-finite and .npy fuzz suites under ThreadSanitizer and
# AddressSanitizer (debug builds with the sanitizer runtime, in .build-tsan / .build-asan so the normal build is
# untouched). A data race, use-after-free or out-of-bounds access fails the run. Takes ~10 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
suites='ConcurrencyTests|PlanContractTests|NonFiniteTests|NumpyFuzzTests|NumpyFileTests|BackendAgreementTests'
run() {  # sanitizer, scratch path
  echo "== swift test --sanitize=$1 ($suites)" >&2
  # halt_on_error: the first report fails the run instead of scrolling past.
  TSAN_OPTIONS=halt_on_error=1 ASAN_OPTIONS=halt_on_error=1:detect_leaks=0 \
    swift test --sanitize="$1" --scratch-path "$2" --filter "$suites"
}
case $which in
  thread) run thread .build-tsan ;;
  address) run address .build-asan ;;
  all) run thread .build-tsan; run address .build-asan ;;
  *) echo "usage: $0 [thread|address|all]" >&2; exit 2 ;;
esac
echo "sanitizers: clean" >&2
