#!/usr/bin/env bash
# Read scale-out (issue 12): `shopcqrs up --split --query-processes 3 --read-servers 2` (fresh
# temp data dir): query processes q1 and q3 read read server 1, q2 reads read server 2, each
# read server fed by a projector process of its own. Seeds a dataset through the command
# process, waits until both read servers hold all of it, then runs the same closed-loop query
# load (`shopcqrs-bench view`: the order view, answered from Redis; `history`: a customer's
# orders, answered from the customer's read PostgreSQL) on
#
#   1 query process,  1 read server   q1
#   2 query processes, 1 read server  q1 + q3
#   2 query processes, 2 read servers q1 + q2
#
# (clients spread round-robin over the processes) and reports requests/s and the ratio to the
# first. Nothing is pinned: every process shares the machine's cores, so on a 2-core machine the
# ratio shows what the extra processes cost or gain there, not what separate machines would.
#
#   scripts/bench-scaling.sh [--duration S] [--clients N] [--orders N]
#
# Prints a table and writes bench/results/scaling-latest.json.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=10
CLIENTS=16
ORDERS=5000
while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) DURATION=$2; shift ;;
    --clients) CLIENTS=$2; shift ;;
    --orders) ORDERS=$2; shift ;;
    *) echo "bench-scaling: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
SHOPCQRS="$ROOT/build/src/apps/shopcqrs/shopcqrs"
BENCH="$ROOT/build/bench/shopcqrs-bench"
[[ -x "$SHOPCQRS" && -x "$BENCH" ]] || { echo "bench-scaling: build first (scripts/build.sh)" >&2; exit 1; }
DATA=$(mktemp -d /tmp/shopcqrs-scaling-XXXXXX)
chmod 755 "$DATA"  # the servers may run as the postgres user
log() { printf '[bench-scaling] %s\n' "$*" >&2; }
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
cleanup() {
  stop_split
  [[ -n "${KEEP_DATA:-}" ]] || rm -rf "$DATA"
}
trap cleanup EXIT
start_split 7 --query-processes 3 --read-servers 2
urls() { sed -n "s/^shopcqrs serving \(http:\/\/[^ ]*\) (roles $1, pid.*$/\1/p" "$DATA/up.log"; }
mapfile -t QUERY < <(urls query)
mapfile -t PROJECTOR < <(urls projector)
COMMAND=$(urls command | head -n 1)
[[ ${#QUERY[@]} -eq 3 && ${#PROJECTOR[@]} -eq 2 && -n "$COMMAND" ]] ||
  { log "up --split did not report its processes:"; cat "$DATA/up.log" >&2; exit 1; }

log "seeding $ORDERS orders through $COMMAND"
"$BENCH" seed --url "$COMMAND" --read-url "${QUERY[0]}" --orders "$ORDERS" \
  --dataset "$DATA/dataset.json" >"$DATA/seed.log" 2>&1 || { tail -n 5 "$DATA/seed.log" >&2; exit 1; }
# Both read servers must hold everything before the reads are compared.
for projector in "${PROJECTOR[@]}"; do
  for _ in $(seq 1 600); do
    behind=$(curl -s "${AUTH[@]}" "$projector/v1/admin/projections" | jq '[.items[].events_behind] | max')
    [[ "$behind" == "0" ]] && break
    sleep 0.2
  done
done

run() {
  local scenario=$1 name=$2; shift 2
  local args=()
  for url in "$@"; do args+=(--url "$url"); done
  log "$scenario on $name"
  "$BENCH" "$scenario" "${args[@]}" -c "$CLIENTS" -d "$DURATION" --warmup 2 \
    --dataset "$DATA/dataset.json" --json "$DATA/$scenario-$name.json" \
    >"$DATA/$scenario-$name.log" 2>&1 || { tail -n 5 "$DATA/$scenario-$name.log" >&2; }
}
for scenario in view history; do
  run "$scenario" 1q1r "${QUERY[0]}"
  run "$scenario" 2q1r "${QUERY[0]}" "${QUERY[2]}"
  run "$scenario" 2q2r "${QUERY[0]}" "${QUERY[1]}"
done

python3 - "$DATA" "$ROOT" "$CLIENTS" "$DURATION" "$ORDERS" <<'PY'
import json, os, sys, datetime
data, root, clients, duration, orders = sys.argv[1:6]
layouts = [("1q1r", "1 query process, 1 read server"), ("2q1r", "2 query processes, 1 read server"),
           ("2q2r", "2 query processes, 2 read servers")]
rows = []
print(f"{clients} clients, {duration} s, {orders} orders; nothing pinned ({os.cpu_count()} CPUs)")
print("| scenario | layout | req/s | p50 ms | p99 ms | ratio to 1q1r |")
print("|---|---|---:|---:|---:|---:|")
for scenario in ("view", "history"):
    base = None
    for key, label in layouts:
        path = f"{data}/{scenario}-{key}.json"
        if not os.path.exists(path):
            continue
        j = json.load(open(path))
        lat = j.get("latency_ms", {})
        rps = j.get("throughput", 0)
        base = base or rps
        ratio = rps / base if base else 0
        rows.append({"scenario": scenario, "layout": key, "req_s": rps,
                     "p50_ms": lat.get("p50"), "p99_ms": lat.get("p99"), "ratio": ratio})
        print(f"| {scenario} | {label} | {rps:.0f} | {lat.get('p50', 0):.2f} | {lat.get('p99', 0):.2f} | {ratio:.2f} |")
out = {"benchmark": "scaling", "when": datetime.datetime.utcnow().isoformat() + "Z",
       "command": f"scripts/bench-scaling.sh --duration {duration} --clients {clients} --orders {orders}",
       "rows": rows}
os.makedirs(os.path.join(root, "bench", "results"), exist_ok=True)
json.dump(out, open(os.path.join(root, "bench", "results", "scaling-latest.json"), "w"), indent=1)
PY
