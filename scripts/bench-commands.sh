#!/usr/bin/env bash
# Write-side benchmark: PlaceOrder and PayOrder through shopcqrs over HTTP (shopcqrs-bench,
# closed loop, keep-alive clients) against the equivalent raw SQL transactions through pgbench
# (bench/sql/*.sql), on the same write PostgreSQL of one `shopcqrs up`.
#
#   scripts/bench-commands.sh [--quick] [--duration S] [--clients N] [--warmup S] [--diagnose]
#
# --quick        5 s per run instead of 20
# --diagnose     also: pgbench with the service's post-commit statement appended
#                (bench/sql/commit_bound.sql), and shopcqrs-bench against a second API
#                process (`shopcqrs serve`, same databases) with SHOPCQRS_HTTP_THREADS=N
#                (--diagnose-threads, default = clients) instead of `up`'s default
# Environment:   PGBENCH (default /usr/lib/postgresql/15/bin/pgbench), PGBENCH_ARGS (extra
#                pgbench flags, e.g. "-M prepared"), KEEP_DATA=1 keeps the temp data dir,
#                SHOPCQRS_BENCH_BUILD (build directory, default build-bench; used by
#                scripts/bench-suite.sh).
#
# Builds Release into build-bench, starts `shopcqrs up` in a fresh temp data dir on a free
# port, runs the scenarios, prints a table and writes bench/results/commands-latest.json (the
# latest run only; its timestamp is inside), then stops the service. Run from anywhere.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

DURATION=20
WARMUP=2
CLIENTS=8
DIAGNOSE=0
DIAGNOSE_THREADS=""
CUSTOMERS=200
PRODUCTS=500
TARGET_RATIO=0.7
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) DURATION=5 ;;
    --duration) DURATION=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --clients) CLIENTS=$2; shift ;;
    --diagnose) DIAGNOSE=1 ;;
    --diagnose-threads) DIAGNOSE_THREADS=$2; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "bench-commands: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

PGBENCH=${PGBENCH:-/usr/lib/postgresql/15/bin/pgbench}
PGBENCH_ARGS=${PGBENCH_ARGS:-}
BUILD=${SHOPCQRS_BENCH_BUILD:-$ROOT/build-bench}
SHOPCQRS="$BUILD/src/apps/shopcqrs/shopcqrs"
BENCH="$BUILD/bench/shopcqrs-bench"
RESULTS="$ROOT/bench/results"

command -v jq >/dev/null || { echo "bench-commands: needs jq (apt-get install jq)" >&2; exit 1; }
log() { printf '[bench-commands] %s\n' "$*" >&2; }

log "building Release into $BUILD"
BUILD_LOG=$(mktemp)
if ! { cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release &&
  ninja -C "$BUILD" -j2 shopcqrs shopcqrs-bench; } >"$BUILD_LOG" 2>&1; then
  tail -n 40 "$BUILD_LOG" >&2
  rm -f "$BUILD_LOG"
  log "build failed"
  exit 1
fi
rm -f "$BUILD_LOG"

# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

DATA=$(mktemp -d /tmp/shopcqrs-bench.XXXXXX)
chmod 755 "$DATA"  # PostgreSQL runs as the postgres user when we are root
SERVICE_LOG="$DATA/shopcqrs.log"
SERVICE_PID=""
SERVE_PID=""

stop_process() {
  local pid=$1 name=$2
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
}

