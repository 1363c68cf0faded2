#!/usr/bin/env bash
# usage: scripts/check-sanitizers.sh [address|thread|all]   (default address; .ci/run runs address on every CI run)
# Memory safety as a routine check. Builds the package with AddressSanitizer (or ThreadSanitizer) in release mode
# (optimised code, as users run it; instrumented memory accesses) in .build-asan / .build-tsan, then runs:
#   - the GEMM engines on odd shapes at 1-5 threads, with canaries past each declared workspace;
#   - every backend on random descriptors (describe = plan, canary past the workspace, agreement with float64) and a
#     300-case sample of the property test;
#   - the bad-input catalogues: every library error, every numeric flag of every subcommand, malformed files (the
#     CLI runs here are the instrumented binary);
#   - concurrency, plan contracts (forward and backward), NaN/Inf and the .npy fuzz corpus;
#   - both backward passes of every backend against their float64 references (220 random shapes each);
#   - the worker pool behind Parallel.forEach with helpers spinning, asleep and shared by concurrent callers;
#   - the network tables and the model graphs (every malformed manifest and tensor, the tiny model end to end).
# A heap overflow, use-after-free or data race fails the run at its first report.
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-address}
suites='GEMMWorkspaceTests|MatrixMultiplierTests|PlanDescriptionTests|PropertyTests|RegistryTests|ErrorCatalogTests'
suites+='|FlagCatalogTests|ConcurrencyTests|PlanContractTests|NonFiniteTests|NumpyFuzzTests|NumpyFileTests'
suites+='|BackwardPlanContractTests|GradientAgreementTests|GradientReferenceTests|ParallelTests'
suites+='|ChannelBlockedDepthwiseTests|ChannelBlockedLayoutTests|PaddedRowTests|DepthwisePlanTests|NewPlanContractTests'
suites+='|AccuracyCeilingTests|TypicalErrorTests|MachineProfileTests|ModelGraphTests|NetworkArchitectureTests'
suites+='|VectorPrimitivesTests|DilationPhaseTests|ChannelVectorWeightGradientTests|ChannelBlockedDepthwiseGradientTests|DataGradientPhaseTests'
suites+='|ChannelBlockedPointwiseTests|ChannelBlockedDirectTests|FewChannelDirectTests|WinogradBlockedEntryTests'
suites+='|FilterTransformingProductTests|StrideAsPhasesTests|PointwiseExchangedWeightGradientTests'
run() {  # sanitizer, scratch path
  echo "== swift test -c release --sanitize=$1 ($suites)" >&2
  # halt_on_error: the first report fails the run instead of scrolling past.
  CONVLAB_PROPERTY_CASES=${CONVLAB_PROPERTY_CASES:-300} \
  TSAN_OPTIONS=halt_on_error=1 \
  ASAN_OPTIONS=halt_on_error=1:detect_leaks=0:suppressions=$PWD/scripts/asan-suppressions.txt \
    swift test -c release --sanitize="$1" --scratch-path "$2" --filter "$suites"
}
case $which in
  address) run address .build-asan ;;
  thread) run thread .build-tsan ;;
  all) run address .build-asan; run thread .build-tsan ;;
  *) echo "usage: $0 [address|thread|all]" >&2; exit 2 ;;
esac
echo "sanitizers ($which): clean" >&2
