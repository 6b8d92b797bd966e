#!/usr/bin/env bash
# Fault matrix: kill -9, N times each, of every server `shopcqrs up` runs (the write and the read
# PostgreSQL postmaster, redis-server, nats-server) and of the `up` process itself (started again
# on the same data directory and address), under a mixed HTTP command and query load; then every
# read store is compared with what the acknowledged commands imply. This is the black-box test
# FaultTest (tests/blackbox/fault_test.cc) run with more kills; the test's method is described
# there and in docs/BENCHMARKS.md ("Fault matrix").
#
#   scripts/fault-matrix.sh [--kills N] [--kinds write_pg,read_pg,redis,nats,up] [--seed S]
#                           [--report PATH] [--no-build]
#
# --kills N     kills per kind (default 20)
# --kinds LIST  which kinds (default all five)
# --seed S      the test's RNG seed (default: the test's, 20261201)
# --report PATH the JSON report (default bench/results/fault-matrix.json); the test's output
#               goes next to it (.log) and the table below (.md)
# --no-build    use the binaries in build/ as they are
#
# Builds shopcqrs and blackbox_tests (scripts/build.sh), runs
#   SHOPCQRS_FAULT_KILLS=N SHOPCQRS_FAULT_REPORT=PATH build/tests/blackbox_tests --gtest_filter='FaultTest.*'
# and prints a table per kind: kills, commands acknowledged, events, recovery p50/max (kill ->
# every projection 0 events behind), lost and duplicated effects, stale reads. Exits with the
# test's status (non-zero when anything was lost, duplicated or stale, or a kill did not recover).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

KILLS=20
KINDS=""
SEED=""
BUILD=1
REPORT="$ROOT/bench/results/fault-matrix.json"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --kills) KILLS=$2; shift ;;
    --kinds) KINDS=$2; shift ;;
    --seed) SEED=$2; shift ;;
    --report) REPORT=$2; shift ;;
    --no-build) BUILD=0 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "fault-matrix: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[[ "$KILLS" =~ ^[0-9]+$ ]] || { echo "fault-matrix: --kills needs a number" >&2; exit 2; }

command -v jq >/dev/null || { echo "fault-matrix: needs jq (apt-get install jq)" >&2; exit 1; }
log() { printf '[fault-matrix] %s\n' "$*" >&2; }

if [[ $BUILD == 1 ]]; then
  log "building shopcqrs and blackbox_tests"
  "$ROOT/scripts/build.sh" shopcqrs blackbox_tests
fi
BIN="$ROOT/build/tests/blackbox_tests"
[[ -x "$BIN" ]] || { log "no $BIN (build first)"; exit 1; }

mkdir -p "$(dirname "$REPORT")"
LOG="${REPORT%.json}.log"
TABLE="${REPORT%.json}.md"
rm -f "$REPORT"

# SHOPCQRS_BLACKBOX_URL points the suite's shared service at an address nobody serves: the fault
# test runs its own `shopcqrs up`, so the shared one (which the suite's environment would
# otherwise start for any selected test) is never needed here.
test_env=(SHOPCQRS_BLACKBOX_URL=http://127.0.0.1:1 "SHOPCQRS_FAULT_KILLS=$KILLS"
          "SHOPCQRS_FAULT_REPORT=$REPORT")
[[ -n "$KINDS" ]] && test_env+=("SHOPCQRS_FAULT_KINDS=$KINDS")
[[ -n "$SEED" ]] && test_env+=("SHOPCQRS_FAULT_SEED=$SEED")
log "running: ${test_env[*]} $BIN --gtest_filter='FaultTest.*'"
started=$(date +%s)
set +e
env "${test_env[@]}" "$BIN" --gtest_filter='FaultTest.*' 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
set -e
log "test exit status $status after $(( $(date +%s) - started )) s; output in $LOG"
if [[ ! -s "$REPORT" ]]; then
  log "the test wrote no report ($REPORT)"
  exit 1
fi

jq -r '
  def f2: if . < 0 then "–" else ((. * 100 | round) as $c
            | "\($c / 100 | floor).\($c % 100 | tostring | if length < 2 then "0" + . else . end) s")
          end;
  def kind: if . == "none" then "(before the first kill)" else . end;
  "| kind | kills | commands acknowledged | events | recovery p50 | recovery max | lost | duplicated | stale reads |",
  "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  (.by_kind[]
   | "| \(.kind | kind) | \(.kills) | \(.commands_acknowledged) | \(.events) | \(.recovery_p50_s | f2) | \(.recovery_max_s | f2) | \(.lost) | \(.duplicated) | \(.stale_reads) |"),
  "| **all** | \([.by_kind[].kills] | add) | \(.commands_acknowledged) | \(.events) | | | \(.lost) | \(.duplicated) | \(.stale_reads) |",
  "",
  "\(.kills_per_kind) kills per kind, seed \(.seed), \(.writers) writers; load \(.load_s | f2), whole test \(.duration_s | f2). Commands: \(.retried_commands) needed a retry (\(.transport_errors) transport errors, \(.unavailable_answers) answers 503), \(.unanswered_commands) got no definitive answer, \(.unexpected_answers) an unexpected one; \(.server_errors) 5xx other than 503. Queries with a consistency token: \(.token_queries) (\(.token_queries_behind) answered 503 read_model_behind), \(.stale_reads) stale. Verified \(.verified_orders) orders, \(.verified_customers) customers, \(.verified_products) products; \(.mismatched) mismatched fields; relay position \(.relay_position) (the outbox position of the last event; sequence gaps make it ≥ the event count). Passed: \(.passed)."
' "$REPORT" | tee "$TABLE"
exit "$status"
