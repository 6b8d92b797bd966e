#!/usr/bin/env bash
# Visible lag over HTTP, the way a client sees it, at several command rates: starts `shopcqrs up`
# (fresh temp data dir, free port; its servers as `up` runs them: fsync on, every projection
# running, the broker path) and runs `shopcqrs-bench visible` at each rate -- an open loop of
# PayOrder, and after each answer a GET of the order with the command's consistency token;
# visible lag = command answered -> that GET's 200. Prints a table, writes
# bench/results/visible-latest.json and, with gnuplot, docs/img/visible-lag.png.
#
#   scripts/bench-visible.sh [--rates 100,300,500,1000] [--duration S] [--clients N]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RATES=100,300,500,1000
DURATION=10
CLIENTS=64
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rates) RATES=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --clients) CLIENTS=$2; shift ;;
    *) echo "bench-visible: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
SHOPCQRS="$ROOT/build/src/apps/shopcqrs/shopcqrs"
BENCH="$ROOT/build/bench/shopcqrs-bench"
[[ -x "$SHOPCQRS" && -x "$BENCH" ]] || { echo "bench-visible: build first (scripts/build.sh)" >&2; exit 1; }
DATA=$(mktemp -d /tmp/shopcqrs-visible-XXXXXX)
chmod 755 "$DATA"  # the servers may run as the postgres user
log() { printf '[bench-visible] %s\n' "$*" >&2; }
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
PORT=$(free_port)
"$SHOPCQRS" up --data-dir "$DATA/up" --listen "127.0.0.1:$PORT" --log-level warn >"$DATA/up.log" 2>&1 &
UP=$!
cleanup() { kill "$UP" 2>/dev/null || true; wait "$UP" 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT
URL=$(wait_serving "$UP" "$DATA/up.log")
export SHOPCQRS_ACCESS_TOKEN=$(head -n 1 "$DATA/up/admin-token")  # sent by shopcqrs-bench
IFS=, read -ra LIST <<<"$RATES"
for rate in "${LIST[@]}"; do
  log "visible at $rate/s"
  "$BENCH" visible --url "$URL" --rate "$rate" -c "$CLIENTS" -d "$DURATION" --warmup 2 \
    --json "$DATA/visible-$rate.json" >"$DATA/visible-$rate.log" 2>&1 ||
    { tail -n 5 "$DATA/visible-$rate.log" >&2; }
done
python3 - "$DATA" "$ROOT" "$RATES" <<'PY'
import json, os, subprocess, sys, datetime
data, root, rates = sys.argv[1], sys.argv[2], [r for r in sys.argv[3].split(",") if r]
rows = []
for r in rates:
    path = os.path.join(data, f"visible-{r}.json")
    if not os.path.exists(path):
        continue
    j = json.load(open(path))
    v = j.get("visible", {})
    lat = j.get("latency_ms", j.get("latency", {}))
    rows.append({"rate": float(r), "achieved": j.get("throughput", 0),
                 "command_p50_ms": lat.get("p50", lat.get("p50_ms")),
                 "command_p99_ms": lat.get("p99", lat.get("p99_ms")),
                 "visible": v})
print("| rate cmd/s | achieved | command p50 ms | command p99 ms | visible p50 ms | visible p99 ms | visible p99.9 ms | failed reads |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|")
for x in rows:
    v = x["visible"]
    print(f"| {x['rate']:.0f} | {x['achieved']:.1f} | {x['command_p50_ms']:.2f} | {x['command_p99_ms']:.2f} | "
          f"{v.get('p50_ms', 0):.2f} | {v.get('p99_ms', 0):.2f} | {v.get('p999_ms', 0):.2f} | {v.get('failed', 0)} |")
out = {"benchmark": "visible", "when": datetime.datetime.utcnow().isoformat() + "Z", "rows": rows}
os.makedirs(os.path.join(root, "bench", "results"), exist_ok=True)
json.dump(out, open(os.path.join(root, "bench", "results", "visible-latest.json"), "w"), indent=1)
if rows and subprocess.run(["which", "gnuplot"], capture_output=True).returncode == 0:
    dat = os.path.join(data, "visible.dat")
    with open(dat, "w") as f:
        for x in rows:
            v = x["visible"]
            f.write(f"{x['rate']} {v.get('p50_ms', 0)} {v.get('p99_ms', 0)}\n")
    img = os.path.join(root, "docs", "img", "visible-lag.png")
    script = f"""set terminal pngcairo size 800,450
set output '{img}'
set title 'Visible lag over HTTP on shopcqrs up (pay -> GET with its token)'
set xlabel 'commands/s (open loop)'
set ylabel 'ms'
set logscale y
set grid
plot '{dat}' using 1:2 with linespoints title 'p50', '' using 1:3 with linespoints title 'p99'
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=False)
PY
