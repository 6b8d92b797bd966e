#!/usr/bin/env bash
# Where the CPU goes on the live path: runs shopcqrs-bench-lag at one command rate (its own write
# and read PostgreSQL servers, projector in-process) while pidstat samples every process each
# second, and prints CPU (% of one core, mean over the run) per part: the bench process (client
# threads, write pool, relay/consumer and projector), the write server's and the read server's
# backends by application_name (shopcqrs-write, shopcqrs-projector, shopcqrs-outbox-reader, ...),
# their background processes, and nats-server.
# Usage: scripts/profile-live.sh [RATE] [SECONDS] [SOURCE]   (defaults 1000 20 outbox)
# PROFILE_LIVE_ARGS: more shopcqrs-bench-lag options, e.g. "--linger-us 0 --read-nice 5".
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RATE=${1:-1000}
SECONDS_=${2:-20}
SOURCE=${3:-outbox}
BENCH="$ROOT/build/bench/shopcqrs-bench-lag"
[[ -x "$BENCH" ]] || { echo "profile-live: build first (scripts/build.sh shopcqrs-bench-lag)" >&2; exit 1; }
command -v pidstat >/dev/null || { echo "profile-live: needs pidstat (apt-get install sysstat)" >&2; exit 1; }
OUT=$(mktemp -d)
"$BENCH" --rates "$RATE" --duration "$SECONDS_" --fsync --sources "$SOURCE" --json "$OUT/lag.json" ${PROFILE_LIVE_ARGS:-} \
  > "$OUT/bench.log" 2>&1 &
BENCH_PID=$!
# Wait for the measured phase (the seed and catch-up come first), then sample.
sleep 8
pidstat -h -u -p ALL 1 "$((SECONDS_ - 4))" > "$OUT/pidstat.txt" &
PIDSTAT=$!
sleep 3
# Which process is what: for every postgres process, its postmaster's data dir and, for a
# backend, its application_name (from pg_stat_activity of that server).
python3 - "$OUT/roles.txt" <<'PY'
import os, sys, subprocess, re
roles = {}
def cmdline(pid):
    try: return open(f"/proc/{pid}/cmdline","rb").read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError: return ""
def ppid(pid):
    try: return int(open(f"/proc/{pid}/stat").read().rsplit(")",1)[1].split()[1])
    except OSError: return 0
postmasters = {}
for d in os.listdir("/proc"):
    if not d.isdigit(): continue
    c = cmdline(d)
    m = re.search(r"postgres.* -D (\S+)", c)
    if m and "bin/postgres" in c: postmasters[int(d)] = m.group(1)
ports = {}
for pid, data in postmasters.items():
    conf = os.path.join(data, "shopcqrs.conf")
    port = None
    try:
        for line in open(conf):
            if line.startswith("port"): port = line.split("=")[1].strip()
    except OSError: pass
    base = os.path.basename(os.path.normpath(data))
    name = "write" if "write" in base else "read" if "read" in base else base
    ports[pid] = (name, port)
for d in os.listdir("/proc"):
    if not d.isdigit(): continue
    p = int(d); parent = ppid(p)
    if p in postmasters: roles[p] = f"{ports[p][0]}-pg postmaster"
    elif parent in postmasters:
        roles[p] = f"{ports[parent][0]}-pg " + cmdline(p).replace("postgres: ", "")[:40]
for pid, (name, port) in ports.items():
    if not port: continue
    try:
        rows = subprocess.run(["psql", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-d", "postgres", "-Atc",
                               "SELECT pid, coalesce(nullif(application_name,''), backend_type) FROM pg_stat_activity"],
                              capture_output=True, text=True, timeout=5).stdout
    except Exception: rows = ""
    for line in rows.splitlines():
        b, app = line.split("|", 1)
        roles[int(b)] = f"{name}-pg {app}"
with open(sys.argv[1], "w") as f:
    for p, r in roles.items(): f.write(f"{p}\t{r}\n")
PY
wait "$PIDSTAT" || true
wait "$BENCH_PID" || true
python3 - "$OUT" "$SECONDS_" <<'PY'
import sys, collections, re
out = sys.argv[1]
roles = dict(line.rstrip("\n").split("\t", 1) for line in open(f"{out}/roles.txt"))
cpu = collections.defaultdict(float); samples = collections.defaultdict(int)
header = None
for line in open(f"{out}/pidstat.txt"):
    if line.startswith("#"):
        header = line[1:].split(); continue
    parts = line.split()
    if not header or len(parts) < len(header): continue
    row = dict(zip(header, parts))
    try: pid = row["PID"]; value = float(row["%CPU"])
    except (KeyError, ValueError): continue
    cmd = row.get("Command", "?")
    role = roles.get(pid)
    if role is None:
        role = "bench (client, write pool, reader, projector)" if "bench-lag" in cmd else cmd
    role = re.sub(r"\s+\S+\(\d+\).*", "", role)
    if role.startswith("shopcqrs-bench"): role = "bench (client, write pool, reader, projector)"
    cpu[role] += value
seconds = None
times = set()
for line in open(f"{out}/pidstat.txt"):
    if line.startswith("#") or not line.strip(): continue
    times.add(line.split()[0])
n = max(1, len(times))
for line in open(f"{out}/bench.log"):
    if re.match(r"\s*(source|outbox|broker)\s", line): print(line.rstrip())
print(f"{'part':<60} {'% of a core':>12}")
total = 0.0
for role, value in sorted(cpu.items(), key=lambda kv: -kv[1]):
    if value / n < 0.5: continue
    print(f"{role:<60} {value / n:>12.1f}")
    total += value / n
print(f"{'total (parts above 0.5 %)':<60} {total:>12.1f}")
print(f"(raw: {out})")
PY
