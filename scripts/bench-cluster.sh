#!/usr/bin/env bash
# JetStream R1 vs R3: append latency and projection lag on one nats-server (the event stream at
# R1) and on a three-node JetStream cluster on loopback (the stream at R3), side by side, with
# shopcqrs-bench-lag (its own servers, fsync off; sources broker and broker-r3). Prints the
# markdown table of docs/BENCHMARKS.md "JetStream R1 vs R3" and writes
# bench/results/cluster-latest.json.
#
#   scripts/bench-cluster.sh [--rates 200,500,1000] [--duration S]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RATES=200,500,1000
DURATION=10
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rates) RATES=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    *) echo "bench-cluster: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
LAG="$ROOT/build/bench/shopcqrs-bench-lag"
[[ -x "$LAG" ]] || { echo "bench-cluster: build first (scripts/build.sh)" >&2; exit 1; }
JSON="$ROOT/bench/results/cluster-latest.json"
echo "[bench-cluster] $LAG --sources broker,broker-r3 --rates $RATES --duration $DURATION" >&2
"$LAG" --sources broker,broker-r3 --rates "$RATES" --duration "$DURATION" --json "$JSON" >&2
python3 - "$JSON" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
print("| | R1 (one nats-server) | R3 (three-node cluster) |")
print("|---|---|---|")
a = j.get("appends", {})
def pct(p): return f"{p['p50_ms']:.2f} / {p['p99_ms']:.2f} / {p['max_ms']:.2f}"
if "broker" in a and "broker-r3" in a:
    print(f"| append, publish → ack, p50 / p99 / max ms ({a['broker']['count']} one at a time) | {pct(a['broker'])} | {pct(a['broker-r3'])} |")
rows = {(r["source"], r["rate"]): r for r in j["rates"]}
for rate in sorted({r["rate"] for r in j["rates"]}):
    r1, r3 = rows.get(("broker", rate)), rows.get(("broker-r3", rate))
    if not (r1 and r3): continue
    print(f"| {rate:.0f} cmd/s: achieved cmd/s | {r1['achieved']:.0f} | {r3['achieved']:.0f} |")
    print(f"| {rate:.0f} cmd/s: lag commit → applied (server), p50 / p99 / max ms | {pct(r1['server'])} | {pct(r3['server'])} |")
    print(f"| {rate:.0f} cmd/s: command returned → token visible, p50 / p99 ms | {r1['visible']['p50_ms']:.2f} / {r1['visible']['p99_ms']:.2f} | {r3['visible']['p50_ms']:.2f} / {r3['visible']['p99_ms']:.2f} |")
    print(f"| {rate:.0f} cmd/s: command latency, p50 / p99 ms | {r1['command']['p50_ms']:.2f} / {r1['command']['p99_ms']:.2f} | {r3['command']['p50_ms']:.2f} / {r3['command']['p99_ms']:.2f} |")
PY
