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
