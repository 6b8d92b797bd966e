# Shell helpers shared by the benchmark scripts (source it; the caller defines log()).

# A port nothing listens on (connecting is refused).
free_port() {
  local port
  for _ in $(seq 1 100); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

# Prints the URL process $1 reports serving in log $2, once it does.
wait_serving() {
  local pid=$1 logfile=$2 url=""
  for _ in $(seq 1 600); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "shopcqrs exited during start:"
      tail -n 20 "$logfile" >&2
      return 1
    fi
    url=$(sed -n 's/^shopcqrs serving \(http:\/\/[^ ]*\).*$/\1/p' "$logfile" 2>/dev/null | head -n 1)
    [[ -n "$url" ]] && { echo "$url"; return 0; }
    sleep 0.2
  done
  log "shopcqrs did not report serving within 120 s"
  return 1
}

# Starts `shopcqrs up --split` with the flags after $1 ($SHOPCQRS, data in $DATA/up, output in
# $DATA/up.log; free port, log level warn) in the background and sets UP to its pid. Once it
# serves: SHOPCQRS_ACCESS_TOKEN (exported, sent by shopcqrs-bench) and AUTH (curl arguments) carry
# its admin token, and it waits (up to 60 s) until $1 processes have printed their serving line.
# The caller sets its EXIT trap, which calls stop_split, before calling it.
start_split() {
  local processes=$1 port
  shift
  port=$(free_port)
  "$SHOPCQRS" up --split "$@" --data-dir "$DATA/up" --listen "127.0.0.1:$port" --log-level warn \
    >"$DATA/up.log" 2>&1 &
  UP=$!
  wait_serving "$UP" "$DATA/up.log" >/dev/null
  export SHOPCQRS_ACCESS_TOKEN=$(head -n 1 "$DATA/up/admin-token")
  # shellcheck disable=SC2034  # AUTH is the caller's
  AUTH=(-H "Authorization: Bearer $SHOPCQRS_ACCESS_TOKEN")
  for _ in $(seq 1 300); do
    [[ $(grep -c '^shopcqrs serving' "$DATA/up.log") -ge $processes ]] && break
    sleep 0.2
  done
}

# Stops the `up` start_split started (if it did).
stop_split() {
  [[ -n "${UP:-}" ]] || return 0
  kill "$UP" 2>/dev/null || true
  wait "$UP" 2>/dev/null || true
}
