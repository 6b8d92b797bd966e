#!/usr/bin/env bash
# GET /v1/search/orders on ORDERS orders (default 200000), next to the same SQL through pgbench on
# the same read server in the same run (docs/BENCHMARKS.md, "Ranked search").
#
# Starts a throwaway PostgreSQL (write and read databases, `shopcqrs migrate`), seeds the READ
# database straight from SQL (bench/sql/search_seed.sql: the rows the read_pg and search
# projections would hold for ORDERS orders, seeding that many through the API takes too long, and
# 10000 queries of one or two words sampled from the documents, 20% of the words misspelt by one
# letter), starts `shopcqrs serve` (queries only, read pool of CLIENTS connections) and then, for
# the one-word and the two-word queries in turn:
#   - shopcqrs-bench search --queries (CLIENTS closed-loop clients, random queries, limit=20);
#   - pgbench -M prepared -c CLIENTS with the service's statement (shopcqrs-bench-search-sql).
# Prints req/s, p50 and p99 of both, their ratio, and the load average.
#
#   scripts/bench-search.sh [ORDERS] [SECONDS] [CLIENTS]      (defaults 200000 15 8)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ORDERS=${1:-200000}
SECONDS_=${2:-15}
CLIENTS=${3:-8}
PGBIN=/usr/lib/postgresql/15/bin
SHOPCQRS="$ROOT/build/src/apps/shopcqrs/shopcqrs"
BENCH="$ROOT/build/bench/shopcqrs-bench"
SEARCH_SQL="$ROOT/build/bench/shopcqrs-bench-search-sql"
for bin in "$SHOPCQRS" "$BENCH" "$SEARCH_SQL"; do
  [[ -x "$bin" ]] || { echo "bench-search: build first ($bin)" >&2; exit 1; }
done
log() { echo "bench-search: $*" >&2; }

DIR=$(mktemp -d /tmp/shopcqrs-bench-search-XXXXXX)
chmod 755 "$DIR"
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
PORT=$(free_port)
as_pg() { if [[ $(id -u) == 0 ]]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi; }
[[ $(id -u) == 0 ]] && chown postgres "$DIR"
SERVE_PID=""
cleanup() {
  [[ -n "$SERVE_PID" ]] && kill "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null
  as_pg "$PGBIN/pg_ctl -D $DIR/data -m immediate stop" >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT
as_pg "$PGBIN/initdb -D $DIR/data -A trust -U postgres" >/dev/null
cat >>"$DIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DIR'
max_connections = 200
shared_buffers = 256MB
fsync = off
full_page_writes = off
CONF
as_pg "$PGBIN/pg_ctl -D $DIR/data -l $DIR/server.log -w start" >/dev/null
ADMIN="host=127.0.0.1 port=$PORT user=postgres dbname=postgres"
WRITE="host=127.0.0.1 port=$PORT user=postgres dbname=write"
READ="host=127.0.0.1 port=$PORT user=postgres dbname=read"
"$PGBIN/psql" "$ADMIN" -qc "CREATE DATABASE write" -c "CREATE DATABASE read"
"$SHOPCQRS" migrate --write-db "$WRITE" --read-db "$READ" --log-level warn >/dev/null
log "seeding $ORDERS orders into the read database"
SEED_START=$(date +%s)
"$PGBIN/psql" "$READ" -q -v norders="$ORDERS" -v nqueries=10000 \
  -f "$ROOT/bench/sql/search_seed.sql" >"$DIR/seed.txt"
"$PGBIN/psql" "$READ" -qc "VACUUM ANALYZE"
log "seeded in $(($(date +%s) - SEED_START)) s: $(tail -n 3 "$DIR/seed.txt" | head -n 1)"
# The one-word and the two-word queries, each numbered 1..n for pgbench, and as text files.
for n in 1 2; do
  "$PGBIN/psql" "$READ" -q -c \
    "CREATE TABLE bench_q$n AS SELECT row_number() OVER (ORDER BY n)::integer AS n, words, q
     FROM bench_search_queries WHERE cardinality(words) = $n" -c \
    "ALTER TABLE bench_q$n ADD PRIMARY KEY (n)"
  "$PGBIN/psql" "$READ" -Atc "SELECT q FROM bench_q$n ORDER BY n" >"$DIR/queries-$n.txt"
  "$SEARCH_SQL" | sed "s/bench_search_queries/bench_q$n/" >"$DIR/search-$n.sql"
done
"$PGBIN/psql" "$READ" -qc "ANALYZE"
MISSPELT=$("$PGBIN/psql" "$READ" -Atc "SELECT round(100.0 * count(*) FILTER (WHERE NOT EXISTS (
  SELECT FROM search_words d WHERE d.word = w)) / count(*), 1)
  FROM bench_search_queries, unnest(words) AS w")
