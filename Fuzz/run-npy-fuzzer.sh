#!/usr/bin/env bash
# usage: Fuzz/run-npy-fuzzer.sh [SECONDS]   (default 600)
# Coverage-guided fuzzing of the .npy reader with libFuzzer + AddressSanitizer. Builds the ConvLab sources with
# bounds/overflow checks on (-O, not the release build's -Ounchecked), starts from Fuzz/corpus (valid files of every
# dtype and order) and saves any crashing input to Fuzz/regressions/, which the test suite replays
# (NumpyFuzzTests.fuzzerRegressionsStayClean). Needs the Swift toolchain's libFuzzer (swiftc -sanitize=fuzzer).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
work=.build-fuzz
mkdir -p "$work/corpus" Fuzz/regressions
cp Fuzz/corpus/* "$work/corpus/" 2>/dev/null || true
swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name ConvLab -target-cpu native \
  -I Sources/CBLAS -I Sources/CFFTW $(pkg-config --libs openblas fftw3f) \
  Fuzz/NumpyReaderFuzzer.swift $(find Sources/ConvLab -name '*.swift' | sort) \
  -o "$work/npy-fuzzer" 2> >(grep -v 'Cannot export local symbol' >&2)
"$work/npy-fuzzer" "$work/corpus" -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=2048 \
  -artifact_prefix=Fuzz/regressions/ -print_final_stats=1
