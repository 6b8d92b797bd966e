#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz (clang, ASan + UBSan, into <repo>/build-fuzz) and
# runs each one on its seed corpus (tests/fuzz/corpus/NAME) with its dictionary (NAME.dict).
#
#   scripts/fuzz.sh                    the short form (CI): SHOPCQRS_FUZZ_RUNS (20000) runs each
#   scripts/fuzz.sh --campaign [RUNS]  the long form: RUNS (1000000) runs each, the same way
#   scripts/fuzz.sh [--campaign [RUNS]] NAME...   only those harnesses
#
# Prints per harness its executions, exec/s, coverage (cov: edges, ft: features) and findings,
# and exits non-zero when any harness crashed, leaked, hit UB or timed out. Findings and the
# inputs a run adds beyond the seeds go below build-fuzz/ (gitignored): artifacts/NAME/ (the
# failing input) and corpus/NAME/; logs in logs/NAME.log. Replay a finding with
# `build-fuzz/tests/fuzz/NAME_fuzz build-fuzz/artifacts/NAME/crash-...`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR="$ROOT/build-fuzz"
FUZZ_DIR="$ROOT/tests/fuzz"

runs="${SHOPCQRS_FUZZ_RUNS:-20000}"
mode=short
if [[ "${1:-}" == "--campaign" ]]; then
  mode=campaign
  shift
  runs=1000000
  if [[ "${1:-}" =~ ^[0-9]+$ ]]; then
    runs=$1
    shift
  fi
fi

names=("$@")
if [[ ${#names[@]} -eq 0 ]]; then
  for source in "$FUZZ_DIR"/*_fuzz.cc; do
    name=$(basename "$source" _fuzz.cc)
    names+=("$name")
  done
fi

# ccache (its CCACHE_DIR, or its default), with paths relative to the checkout so that other
# clones and worktrees share hits.
launcher=()
if command -v ccache >/dev/null 2>&1; then
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$ROOT}" CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi

start=$SECONDS
cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++ -DSHOPCQRS_FUZZ=ON "${launcher[@]}" >/dev/null
targets=()
for name in "${names[@]}"; do targets+=("${name}_fuzz"); done
cmake --build "$BUILD_DIR" -j2 --target "${targets[@]}"
echo "fuzz: built ${#names[@]} harnesses in $((SECONDS - start)) s"

# UB and leaks abort; the harnesses' own checks call abort().
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

failed=()
printf '%-18s %10s %8s %8s %8s %6s  %s\n' harness runs exec/s cov ft secs result
for name in "${names[@]}"; do
  corpus="$BUILD_DIR/corpus/$name"
  artifacts="$BUILD_DIR/artifacts/$name"
  log="$BUILD_DIR/logs/$name.log"
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  args=(-runs="$runs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$artifacts/")
  [[ -f "$FUZZ_DIR/$name.dict" ]] && args+=(-dict="$FUZZ_DIR/$name.dict")
  harness_start=$SECONDS
  result=ok
  # New inputs go to the first directory (build-fuzz), the seeds are read only.
  if ! "$BUILD_DIR/tests/fuzz/${name}_fuzz" "${args[@]}" "$corpus" "$FUZZ_DIR/corpus/$name" \
      >"$log" 2>&1; then
    result="FAILED (see $log and $artifacts/)"
    failed+=("$name")
  fi
  seconds=$((SECONDS - harness_start))
  # The final status line (DONE), or the last one before a finding.
  done_line=$(grep -E '^#[0-9]+[[:space:]].*cov: ' "$log" | tail -1 || true)
  executed=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  per_second=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' <<<"$done_line" | cut -d' ' -f2 || true)
  ft=$(grep -oE 'ft: [0-9]+' <<<"$done_line" | cut -d' ' -f2 || true)
  printf '%-18s %10s %8s %8s %8s %6s  %s\n' "$name" "${executed:--}" "${per_second:--}" \
    "${cov:--}" "${ft:--}" "$seconds" "$result"
done

echo "fuzz: $mode, ${#names[@]} harnesses, $((SECONDS - start)) s in all"
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz: findings in ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: no findings"