log "queries: $(wc -l <"$DIR/queries-1.txt") of one word, $(wc -l <"$DIR/queries-2.txt") of two; \
${MISSPELT}% of their words are no word of any document (misspelt)"

HTTP_PORT=$(free_port)
SHOPCQRS_HTTP_THREADS=$((CLIENTS * 2)) SHOPCQRS_READ_POOL_SIZE=$CLIENTS \
  SHOPCQRS_TOKEN_SECRET=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n') \
  "$SHOPCQRS" serve --write-db "$WRITE" --read-db "$READ" --projectors false --log-level warn \
  --listen "127.0.0.1:$HTTP_PORT" >"$DIR/serve.log" 2>&1 &
SERVE_PID=$!
URL=$(wait_serving "$SERVE_PID" "$DIR/serve.log")
log "service at $URL (read pool $CLIENTS connections)"

# pgbench on script $1 for SECONDS_; prints "tps p50_ms p99_ms transactions".
run_pgbench() {
  local script=$1 name=$2 nq
  nq=$("$PGBIN/psql" "$READ" -Atc "SELECT count(*) FROM bench_q${name: -1}")
  "$PGBIN/pgbench" -n -M prepared -c "$CLIENTS" -j 2 -T "$SECONDS_" -D nqueries="$nq" \
    -D status=none -D from=none -D to=none -D rank=2147483647 -D placed=infinity \
    -D last=ffffffff-ffff-ffff-ffff-ffffffffffff -D lim=21 -D customer=none -l --log-prefix="$DIR/pgb-$name" \
    -f "$script" "$READ" >"$DIR/pgbench-$name.txt" 2>&1 || {
    cat "$DIR/pgbench-$name.txt" >&2
    return 1
  }
  local tps txns p50 p99
  tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$DIR/pgbench-$name.txt" | head -n 1)
  txns=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' \
    "$DIR/pgbench-$name.txt")
  read -r p50 p99 < <(cat "$DIR/pgb-$name".* | awk '{print $3}' | sort -n | awk '
    { v[NR] = $1 }
    END {
      if (NR == 0) { print "0 0"; exit }
      i50 = int(NR * 0.50 + 0.999999); i99 = int(NR * 0.99 + 0.999999)
      printf "%.2f %.2f\n", v[i50] / 1000, v[i99] / 1000
    }')
  echo "$tps $p50 $p99 $txns"
}

# shopcqrs-bench on queries file $1; prints "ok_per_s p50_ms p99_ms non_2xx".
run_http() {
  local file=$1 name=$2
  "$BENCH" search --url "$URL" --queries "$file" -c "$CLIENTS" -d "$SECONDS_" --warmup 2 \
    --json "$DIR/http-$name.json" >"$DIR/http-$name.txt" 2>&1 || {
    cat "$DIR/http-$name.txt" >&2
    return 1
  }
  python3 - "$DIR/http-$name.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
lat = r.get("latency_ms", r)
def pick(*keys):
    for k in keys:
        for d in (r, lat):
            if isinstance(d, dict) and k in d:
                return d[k]
    return float("nan")
bad = sum(v for k, v in r.get("statuses", {}).items() if not str(k).startswith("2"))
print(f'{pick("ok_per_s", "ok/s", "throughput"):.1f} {pick("p50", "p50_ms"):.2f} '
      f'{pick("p99", "p99_ms"):.2f} {bad}')
PY
}

echo "search on $ORDERS orders, $CLIENTS clients / connections, ${SECONDS_} s each, $(nproc) cores"
printf '%-10s %-8s %10s %8s %8s   %s\n' words side "req/s" "p50 ms" "p99 ms" notes
for n in 1 2; do
  read -r h_rps h_p50 h_p99 h_bad < <(run_http "$DIR/queries-$n.txt" "q$n")
  load_h=$(cut -d' ' -f1-3 /proc/loadavg)
  read -r p_tps p_p50 p_p99 p_txns < <(run_pgbench "$DIR/search-$n.sql" "q$n")
  load_p=$(cut -d' ' -f1-3 /proc/loadavg)
  printf '%-10s %-8s %10s %8s %8s   %s\n' "$n" http "$h_rps" "$h_p50" "$h_p99" \
    "non-2xx $h_bad; load $load_h"
  printf '%-10s %-8s %10s %8s %8s   %s\n' "$n" pgbench "$p_tps" "$p_p50" "$p_p99" \
    "$p_txns transactions; load $load_p"
  awk -v h="$h_rps" -v p="$p_tps" 'BEGIN { printf "%-10s http/pgbench throughput ratio %.2f\n", "", h / p }'
done
