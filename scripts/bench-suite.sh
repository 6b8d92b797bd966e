#!/usr/bin/env bash
# The architecture's claims side by side, in one run (issue 5):
#
#   scripts/bench-suite.sh [--quick] [--pin] [--duration S] [--clients N]
#
#   1. commands     PlaceOrder / PayOrder over HTTP vs the same SQL through pgbench
#                   (scripts/bench-commands.sh)                     target >= 0.7 of pgbench
#   2. queries      order view / customer history / search / mix over HTTP, separated mode
#                   (query_source=read) and single-database mode (query_source=write) on the
#                   same data, vs pgbench running the order-view SELECT on the read database
#                   (flat) and on the write database (normalized join)
#                                                    target: order view >= 1.0 of flat pgbench
#   3. isolation    place/pay throughput and p99 alone and while N reader clients saturate
#                   the queries, separated vs single      target: separated >= 0.9 of idle
#   4. lag, catch-up  shopcqrs-bench-lag / shopcqrs-bench-catchup when they build
#                   target: lag p50 <= 1 ms, p99 <= 5 ms at 1,000 commands/s; >= 50,000 events/s
#
# Writes bench/results/suite-<UTC stamp>/*.json (+ suite-latest -> it), docs/BENCHMARKS.md and
# docs/img/*.png (gnuplot). --quick: short windows, the whole suite in < 3 minutes.
# --pin: pin the write PostgreSQL to CPU 0 and the read PostgreSQL to CPU 1 (taskset) for
# the query and isolation scenarios.
# Environment: PGBENCH, PGBENCH_ARGS (also passed to bench-commands.sh), KEEP_DATA=1,
#   SHOPCQRS_SINGLE_BIN: the binary serving query_source=write (default: the shopcqrs binary,
#   once its `serve` wires pg_single; the suite skips single-database mode otherwise).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

QUICK=0
PIN=0
DURATION=""
CLIENTS=8
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --pin) PIN=1 ;;
    --duration) DURATION=$2; shift ;;
    --clients) CLIENTS=$2; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "bench-suite: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [[ "$QUICK" == "1" ]]; then
  DURATION=${DURATION:-3}; WARMUP=1; ORDERS=3000; CMD_DURATION=3; CMD_WARMUP=1
  LAG_ARGS=(--rates 1000 --duration 4); CATCHUP_ARGS=(--events 60000)
else
  DURATION=${DURATION:-15}; WARMUP=2; ORDERS=20000; CMD_DURATION=20; CMD_WARMUP=2
  LAG_ARGS=(--rates 100,500,1000 --duration 15); CATCHUP_ARGS=(--events 500000)
fi
WRITERS=4
READERS=16

PGBENCH=${PGBENCH:-/usr/lib/postgresql/15/bin/pgbench}
PGBENCH_ARGS=${PGBENCH_ARGS:-}
BUILD="$ROOT/build-suite"
SHOPCQRS="$BUILD/src/apps/shopcqrs/shopcqrs"
BENCH="$BUILD/bench/shopcqrs-bench"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT="$ROOT/bench/results/suite-$STAMP"
START_TIME=$(date +%s)

log() { printf '[bench-suite %3ds] %s\n' "$(($(date +%s) - START_TIME))" "$*" >&2; }
for tool in jq python3 "$PGBENCH" psql; do
  command -v "$tool" >/dev/null || { echo "bench-suite: needs $tool (scripts/install-deps.sh)" >&2; exit 1; }
done
HAVE_GNUPLOT=1
command -v gnuplot >/dev/null || { HAVE_GNUPLOT=0; log "gnuplot missing: no plots (apt-get install gnuplot-nox)"; }

log "building Release into $BUILD"
BUILD_LOG=$(mktemp)
if ! { cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release &&
  ninja -C "$BUILD" -j2 shopcqrs shopcqrs-bench; } >"$BUILD_LOG" 2>&1; then
  tail -n 40 "$BUILD_LOG" >&2; rm -f "$BUILD_LOG"; log "build failed"; exit 1
fi
# The lag and catch-up benchmarks are optional: measured when they build.
ninja -C "$BUILD" -j2 shopcqrs-bench-lag shopcqrs-bench-catchup >>"$BUILD_LOG" 2>&1 ||
  log "shopcqrs-bench-lag / -catchup did not build; skipped"
