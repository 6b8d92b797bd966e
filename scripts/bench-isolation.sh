#!/usr/bin/env bash
# Writes untouched by reads, measured the way a deployment places the roles (issue 12): starts
# `shopcqrs up --split` (fresh temp data dir; each role in its own process) and pins
#
#   CPU 0: the write PostgreSQL (postmaster and every backend), the command process, the relay
#          and the writer clients;
#   CPU 1: the read PostgreSQL, Redis, NATS, the projector process, the query process, `up`
#          itself and the reader clients
#
# (taskset on every thread of each process tree; backends forked later inherit the postmaster's
# CPU). Every projection keeps running. `shopcqrs-bench isolation` then runs place/pay writers
# alone (idle), then while reader clients saturate the query process with the query mix
# (saturated), and reports write throughput and p99 of each phase and their ratio. The
# projections' lag (commit -> applied, shopcqrs_projection_lag_seconds scraped from the projector
# before and after each phase) is reported beside it.
#
# The same placement for single-database mode follows: a query process with
# query_source = write (queries as joins on the write PostgreSQL, on CPU 0) replaces the
# readers' service; that process and the readers stay on CPU 1.
#
#   scripts/bench-isolation.sh [--duration S] [--warmup S] [--writers N] [--readers N]
#
# Prints a table and writes bench/results/isolation-latest.json.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=15
WARMUP=3
WRITERS=8
READERS=32
while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) DURATION=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --writers) WRITERS=$2; shift ;;
    --readers) READERS=$2; shift ;;
    *) echo "bench-isolation: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
SHOPCQRS="$ROOT/build/src/apps/shopcqrs/shopcqrs"
BENCH="$ROOT/build/bench/shopcqrs-bench"
[[ -x "$SHOPCQRS" && -x "$BENCH" ]] || { echo "bench-isolation: build first (scripts/build.sh)" >&2; exit 1; }
[[ $(nproc) -ge 2 ]] || { echo "bench-isolation: needs two CPUs" >&2; exit 1; }
DATA=$(mktemp -d /tmp/shopcqrs-isolation-XXXXXX)
chmod 755 "$DATA"  # the servers may run as the postgres user
log() { printf '[bench-isolation] %s\n' "$*" >&2; }
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
SINGLE=""
cleanup() {
  [[ -n "$SINGLE" ]] && { kill "$SINGLE" 2>/dev/null || true; wait "$SINGLE" 2>/dev/null || true; }
  stop_split
  [[ -n "${KEEP_DATA:-}" ]] || rm -rf "$DATA"
}
trap cleanup EXIT
start_split 4
role_url() { sed -n "s/^shopcqrs serving \(http:\/\/[^ ]*\) (roles $1, pid.*$/\1/p" "$DATA/up.log" | head -n 1; }
role_pid() { sed -n "s/^shopcqrs serving .* (roles $1, pid \([0-9]*\))$/\1/p" "$DATA/up.log" | head -n 1; }
COMMAND_URL=$(role_url command)
QUERY_URL=$(role_url query)
PROJECTOR_URL=$(role_url projector)
[[ -n "$COMMAND_URL" && -n "$QUERY_URL" && -n "$PROJECTOR_URL" ]] ||
  { log "up --split did not report its roles:"; cat "$DATA/up.log" >&2; exit 1; }

# Every thread of $2 and of its descendants onto CPU $1.
pin_tree() {
  local cpu=$1 pid=$2 child
  [[ -n "$pid" ]] || return 0
  taskset -a -p -c "$cpu" "$pid" >/dev/null 2>&1 || true
  for child in $(pgrep -P "$pid" || true); do pin_tree "$cpu" "$child"; done
}
postmaster() { head -n 1 "$DATA/up/$1/postmaster.pid"; }
pin_all() {
  pin_tree 0 "$(postmaster write-pg)"
  pin_tree 0 "$(role_pid command)"
  pin_tree 0 "$(role_pid relay)"
  pin_tree 1 "$(postmaster read-pg)"
  pin_tree 1 "$(pgrep -f "$DATA/up/redis" | head -n 1)"
  pin_tree 1 "$(pgrep -f "$DATA/up/nats" | head -n 1)"
  pin_tree 1 "$(role_pid projector)"
  pin_tree 1 "$(role_pid query)"
  taskset -a -p -c 1 "$UP" >/dev/null
}
pin_all
log "pinned: CPU 0 write PostgreSQL, command, relay, writers; CPU 1 read PostgreSQL, Redis, NATS, projector, query, readers"

scrape() { curl -s "${AUTH[@]}" "$PROJECTOR_URL/metrics" | grep '^shopcqrs_projection_lag_seconds_bucket' >"$1" || true; }