cleanup() {
  local status=$?
  stop_process "$SERVE_PID" "shopcqrs serve"
  stop_process "$SERVICE_PID" "shopcqrs up"
  if [[ $status -ne 0 && -f "$SERVICE_LOG" ]]; then
    log "failed; last lines of the service log:"
    tail -n 30 "$SERVICE_LOG" >&2 || true
  fi
  if [[ "${KEEP_DATA:-0}" == "1" ]]; then
    log "kept $DATA"
  else
    rm -rf "$DATA"
  fi
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=$(free_port)
log "starting shopcqrs up on 127.0.0.1:$PORT (data $DATA/var)"
"$SHOPCQRS" up --data-dir "$DATA/var" --listen "127.0.0.1:$PORT" >"$SERVICE_LOG" 2>&1 &
SERVICE_PID=$!


URL=$(wait_serving "$SERVICE_PID" "$SERVICE_LOG")
# shopcqrs-bench sends the admin token `up` wrote; a second `serve` verifies with up's key.
export SHOPCQRS_ACCESS_TOKEN=$(head -n 1 "$DATA/var/admin-token")
AUTH_KEY=$(head -n 1 "$DATA/var/auth-key")
WRITE_DB=$(sed -n 's/^write PostgreSQL: \(.*\) (data .*$/\1/p' "$SERVICE_LOG" | head -n 1)
READ_DB=$(sed -n 's/^read PostgreSQL: *\(.*\) (data .*$/\1/p' "$SERVICE_LOG" | head -n 1)
[[ -n "$WRITE_DB" ]] || { log "no write PostgreSQL conninfo in the service output"; exit 1; }
log "service at $URL; write database: $WRITE_DB"

DIAG_URL=""
if [[ "$DIAGNOSE" == "1" ]]; then
  DIAGNOSE_THREADS=${DIAGNOSE_THREADS:-$CLIENTS}
  PORT2=$(free_port)
  log "diagnose: starting shopcqrs serve with SHOPCQRS_HTTP_THREADS=$DIAGNOSE_THREADS on 127.0.0.1:$PORT2"
  SHOPCQRS_HTTP_THREADS=$DIAGNOSE_THREADS SHOPCQRS_AUTH_SIGNING_KEY="$AUTH_KEY" \
    SHOPCQRS_TOKEN_SECRET=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n') \
    "$SHOPCQRS" serve --write-db "$WRITE_DB" --read-db "$READ_DB" --projectors false \
    --listen "127.0.0.1:$PORT2" >"$DATA/serve.log" 2>&1 &
  SERVE_PID=$!
  DIAG_URL=$(wait_serving "$SERVE_PID" "$DATA/serve.log")
fi

PSQL=(psql "$WRITE_DB" -X -q -v ON_ERROR_STOP=1)

# Runs pgbench on script $1 for $2 seconds; output in $DATA/pgbench-$3.txt, per-transaction
# log in $DATA/pgb-$3.*; prints "tps avg_ms p50_ms p99_ms transactions failed".
run_pgbench() {
  local script=$1 seconds=$2 name=$3
  # shellcheck disable=SC2086
  "$PGBENCH" -n -c "$CLIENTS" -j 2 -T "$seconds" -D "ncustomers=$CUSTOMERS" \
    -D "nproducts=$PRODUCTS" -l --log-prefix="$DATA/pgb-$name" $PGBENCH_ARGS -f "$script" \
    "$WRITE_DB" >"$DATA/pgbench-$name.txt" 2>&1 || {
    log "pgbench $name failed:"
    cat "$DATA/pgbench-$name.txt" >&2
    return 1
  }
  local tps avg txns failed p50 p99
  tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$DATA/pgbench-$name.txt" | head -n 1)
  avg=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' "$DATA/pgbench-$name.txt")
  txns=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' \
    "$DATA/pgbench-$name.txt")
  failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$DATA/pgbench-$name.txt")
  if grep -q "aborted" "$DATA/pgbench-$name.txt"; then
    log "pgbench $name: some clients aborted:"
    grep -i "abort" "$DATA/pgbench-$name.txt" >&2 || true
  fi
  # Log lines: client_id transaction_no latency_us script_no epoch_s epoch_us
  read -r p50 p99 < <(cat "$DATA/pgb-$name".* | awk '{print $3}' | sort -n | awk '
    { v[NR] = $1 }
    END {
      if (NR == 0) { print "0 0"; exit }
      i50 = int(NR * 0.50 + 0.999999); i99 = int(NR * 0.99 + 0.999999)
      printf "%.3f %.3f\n", v[i50] / 1000, v[i99] / 1000
    }')
  rm -f "$DATA/pgb-$name".*
  echo "${tps:-0} ${avg:-0} $p50 $p99 ${txns:-0} ${failed:-0}"
}

json_field() { jq -r "$2" "$1"; }

declare -A OURS_TPUT OURS_P50 OURS_P99 PGB_TPS PGB_AVG PGB_P50 PGB_P99 RATIO PGB_JSON DIAG_PGB
SCENARIOS=(place pay)

for scenario in "${SCENARIOS[@]}"; do
  log "== $scenario: shopcqrs-bench, $CLIENTS clients closed loop, ${WARMUP}s warm-up + ${DURATION}s"
  "$BENCH" "$scenario" --url "$URL" -c "$CLIENTS" -d "$DURATION" --warmup "$WARMUP" \
    --customers "$CUSTOMERS" --products "$PRODUCTS" --json "$DATA/ours-$scenario.json" >&2
  OURS_TPUT[$scenario]=$(json_field "$DATA/ours-$scenario.json" '.throughput')
  OURS_P50[$scenario]=$(json_field "$DATA/ours-$scenario.json" '.latency_ms.p50')
  OURS_P99[$scenario]=$(json_field "$DATA/ours-$scenario.json" '.latency_ms.p99')

  log "== $scenario: pgbench, $CLIENTS clients, ${WARMUP}s warm-up + ${DURATION}s"
  norders=0
  if [[ "$scenario" == "pay" ]]; then
    # Enough placed orders for warm-up + run: 3x the raw place rate, plus slack.
    norders=$(awk -v tps="${PGB_TPS[place]}" -v s="$((DURATION + WARMUP))" \
      'BEGIN { printf "%d", tps * s * 3 + 10000 }')
  fi
  log "seeding pgbench rows ($CUSTOMERS customers, $PRODUCTS products, $norders orders)"
  "${PSQL[@]}" -v ncustomers="$CUSTOMERS" -v nproducts="$PRODUCTS" -v norders="$norders" \
    -f "$ROOT/bench/sql/seed.sql"
  if [[ "$WARMUP" != "0" ]]; then
    run_pgbench "$ROOT/bench/sql/$scenario.sql" "$WARMUP" "$scenario-warmup" >/dev/null
  fi
  read -r tps avg p50 p99 txns failed < <(run_pgbench "$ROOT/bench/sql/$scenario.sql" \
    "$DURATION" "$scenario")
  PGB_TPS[$scenario]=$tps
  PGB_AVG[$scenario]=$avg
  PGB_P50[$scenario]=$p50
  PGB_P99[$scenario]=$p99
  RATIO[$scenario]=$(awk -v a="${OURS_TPUT[$scenario]}" -v b="$tps" \
    'BEGIN { if (b > 0) printf "%.3f", a / b; else print "0" }')
  PGB_JSON[$scenario]=$(printf '{"tps":%s,"latency_avg_ms":%s,"p50_ms":%s,"p99_ms":%s,"transactions":%s,"failed":%s,"script":"bench/sql/%s.sql","args":"-n -c %s -j 2 -T %s %s"}' \
    "$tps" "$avg" "$p50" "$p99" "$txns" "$failed" "$scenario" "$CLIENTS" "$DURATION" "$PGBENCH_ARGS")
  log "pgbench $scenario: tps $tps, latency avg $avg ms, p50 $p50 ms, p99 $p99 ms"

  if [[ "$DIAGNOSE" == "1" ]]; then
    cat "$ROOT/bench/sql/$scenario.sql" "$ROOT/bench/sql/commit_bound.sql" >"$DATA/$scenario-bound.sql"
    if [[ "$scenario" == "pay" ]]; then
      "${PSQL[@]}" -v ncustomers="$CUSTOMERS" -v nproducts="$PRODUCTS" -v norders="$norders" \
        -f "$ROOT/bench/sql/seed.sql"
    fi
    read -r dtps davg dp50 dp99 _ _ < <(run_pgbench "$DATA/$scenario-bound.sql" "$DURATION" \
      "$scenario-bound")
    log "diagnose: pgbench $scenario + commit_bound.sql: tps $dtps, latency avg $davg ms, p50 $dp50 ms, p99 $dp99 ms"
    DIAG_PGB[$scenario]=$(printf '{"tps":%s,"latency_avg_ms":%s,"p50_ms":%s,"p99_ms":%s}' \
      "$dtps" "$davg" "$dp50" "$dp99")
    log "diagnose: $scenario: shopcqrs-bench against shopcqrs serve ($DIAGNOSE_THREADS http threads)"
    "$BENCH" "$scenario" --url "$DIAG_URL" -c "$CLIENTS" -d "$DURATION" --warmup "$WARMUP" \
      --customers "$CUSTOMERS" --products "$PRODUCTS" --json "$DATA/serve-$scenario.json" >&2
  fi
done

# ---- report ----
printf '\n%-8s %12s %11s %11s | %12s %11s %11s %11s | %7s\n' scenario "ours cmd/s" "ours p50ms" \
  "ours p99ms" "pgbench tps" "pgb avg ms" "pgb p50 ms" "pgb p99 ms" "ratio"
for scenario in "${SCENARIOS[@]}"; do
  printf '%-8s %12.1f %11.2f %11.2f | %12.1f %11.2f %11.2f %11.2f | %7.3f\n' "$scenario" \
    "${OURS_TPUT[$scenario]}" "${OURS_P50[$scenario]}" "${OURS_P99[$scenario]}" \
    "${PGB_TPS[$scenario]}" "${PGB_AVG[$scenario]}" "${PGB_P50[$scenario]}" \
    "${PGB_P99[$scenario]}" "${RATIO[$scenario]}"
  if [[ "$DIAGNOSE" == "1" ]]; then
    f="$DATA/serve-$scenario.json"
    printf '%-8s %12.1f %11.2f %11.2f | %12.1f %11.2f %11.2f %11.2f | %7.3f\n' " diag" \
      "$(jq .throughput "$f")" "$(jq .latency_ms.p50 "$f")" "$(jq .latency_ms.p99 "$f")" \
      "$(jq .tps <<<"${DIAG_PGB[$scenario]}")" "$(jq .latency_avg_ms <<<"${DIAG_PGB[$scenario]}")" \
      "$(jq .p50_ms <<<"${DIAG_PGB[$scenario]}")" "$(jq .p99_ms <<<"${DIAG_PGB[$scenario]}")" \
      "$(awk -v a="$(jq .throughput "$f")" -v b="${PGB_TPS[$scenario]}" \
        'BEGIN { if (b > 0) printf "%.3f", a / b; else print "0" }')"
  fi
done
if [[ "$DIAGNOSE" == "1" ]]; then
  printf '(diag rows: ours = `shopcqrs serve` with %s http threads; pgbench = script + commit_bound.sql;\n' \
    "$DIAGNOSE_THREADS"
  printf ' diag ratio = diag ours / plain pgbench)\n'
fi
printf '(ratio = ours cmd/s / pgbench tps; target >= %s; %s clients, %ss measured)\n\n' \
  "$TARGET_RATIO" "$CLIENTS" "$DURATION"

mkdir -p "$RESULTS"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$(mktemp)
{
  printf '{"timestamp":"%s","git_commit":"%s","host_cpus":%s,"clients":%s,"duration_s":%s,' \
    "$STAMP" "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    "$(nproc)" "$CLIENTS" "$DURATION"
  printf '"warmup_s":%s,"customers":%s,"products":%s,"target_ratio":%s,"scenarios":{' \
    "$WARMUP" "$CUSTOMERS" "$PRODUCTS" "$TARGET_RATIO"
  sep=""
  for scenario in "${SCENARIOS[@]}"; do
    diag=""
    if [[ "$DIAGNOSE" == "1" ]]; then
      diag=$(printf ',"diagnose":{"ours_serve_http_threads":%s,"ours_serve":%s,"pgbench_with_commit_bound":%s}' \
        "$DIAGNOSE_THREADS" "$(cat "$DATA/serve-$scenario.json")" "${DIAG_PGB[$scenario]}")
    fi
    printf '%s"%s":{"ours":%s,"pgbench":%s,"ratio":%s%s}' "$sep" "$scenario" \
      "$(cat "$DATA/ours-$scenario.json")" "${PGB_JSON[$scenario]}" "${RATIO[$scenario]}" "$diag"
    sep=","
  done
  printf '}}\n'
} | jq . >"$OUT"
mv "$OUT" "$RESULTS/commands-latest.json"
log "wrote $RESULTS/commands-latest.json"