rm -f "$BUILD_LOG"

SINGLE_BIN=${SHOPCQRS_SINGLE_BIN:-}
if [[ -z "$SINGLE_BIN" ]] && grep -q "pg_single" "$ROOT/src/apps/shopcqrs/main.cc"; then
  SINGLE_BIN=$SHOPCQRS
fi
[[ -n "$SINGLE_BIN" ]] || log "shopcqrs serve does not offer query_source=write yet and SHOPCQRS_SINGLE_BIN is unset: single-database mode skipped"

mkdir -p "$OUT"
DATA=$(mktemp -d /tmp/shopcqrs-suite.XXXXXX)
chmod 755 "$DATA"
UP_PID=""
SINGLE_PID=""
stop_process() {
  local pid=$1
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
}
cleanup() {
  local status=$?
  stop_process "$SINGLE_PID"
  stop_process "$UP_PID"
  if [[ $status -ne 0 ]]; then
    log "failed; last lines of the service logs:"
    tail -n 20 "$DATA"/*.log >&2 2>/dev/null || true
  fi
  [[ "${KEEP_DATA:-0}" == "1" ]] && log "kept $DATA" || rm -rf "$DATA"
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  local port
  for _ in $(seq 1 100); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return 0; fi
  done
  return 1
}
wait_serving() {
  local pid=$1 logfile=$2 url=""
  for _ in $(seq 1 600); do
    kill -0 "$pid" 2>/dev/null || { log "shopcqrs exited during start:"; tail -n 20 "$logfile" >&2; return 1; }
    url=$(sed -n 's/^shopcqrs serving \(http:\/\/[^ ]*\).*$/\1/p' "$logfile" 2>/dev/null | head -n 1)
    [[ -n "$url" ]] && { echo "$url"; return 0; }
    sleep 0.2
  done
  return 1
}

# ---- 1. commands vs pgbench (its own `shopcqrs up`) ----
log "== commands: scripts/bench-commands.sh --duration $CMD_DURATION --warmup $CMD_WARMUP"
COMMANDS_CMD="scripts/bench-commands.sh --duration $CMD_DURATION --warmup $CMD_WARMUP --clients $CLIENTS"
if SHOPCQRS_BENCH_BUILD="$BUILD" $COMMANDS_CMD >"$DATA/commands.log" 2>&1; then
  cp "$ROOT/bench/results/commands-latest.json" "$OUT/commands.json"
else
  log "bench-commands.sh failed:"; tail -n 20 "$DATA/commands.log" >&2
fi

# ---- 2./3. one `shopcqrs up` (separated) + a query_source=write API on the same servers ----
PORT=$(free_port)
log "starting shopcqrs up on 127.0.0.1:$PORT"
"$SHOPCQRS" up --data-dir "$DATA/var" --listen "127.0.0.1:$PORT" >"$DATA/up.log" 2>&1 &
UP_PID=$!
URL_READ=$(wait_serving "$UP_PID" "$DATA/up.log")
WRITE_DB=$(sed -n 's/^write PostgreSQL: \(.*\) (data .*$/\1/p' "$DATA/up.log" | head -n 1)
READ_DB=$(sed -n 's/^read PostgreSQL: *\(.*\) (data .*$/\1/p' "$DATA/up.log" | head -n 1)
URL_WRITE=""
if [[ -n "$SINGLE_BIN" ]]; then
  PORT2=$(free_port)
  log "starting $SINGLE_BIN serve with query_source=write on 127.0.0.1:$PORT2 (no projector)"
  SHOPCQRS_QUERY_SOURCE=write \
    SHOPCQRS_TOKEN_SECRET=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n') \
    "$SINGLE_BIN" serve --write-db "$WRITE_DB" --read-db "$READ_DB" --projectors false \
    --listen "127.0.0.1:$PORT2" >"$DATA/single.log" 2>&1 &
  SINGLE_PID=$!
  URL_WRITE=$(wait_serving "$SINGLE_PID" "$DATA/single.log")
fi

if [[ "$PIN" == "1" ]]; then
  pin_server() {  # $1 data dir, $2 cpu: the postmaster and every process it forked
    local pm
    pm=$(head -n 1 "$1/postmaster.pid")
    for pid in $pm $(pgrep -P "$pm"); do taskset -a -p -c "$2" "$pid" >/dev/null; done
  }
  pin_server "$DATA/var/write-pg" 0
  pin_server "$DATA/var/read-pg" 1
  log "pinned write PostgreSQL to CPU 0, read PostgreSQL to CPU 1"
fi

log "== seeding $ORDERS orders through the API (identical data for both modes)"
"$BENCH" seed --url "$URL_READ" -c "$CLIENTS" --orders "$ORDERS" --dataset "$OUT/dataset.json" \
  >"$DATA/seed.log" 2>&1 || { cat "$DATA/seed.log" >&2; exit 1; }
SEED_CMD="$BENCH seed --url URL -c $CLIENTS --orders $ORDERS --dataset dataset.json"

# pgbench picks orders by number from bench_order_ids (both databases).
jq -r '.orders | to_entries[] | "\(.key + 1)\t\(.value[0])"' "$OUT/dataset.json" >"$DATA/ids.tsv"
NORDERS=$(wc -l <"$DATA/ids.tsv")
for db in "$WRITE_DB" "$READ_DB"; do
  psql "$db" -X -q -v ON_ERROR_STOP=1 \
    -c "DROP TABLE IF EXISTS bench_order_ids" \
    -c "CREATE TABLE bench_order_ids (n integer PRIMARY KEY, id uuid NOT NULL)" \
    -c "\\copy bench_order_ids FROM '$DATA/ids.tsv'" -c "ANALYZE"
done

# pgbench on script $1 against $2 for $3 s -> JSON {tps, latency_avg_ms, p50_ms, p99_ms}
run_pgbench() {
  local script=$1 db=$2 seconds=$3 name=$4
  "$PGBENCH" -n -c "$CLIENTS" -j 2 -T "$WARMUP" -D "norders=$NORDERS" $PGBENCH_ARGS -f "$script" \
    "$db" >/dev/null 2>&1 || true
  # shellcheck disable=SC2086
  "$PGBENCH" -n -c "$CLIENTS" -j 2 -T "$seconds" -D "norders=$NORDERS" -l \
    --log-prefix="$DATA/pgb-$name" $PGBENCH_ARGS -f "$script" "$db" >"$DATA/pgbench-$name.txt" 2>&1
  local tps avg
  tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$DATA/pgbench-$name.txt" | head -n 1)
  avg=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' "$DATA/pgbench-$name.txt")
  cat "$DATA/pgb-$name".* | awk '{print $3}' | sort -n | awk -v tps="${tps:-0}" -v avg="${avg:-0}" \
    -v script="${script#"$ROOT"/}" -v args="-n -c $CLIENTS -j 2 -T $seconds $PGBENCH_ARGS" '
    { v[NR] = $1 }
    END {
      n = NR; if (n == 0) n = 1
      printf "{\"tps\":%s,\"latency_avg_ms\":%s,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"script\":\"%s\",\"args\":\"%s\",\"distribution\":[", tps, avg, v[int(n*0.5+0.999999)]/1000, v[int(n*0.99+0.999999)]/1000, script, args
      split("0 10 20 30 40 50 60 70 75 80 85 90 95 97.5 99 99.5 99.9 99.99 100", ps, " ")
      for (i = 1; i <= 19; i++) { r = int(n * ps[i] / 100 + 0.999999); if (r < 1) r = 1; printf "%s[%s,%.4f]", (i > 1 ? "," : ""), ps[i], v[r] / 1000 }
      printf "]}\n"
    }' >"$OUT/pgbench-$name.json"
  rm -f "$DATA/pgb-$name".*
}

log "== queries: pgbench flat select (read database) and normalized join (write database)"
run_pgbench "$ROOT/bench/sql/order_view_read.sql" "$READ_DB" "$DURATION" view-read
run_pgbench "$ROOT/bench/sql/order_view_write.sql" "$WRITE_DB" "$DURATION" view-write

MODES=(read)
[[ -n "$URL_WRITE" ]] && MODES+=(write)
for mode in "${MODES[@]}"; do
  url=$URL_READ; [[ "$mode" == "write" ]] && url=$URL_WRITE
  for scenario in view history search mix; do
    log "== queries: $scenario, query_source=$mode, $CLIENTS clients, ${WARMUP}s + ${DURATION}s"
    "$BENCH" "$scenario" --url "$url" -c "$CLIENTS" -d "$DURATION" --warmup "$WARMUP" \
      --dataset "$OUT/dataset.json" --json "$OUT/query-$scenario-$mode.json" \
      >"$DATA/query-$scenario-$mode.log" 2>&1 || { log "failed:"; tail -n 5 "$DATA/query-$scenario-$mode.log" >&2; }
  done
done

for mode in "${MODES[@]}"; do
  url=$URL_READ; [[ "$mode" == "write" ]] && url=$URL_WRITE
  log "== isolation: query_source=$mode, $WRITERS writers, then + $READERS readers"
  "$BENCH" isolation --url "$url" -c "$WRITERS" --readers "$READERS" -d "$DURATION" \
    --warmup "$WARMUP" --dataset "$OUT/dataset.json" --json "$OUT/isolation-$mode.json" \
    >"$DATA/isolation-$mode.log" 2>&1 || { log "failed:"; tail -n 5 "$DATA/isolation-$mode.log" >&2; }
done
stop_process "$SINGLE_PID"; SINGLE_PID=""
stop_process "$UP_PID"; UP_PID=""

# ---- 4. lag and catch-up ----
if [[ -x "$BUILD/bench/shopcqrs-bench-lag" ]]; then
  log "== lag: shopcqrs-bench-lag ${LAG_ARGS[*]}"
  "$BUILD/bench/shopcqrs-bench-lag" "${LAG_ARGS[@]}" --json "$OUT/lag.json" >"$DATA/lag.log" 2>&1 ||
    { log "lag failed:"; tail -n 5 "$DATA/lag.log" >&2; rm -f "$OUT/lag.json"; }
fi
if [[ -x "$BUILD/bench/shopcqrs-bench-catchup" ]]; then
  log "== catch-up: shopcqrs-bench-catchup ${CATCHUP_ARGS[*]}"
  "$BUILD/bench/shopcqrs-bench-catchup" "${CATCHUP_ARGS[@]}" --json "$OUT/catchup.json" \
    >"$DATA/catchup.log" 2>&1 || { log "catch-up failed:"; tail -n 5 "$DATA/catchup.log" >&2; rm -f "$OUT/catchup.json"; }
fi

# ---- report ----
PG_VERSION=$("$PGBENCH" --version | awk '{print $NF}')
cat >"$OUT/meta.json" <<EOF
{"stamp":"$STAMP","quick":$QUICK,"pin":$PIN,"nproc":$(nproc),
 "memory":"$(free -h | awk '/^Mem:/ {print $2}')","kernel":"$(uname -sr)",
 "cpu":"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//' | tr -d '"')",
 "postgres":"$PG_VERSION","git_commit":"$(git rev-parse --short HEAD 2>/dev/null || echo unknown)",
 "loadavg":"$(cut -d' ' -f1-3 /proc/loadavg)","clients":$CLIENTS,"writers":$WRITERS,"readers":$READERS,
 "duration_s":$DURATION,"warmup_s":$WARMUP,"orders":$NORDERS,
 "single_bin":"${SINGLE_BIN#"$ROOT"/}","pgbench_args":"$PGBENCH_ARGS",
 "commands":{"suite":"scripts/bench-suite.sh$([[ $QUICK == 1 ]] && echo ' --quick')$([[ $PIN == 1 ]] && echo ' --pin')",
   "commands":"$COMMANDS_CMD","seed":"$SEED_CMD",
   "query":"$BENCH {view|history|search|mix} --url URL -c $CLIENTS -d $DURATION --warmup $WARMUP --dataset dataset.json",
   "isolation":"$BENCH isolation --url URL -c $WRITERS --readers $READERS -d $DURATION --warmup $WARMUP --dataset dataset.json",
   "pgbench":"$PGBENCH -n -c $CLIENTS -j 2 -T $DURATION -D norders=$NORDERS $PGBENCH_ARGS -f bench/sql/order_view_{read,write}.sql",
   "lag":"shopcqrs-bench-lag ${LAG_ARGS[*]}","catchup":"shopcqrs-bench-catchup ${CATCHUP_ARGS[*]}"}}
EOF
ln -sfn "suite-$STAMP" "$ROOT/bench/results/suite-latest"
mkdir -p "$ROOT/docs/img"
log "== report: docs/BENCHMARKS.md"
python3 - "$OUT" "$ROOT/docs/BENCHMARKS.md" "$ROOT/docs/img" "$HAVE_GNUPLOT" <<'PY'
import json, os, subprocess, sys

out, md_path, img_dir, have_gnuplot = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
root = os.path.dirname(os.path.dirname(os.path.abspath(md_path)))

def load(name):
    try:
        with open(os.path.join(out, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

meta = load("meta.json")
rel_out = os.path.relpath(out, root)
lines, targets, plots = [], [], []
def f(v, d=1):
    return "–" if v is None else f"{v:,.{d}f}"
def ratio(a, b):
    return a / b if a is not None and b else None
def verdict(ok):
    return "**met**" if ok else "**MISSED**"

lines += ["# Benchmarks", "",
          "Generated by `scripts/bench-suite.sh` — do not edit by hand; rerun the suite. Every",
          "ratio compares two measurements taken in the same run on the same machine (it is",
          "shared and noisy: absolute numbers move between runs, ratios much less).", "",
          f"Run `{meta['stamp']}`{' (**--quick**: short windows, read the numbers as indicative)' if meta['quick'] else ''};"
          f" raw JSON in `{rel_out}/`.", "",
          "## Machine", "",
          "| | |", "|---|---|",
          f"| CPUs (nproc) | {meta['nproc']} ({meta['cpu']}) |",
          f"| memory | {meta['memory']} |", f"| kernel | {meta['kernel']} |",
          f"| PostgreSQL | {meta['postgres']} (`shopcqrs up` servers with their defaults; lag and catch-up start their own servers, fsync off) |",
          f"| load average at the end | {meta['loadavg']} |",
          f"| git commit | {meta['git_commit']} (plus uncommitted work) |",
          f"| CPU pinning (--pin) | {'write PostgreSQL on CPU 0, read PostgreSQL on CPU 1' if meta['pin'] else 'none'} |", "",
          "## Commands run", "", "```sh"]
for k, v in meta["commands"].items():
    lines.append(v)
lines += ["```", "",
          f"Query and isolation scenarios run against one `shopcqrs up` (separated mode: "
          f"query_source=read) and, on the same write and read PostgreSQL servers, a second API "
          f"process `serve --projectors false` with `SHOPCQRS_QUERY_SOURCE=write` (single-database "
          f"mode; binary `{meta['single_bin'] or 'n/a'}`). Both answer over the same "
          f"{meta['orders']} seeded orders (half paid, a quarter shipped). The `up` process keeps "
          f"projecting during every phase, also while the single-mode API is measured.", ""]

summary_at = len(lines)

# ---- commands ----
cmd = load("commands.json")
lines += ["## 1. Commands vs pgbench", ""]
if cmd:
    lines += [f"{cmd['clients']} keep-alive HTTP clients (closed loop) vs `pgbench -c {cmd['clients']} -j 2` running the same SQL transaction (`bench/sql/place.sql`, `pay.sql`) on the same write PostgreSQL; {cmd['duration_s']} s measured after {cmd['warmup_s']} s warm-up.", "",
              "| command | shopcqrs cmd/s | p50 ms | p99 ms | pgbench tps | p50 ms | p99 ms | ratio | target ≥ 0.7 |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for name, s in cmd["scenarios"].items():
        o, p = s["ours"], s["pgbench"]
        r = s["ratio"]
        lines.append(f"| {name} | {f(o['throughput'])} | {f(o['latency_ms']['p50'],2)} | {f(o['latency_ms']['p99'],2)} | {f(p['tps'])} | {f(p['p50_ms'],2)} | {f(p['p99_ms'],2)} | {r:.3f} | {verdict(r >= 0.7)} |")
        targets.append((f"{name} via HTTP ≥ 0.7 × pgbench", f"{r:.3f}", r >= 0.7))
    lines += ["", "![commands](img/commands-throughput.png)", ""]
    plots.append("commands")
else:
    lines += ["Not measured (bench-commands.sh failed; see the suite's output).", ""]
    targets.append(("commands via HTTP ≥ 0.7 × pgbench", "not measured", False))

# ---- queries ----
pgr, pgw = load("pgbench-view-read.json"), load("pgbench-view-write.json")
lines += ["## 2. Queries: separated read database vs single database", "",
          f"{meta['clients']} HTTP clients per scenario, closed loop. `view` = `GET /v1/orders/{{id}}`, "
          "`history` = `GET /v1/customers/{id}/orders?limit=20`, `search` = `GET /v1/search/orders?q=customer+N` "
          "(two words), `mix` = 50% view, 20% history, 10% customer, 10% search, 5% order list, 5% top products. "
          "Baselines: pgbench running the very statement of the order view — the flat select on the read "
          "database (`bench/sql/order_view_read.sql`) and the normalized join on the write database "
          "(`bench/sql/order_view_write.sql`); the order is picked by number through a primary-key "
          "subselect (`bench_order_ids`), one lookup more than the service does.", "",
          "| scenario | query_source | req/s | p50 ms | p99 ms | errors | vs pgbench flat select | single / separated |",
          "|---|---|---:|---:|---:|---:|---:|---:|"]
if pgr:
    lines.append(f"| pgbench order view (flat select) | read DB | {f(pgr['tps'])} | {f(pgr['p50_ms'],2)} | {f(pgr['p99_ms'],2)} | 0 | 1.000 | |")
if pgw:
    lines.append(f"| pgbench order view (normalized join) | write DB | {f(pgw['tps'])} | {f(pgw['p50_ms'],2)} | {f(pgw['p99_ms'],2)} | 0 | {f(ratio(pgw['tps'], pgr and pgr['tps']),3)} | {f(ratio(pgw['tps'], pgr and pgr['tps']),3)} |")
query_rows = []
for scenario in ["view", "history", "search", "mix"]:
    sep = load(f"query-{scenario}-read.json")
    for mode in ["read", "write"]:
        q = load(f"query-{scenario}-{mode}.json")
        if not q:
            continue
        query_rows.append((scenario, mode, q))
        vs = ratio(q["throughput"], pgr and pgr["tps"])
        ss = ratio(q["throughput"], sep and sep["throughput"]) if mode == "write" else None
        label = "read (separated)" if mode == "read" else "write (single)"
        lines.append(f"| {scenario} | {label} | {f(q['throughput'])} | {f(q['latency_ms']['p50'],2)} | {f(q['latency_ms']['p99'],2)} | {q['errors']} | {f(vs,3)} | {f(ss,3)} |")
view = load("query-view-read.json")
if view and pgr:
    r = view["throughput"] / pgr["tps"]
    targets.append(("order view via HTTP ≥ 1.0 × pgbench flat select", f"{r:.3f}", r >= 1.0))
else:
    targets.append(("order view via HTTP ≥ 1.0 × pgbench flat select", "not measured", False))
lines += ["", "![queries](img/queries-throughput.png)", "", "![query latency](img/queries-latency.png)", ""]
plots.append("queries")

# ---- isolation ----
lines += ["## 3. Isolation: writes while readers saturate the queries", "",
          f"{meta['writers']} writer clients alternate PlaceOrder and PayOrder (each pays the order it just placed), "
          f"first alone (idle), then while {meta['readers']} reader clients run the query mix against the same "
          "service (saturated). Write throughput counts both commands; latencies per command.", "",
          "| query_source | phase | writes/s | place p50 ms | place p99 ms | pay p50 ms | pay p99 ms | reader req/s | saturated / idle |",
          "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
iso = {}
for mode in ["read", "write"]:
    d = load(f"isolation-{mode}.json")
    if not d:
        continue
    iso[mode] = d
    label = "read (separated)" if mode == "read" else "write (single)"
    for phase in ["idle", "saturated"]:
        p = d[phase]
        readers = f(p["readers"]["throughput"]) if phase == "saturated" else ""
        rr = f"{d['ratio']:.3f}" if phase == "saturated" else ""
        lines.append(f"| {label} | {phase} | {f(p['throughput'])} | {f(p['place_latency_ms']['p50'],2)} | {f(p['place_latency_ms']['p99'],2)} | {f(p['pay_latency_ms']['p50'],2)} | {f(p['pay_latency_ms']['p99'],2)} | {readers} | {rr} |")
if "read" in iso:
    r = iso["read"]["ratio"]
    targets.append(("separated: write throughput under saturating reads ≥ 0.9 × idle", f"{r:.3f}", r >= 0.9))
else:
    targets.append(("separated: write throughput under saturating reads ≥ 0.9 × idle", "not measured", False))
if "write" in iso:
    targets.append(("(single-database mode, for comparison: same ratio)", f"{iso['write']['ratio']:.3f}", None))
lines += ["", "![isolation](img/isolation-throughput.png)", "", "![isolation latency](img/isolation-latency.png)", ""]
plots.append("isolation")

# ---- lag / catch-up ----
lag, catchup = load("lag.json"), load("catchup.json")
lines += ["## 4. Projection lag and catch-up", ""]
if lag:
    lines += ["`shopcqrs-bench-lag` (own servers, in-process projector; open loop of 50% place, 30% pay, 20% register). "
              "`server` = event commit → applied by the projector; `visible` = command returned → its consistency token satisfied.", "",
              "| rate cmd/s | achieved | server p50 ms | server p99 ms | visible p50 ms | visible p99 ms | command p99 ms |",
              "|---:|---:|---:|---:|---:|---:|---:|"]
    at1000 = None
    for r in lag["rates"]:
        lines.append(f"| {r['rate']} | {f(r['achieved'])} | {f(r['server']['p50_ms'],2)} | {f(r['server']['p99_ms'],2)} | {f(r['visible']['p50_ms'],2)} | {f(r['visible']['p99_ms'],2)} | {f(r['command']['p99_ms'],2)} |")
        if r["rate"] == 1000:
            at1000 = r
    lines.append("")
    if at1000:
        s = at1000["server"]
        targets.append(("lag p50 ≤ 1 ms at 1,000 cmd/s (commit → applied)", f"{s['p50_ms']:.2f} ms", s["p50_ms"] <= 1))
        targets.append(("lag p99 ≤ 5 ms at 1,000 cmd/s (commit → applied)", f"{s['p99_ms']:.2f} ms", s["p99_ms"] <= 5))
else:
    lines += ["Lag: not measured (`shopcqrs-bench-lag` missing or failed).", ""]
    targets.append(("lag p50 ≤ 1 ms, p99 ≤ 5 ms at 1,000 cmd/s", "not measured", False))
if catchup:
    lines += [f"`shopcqrs-bench-catchup`: {catchup['events']:,} events in the outbox, projected from zero.", "",
              "| phase | events | seconds | events/s |", "|---|---:|---:|---:|"]
    proj = None
    for p in catchup.get("phases", []):
        lines.append(f"| {p['name']} | {p['events']:,} | {p['seconds']:.2f} | {f(p['events_per_second'],0)} |")
        if p["name"].startswith("project"):
            proj = p["events_per_second"]
    lines.append("")
    if proj is not None:
        targets.append(("catch-up ≥ 50,000 events/s", f"{proj:,.0f} events/s", proj >= 50000))
else:
    lines += ["Catch-up: not measured (`shopcqrs-bench-catchup` missing or failed).", ""]
    targets.append(("catch-up ≥ 50,000 events/s", "not measured", False))

summary = ["## Targets", "", "| target | measured | |", "|---|---:|---|"]
for name, value, ok in targets:
    summary.append(f"| {name} | {value} | {'' if ok is None else verdict(ok)} |")
missed = [t for t in targets if t[2] is False]
summary += ["", (f"{len(missed)} target(s) missed in this run: " + "; ".join(t[0] for t in missed) + ".") if missed else "Every target is met in this run.", ""]
lines[summary_at:summary_at] = summary

# ---- plots ----
def gp(name, script):
    path = os.path.join(out, f"{name}.gp")
    with open(path, "w") as fh:
        fh.write(script)
    subprocess.run(["gnuplot", path], check=False)

if have_gnuplot:
    head = "set terminal pngcairo size 900,480 font 'sans,10'\nset grid ytics\nset key top right\n"
    hist = "set style data histogram\nset style histogram clustered gap 1\nset style fill solid 0.8 border -1\nset boxwidth 0.9\nset yrange [0:*]\nset xtics nomirror\n"
    if cmd:
        with open(os.path.join(out, "commands.dat"), "w") as fh:
            fh.write("command shopcqrs pgbench\n")
            for name, s in cmd["scenarios"].items():
                fh.write(f"{name} {s['ours']['throughput']} {s['pgbench']['tps']}\n")
        gp("commands", head + hist + f"set output '{img_dir}/commands-throughput.png'\nset title 'Commands: shopcqrs over HTTP vs pgbench (same SQL)'\nset ylabel 'per second'\nplot '{out}/commands.dat' using 2:xtic(1) title 'shopcqrs', '' using 3 title 'pgbench'\n")
    with open(os.path.join(out, "queries.dat"), "w") as fh:
        fh.write("scenario separated single\n")
        if pgr or pgw:
            fh.write(f"pgbench-order-view {pgr['tps'] if pgr else 0} {pgw['tps'] if pgw else 0}\n")
        for scenario in ["view", "history", "search", "mix"]:
            a, b = load(f"query-{scenario}-read.json"), load(f"query-{scenario}-write.json")
            fh.write(f"{scenario} {a['throughput'] if a else 0} {b['throughput'] if b else 0}\n")
    gp("queries", head + hist + f"set output '{img_dir}/queries-throughput.png'\nset title 'Queries: separated read DB vs single DB (pgbench: flat select vs normalized join)'\nset ylabel 'requests per second'\nplot '{out}/queries.dat' using 2:xtic(1) title 'separated (read DB)', '' using 3 title 'single (write DB)'\n")
    series = []
    for scenario, mode, q in query_rows:
        fn = os.path.join(out, f"lat-{scenario}-{mode}.dat")
        with open(fn, "w") as fh:
            for p, v in q["latency_ms"]["distribution"]:
                if p < 100:
                    fh.write(f"{100.0 / (100.0 - p)} {v}\n")
        series.append((fn, f"{scenario} {'separated' if mode == 'read' else 'single'}", "lw 2" if mode == "read" else "lw 2 dt 2"))
    latency_axes = "set logscale x\nset logscale y\nset xtics ('0%%%%' 1, '50%%%%' 2, '90%%%%' 10, '99%%%%' 100, '99.9%%%%' 1000, '99.99%%%%' 10000)\nset xlabel 'percentile'\nset ylabel 'latency ms'\nset key top left\n"
    if series:
        gp("queries-latency", head + latency_axes.replace("%%", "%") + f"set output '{img_dir}/queries-latency.png'\nset title 'Query latency distribution (HTTP, closed loop)'\nplot " + ", ".join(f"'{fn}' using 1:2 with lines {style} title '{t}'" for fn, t, style in series) + "\n")
    if iso:
        with open(os.path.join(out, "isolation.dat"), "w") as fh:
            fh.write("mode idle saturated\n")
            for mode in ["read", "write"]:
                if mode in iso:
                    fh.write(f"{'separated' if mode == 'read' else 'single'} {iso[mode]['idle']['throughput']} {iso[mode]['saturated']['throughput']}\n")
        gp("isolation", head + hist + f"set output '{img_dir}/isolation-throughput.png'\nset title 'Write throughput (place+pay) alone and under saturating reads'\nset ylabel 'commands per second'\nplot '{out}/isolation.dat' using 2:xtic(1) title 'idle', '' using 3 title 'saturated'\n")
        series = []
        for mode in iso:
            for phase in ["idle", "saturated"]:
                fn = os.path.join(out, f"lat-iso-{mode}-{phase}.dat")
                with open(fn, "w") as fh:
                    for p, v in iso[mode][phase]["latency_ms"]["distribution"]:
                        if p < 100:
                            fh.write(f"{100.0 / (100.0 - p)} {v}\n")
                series.append((fn, f"{'separated' if mode == 'read' else 'single'} {phase}", "lw 2" if phase == "idle" else "lw 2 dt 2"))
        gp("isolation-latency", head + latency_axes.replace("%%", "%") + f"set output '{img_dir}/isolation-latency.png'\nset title 'Write latency (place+pay) alone and under saturating reads'\nplot " + ", ".join(f"'{fn}' using 1:2 with lines {style} title '{t}'" for fn, t, style in series) + "\n")
else:
    lines += ["", "_Plots missing: gnuplot was not installed when the suite ran._"]

with open(md_path, "w") as fh:
    fh.write("\n".join(lines) + "\n")
PY
log "done: $OUT, docs/BENCHMARKS.md"