run_mode() {
  local mode=$1 read_url=$2
  log "isolation ($mode): $WRITERS writers alone, then + $READERS readers on $read_url"
  scrape "$DATA/lag-$mode-0.txt"
  # The idle phase runs first inside the benchmark; the lag of each phase comes from the
  # scrapes around it (the saturated phase starts 1 s after the readers).
  "$BENCH" isolation --url "$COMMAND_URL" --read-url "$read_url" -c "$WRITERS" \
    --readers "$READERS" -d "$DURATION" --warmup "$WARMUP" --writer-cpu 0 --reader-cpu 1 \
    --orders 2000 --dataset "$DATA/dataset.json" --json "$DATA/isolation-$mode.json" \
    >"$DATA/isolation-$mode.log" 2>&1 &
  local bench=$! marked=0
  while kill -0 "$bench" 2>/dev/null; do
    if [[ $marked == 0 ]] && grep -q 'saturated phase' "$DATA/isolation-$mode.log" 2>/dev/null; then
      scrape "$DATA/lag-$mode-1.txt"
      marked=1
    fi
    sleep 0.1
  done
  wait "$bench" || { log "failed:"; tail -n 5 "$DATA/isolation-$mode.log" >&2; }
  scrape "$DATA/lag-$mode-2.txt"
  cat "$DATA/isolation-$mode.log" >&2
}

run_mode separated "$QUERY_URL"

# Single-database mode, same placement: the readers' service answers from the write database.
SPORT=$(free_port)
SHOPCQRS_QUERY_SOURCE=write taskset -c 1 "$SHOPCQRS" serve --config "$DATA/up/split.toml" \
  --role query --listen "127.0.0.1:$SPORT" --log-level warn >"$DATA/single.log" 2>&1 &
SINGLE=$!
SINGLE_URL=$(wait_serving "$SINGLE" "$DATA/single.log")
pin_tree 0 "$(postmaster write-pg)"  # the single process's backends on the write server
run_mode single "$SINGLE_URL"

python3 - "$DATA" "$ROOT" "$WRITERS" "$READERS" "$DURATION" "$WARMUP" <<'PY'
import json, os, re, sys, datetime
data, root, writers, readers, duration, warmup = sys.argv[1:7]

def buckets(path):
    """{projection: [(le, count)]} of a scrape."""
    out = {}
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return out
    for line in lines:
        m = re.match(r'shopcqrs_projection_lag_seconds_bucket\{(.*)\} (\S+)', line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        le = float("inf") if labels["le"] == "+Inf" else float(labels["le"])
        out.setdefault(labels["projection"], []).append((le, float(m.group(2))))
    return out

def quantile(delta, q):
    """Interpolated quantile (ms) of a cumulative bucket list."""
    total = delta[-1][1] if delta else 0
    if total <= 0:
        return None
    target, prev_le, prev_c = q * total, 0.0, 0.0
    for le, c in delta:
        if c >= target:
            if le == float("inf"):
                return prev_le * 1000
            share = (target - prev_c) / (c - prev_c) if c > prev_c else 1
            return (prev_le + (le - prev_le) * share) * 1000
        prev_le, prev_c = le, c
    return None

def lag(mode, a, b):
    before, after = buckets(f"{data}/lag-{mode}-{a}.txt"), buckets(f"{data}/lag-{mode}-{b}.txt")
    out = {}
    for name, rows in after.items():
        old = dict(before.get(name, []))
        delta = [(le, c - old.get(le, 0)) for le, c in sorted(rows)]
        out[name] = {"events": delta[-1][1] if delta else 0,
                     "p50_ms": quantile(delta, 0.5), "p99_ms": quantile(delta, 0.99)}
    return out

rows = {}
for mode in ("separated", "single"):
    path = f"{data}/isolation-{mode}.json"
    if not os.path.exists(path):
        continue
    j = json.load(open(path))
    j["lag_idle"] = lag(mode, 0, 1)
    j["lag_saturated"] = lag(mode, 1, 2)
    rows[mode] = j

def p99(phase):
    return max(phase["place_latency_ms"]["p99"], phase["pay_latency_ms"]["p99"])

def lagcell(l):
    worst = [v for v in l.values() if v["p99_ms"] is not None]
    if not worst:
        return "-"
    w = max(worst, key=lambda v: v["p99_ms"])
    return f"{max(v['p50_ms'] for v in worst):.1f} / {w['p99_ms']:.1f}"

print(f"writers {writers}, readers {readers}, {duration} s per phase after {warmup} s warm-up; "
      "CPU 0: write side + writers, CPU 1: read side + readers")
print("| mode | idle cmd/s | idle p99 ms | saturated cmd/s | saturated p99 ms | ratio | reads/s | lag p50/p99 ms idle | lag p50/p99 ms saturated |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for mode, j in rows.items():
    idle, sat = j["idle"], j["saturated"]
    print(f"| {mode} | {idle['throughput']:.0f} | {p99(idle):.1f} | {sat['throughput']:.0f} | "
          f"{p99(sat):.1f} | {j['ratio']:.3f} | {sat['readers']['throughput']:.0f} | "
          f"{lagcell(j['lag_idle'])} | {lagcell(j['lag_saturated'])} |")
out = {"benchmark": "isolation", "when": datetime.datetime.utcnow().isoformat() + "Z",
       "placement": {"cpu0": ["write PostgreSQL", "command", "relay", "writers"],
                     "cpu1": ["read PostgreSQL", "Redis", "NATS", "projector", "query", "readers"]},
       "command": f"scripts/bench-isolation.sh --duration {duration} --warmup {warmup} "
                  f"--writers {writers} --readers {readers}",
       "modes": rows}
os.makedirs(os.path.join(root, "bench", "results"), exist_ok=True)
json.dump(out, open(os.path.join(root, "bench", "results", "isolation-latest.json"), "w"), indent=1)
PY
