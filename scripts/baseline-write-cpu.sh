#!/usr/bin/env bash
# The write side's baseline: PostgreSQL's own CPU for the raw SQL of the commands at a fixed rate.
# Starts a throwaway write PostgreSQL (the settings `shopcqrs up` gives its write server, fsync on
# unless --no-fsync), applies the migrations (`shopcqrs migrate`), seeds bench/sql/seed.sql and
# runs pgbench open-loop at RATE transactions/s with the mix of shopcqrs-bench-lag's commands that
# pgbench scripts exist for (place.sql 5 : pay.sql 3; bench/sql), while pidstat samples every
# backend of that server. Prints tps, latency percentiles and the backends' CPU per transaction,
# to set beside the write backends' CPU per command of scripts/profile-live.sh at the same rate.
#
#   scripts/baseline-write-cpu.sh [RATE] [SECONDS] [--no-fsync]     (defaults 1000 20)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RATE=${1:-1000}
SECONDS_=${2:-20}
FSYNC=on
[[ "${3:-}" == "--no-fsync" ]] && FSYNC=off
PGBIN=/usr/lib/postgresql/15/bin
SHOPCQRS="$ROOT/build/src/apps/shopcqrs/shopcqrs"
[[ -x "$SHOPCQRS" ]] || { echo "baseline-write-cpu: build first (scripts/build.sh)" >&2; exit 1; }
command -v pidstat >/dev/null || { echo "baseline-write-cpu: needs pidstat (sysstat)" >&2; exit 1; }

DIR=$(mktemp -d /tmp/shopcqrs-baseline-XXXXXX)
chmod 755 "$DIR"
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
PORT=$(free_port)
as_pg() { if [[ $(id -u) == 0 ]]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi; }
[[ $(id -u) == 0 ]] && chown postgres "$DIR"
cleanup() { as_pg "$PGBIN/pg_ctl -D $DIR/data -m immediate stop" >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT
as_pg "$PGBIN/initdb -D $DIR/data -A trust -U postgres" >/dev/null
cat >>"$DIR/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DIR'
max_connections = 200
shared_buffers = 256MB
fsync = $FSYNC
full_page_writes = $FSYNC
EOF
as_pg "$PGBIN/pg_ctl -D $DIR/data -l $DIR/server.log -w start" >/dev/null
WRITE="host=127.0.0.1 port=$PORT user=postgres dbname=write"
"$PGBIN/psql" "host=127.0.0.1 port=$PORT user=postgres dbname=postgres" -qc "CREATE DATABASE write"
"$PGBIN/psql" "host=127.0.0.1 port=$PORT user=postgres dbname=postgres" -qc "CREATE DATABASE read"
"$SHOPCQRS" migrate --write-db "$WRITE" --read-db "${WRITE/dbname=write/dbname=read}" \
  --log-level warn >/dev/null
TOTAL=$((RATE * (SECONDS_ + 5)))
"$PGBIN/psql" "$WRITE" -q -v ncustomers=200 -v nproducts=500 -v norders="$TOTAL" \
  -f "$ROOT/bench/sql/seed.sql" >/dev/null
"$PGBIN/psql" "$WRITE" -qc "VACUUM ANALYZE" >/dev/null

POSTMASTER=$(head -n 1 "$DIR/data/postmaster.pid")
"$PGBIN/pgbench" -n -c 16 -j 2 -R "$RATE" -T "$SECONDS_" -M prepared -D ncustomers=200 \
  -D nproducts=500 -f "$ROOT/bench/sql/place.sql@5" -f "$ROOT/bench/sql/pay.sql@3" \
  -l --log-prefix="$DIR/tx" "$WRITE" >"$DIR/pgbench.txt" 2>&1 &
PGBENCH=$!
sleep 3
# Every backend of this server (children of its postmaster that are client backends).
BACKENDS=$(ps -o pid=,args= --ppid "$POSTMASTER" | awk '/postgres: postgres write/ {print $1}' |
  paste -sd, -)
pidstat -h -u -p "$BACKENDS" 1 "$((SECONDS_ - 5))" >"$DIR/pidstat.txt" || true
wait "$PGBENCH" || { cat "$DIR/pgbench.txt" >&2; exit 1; }
TPS=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$DIR/pgbench.txt" | head -n 1)
LAT=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' "$DIR/pgbench.txt")
# pidstat -h: Time UID PID %usr %system %guest %wait %CPU CPU Command
CPU=$(awk '!/^#/ && NF >= 10 {sum += $(NF-2); n[$1] = 1} END {
  samples = length(n); if (samples == 0) samples = 1; printf "%.1f", sum / samples}' \
  "$DIR/pidstat.txt")
# Per-transaction log: client tx time_us script epoch us [schedule_lag_us]; latency from the
# scheduled start (time + lag), as pgbench's own summary and the open-loop benchmarks count it.
PCT=$(cat "$DIR"/tx* | awk '{print $3 + (NF >= 7 ? $7 : 0)}' | sort -n | awk '
  {v[NR] = $1} END {if (NR == 0) exit; printf "p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms",
  v[int(NR*0.5)+1]/1000, v[int(NR*0.99)+1]/1000, v[int(NR*0.999)+1]/1000, v[NR]/1000}')
echo "pgbench place@5/pay@3 at $RATE/s for ${SECONDS_}s, fsync $FSYNC, 16 clients, -M prepared:"
echo "  tps $TPS, latency average $LAT ms; $PCT"
grep -E "latency stddev|rate limit schedule lag" "$DIR/pgbench.txt" | sed 's/^/  /' || true
echo "  write backends: $CPU % of one core -> $(awk -v c="$CPU" -v t="$TPS" \
  'BEGIN {printf "%.3f", c * 10 / t}') ms CPU per transaction"
