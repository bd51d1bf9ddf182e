# Shared by scripts/bench-*.sh (sourced, not run). Measurements of
# docs/BENCHMARKS.md: every script prints the commands it runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BIN=${BIN:-bin/xbt-tracker}
# The binary start_serve runs (another build to compare with; the load
# generator is always BIN).
SERVE_BIN=${XBT_BENCH_SERVE_BIN:-$BIN}
BASE_DSN=${XBT_BENCH_DSN:-root:@tcp(127.0.0.1:3306)/}
PORT=${XBT_BENCH_PORT:-2710}
# CPU pinning on a 2-core machine: the server on one core, the load
# generator on the other, so they do not steal each other's time slices.
SERVER_CPU=${XBT_BENCH_SERVER_CPU:-0}
LOAD_CPU=${XBT_BENCH_LOAD_CPU:-1}
OUT=${XBT_BENCH_OUT:-/tmp/xbt-bench}
mkdir -p "$OUT"

log() { echo "+ $*" >&2; }

build() {
  log go build -o "$BIN" ./cmd/xbt-tracker
  go build -o "$BIN" ./cmd/xbt-tracker
}

dsn_for() { echo "${BASE_DSN%/}/$1"; }

# start_serve DB [extra serve flags...]: starts serve pinned to SERVER_CPU,
# waits until its port accepts connections, sets SERVE_PID. No state file
# (every run starts cold) unless the flags name one (--state-file PATH).
start_serve() {
  local db=$1; shift
  log taskset -c "$SERVER_CPU" "$SERVE_BIN" serve --dsn "$(dsn_for "$db")" --listen-http "127.0.0.1:$PORT" --listen-udp "127.0.0.1:$PORT" --log-level warn --state-file '' "$@"
  taskset -c "$SERVER_CPU" "$SERVE_BIN" serve --dsn "$(dsn_for "$db")" --listen-http "127.0.0.1:$PORT" --listen-udp "127.0.0.1:$PORT" \
    --log-level warn --state-file '' "$@" 2>"$OUT/serve.log" &
  SERVE_PID=$!
  for _ in $(seq 1 3000); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
    kill -0 "$SERVE_PID" 2>/dev/null || { cat "$OUT/serve.log" >&2; return 1; }
    sleep 0.02
  done
  echo "serve did not start" >&2; return 1
}

# wait_flushed: waits (at most 90 s) until serve has written everything it
# recorded so far, i.e. a flush that started after this call succeeded, so
# that its database work does not overlap the next measurement.
wait_flushed() {
  local since; since=$(date +%s)
  log "wait until serve has flushed (since $since)"
  for _ in $(seq 1 900); do
    local last
    last=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '$1 == "xbt_tracker_last_flush_timestamp_seconds" {printf "%d", $2}')
    [ -n "$last" ] && [ "$last" -gt "$since" ] && return 0
    sleep 0.1
  done
  echo "serve did not flush within 90 s" >&2; return 1
}

# wait_db_idle: after a flush MariaDB keeps working for a while (purging the
# old row versions, writing pages); waits (at most 60 s) until the local
# mariadbd/mysqld used under 5% of a core for two seconds in a row. Without
# a local server process it returns at once.
wait_db_idle() {
  local pid; pid=$(pgrep -o -x mariadbd || pgrep -o -x mysqld || true)
  [ -n "$pid" ] || return 0
  log "wait until the database server is idle"
  local tck quiet=0 prev cur; tck=$(getconf CLK_TCK)
  prev=$(awk '{print $14+$15}' "/proc/$pid/stat")
  for _ in $(seq 1 120); do
    sleep 0.5
    cur=$(awk '{print $14+$15}' "/proc/$pid/stat")
    if [ $(( (cur - prev) * 100 / tck )) -lt 3 ]; then quiet=$((quiet + 1)); else quiet=0; fi
    prev=$cur
    [ "$quiet" -ge 4 ] && return 0
  done
  echo "the database server stayed busy" >&2
}

stop_serve() {
  if [ -n "${SERVE_PID:-}" ]; then
    kill -TERM "$SERVE_PID" 2>/dev/null || true
    wait "$SERVE_PID" 2>/dev/null || true
    SERVE_PID=
  fi
}

# wait_port PORT: waits (at most 30 s) until something accepts connections
# on 127.0.0.1:PORT.
wait_port() {
  for _ in $(seq 1 1500); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.02
  done
  echo "nothing listens on 127.0.0.1:$1" >&2; return 1
}

# start_nginx PORT: the reference nginx on 127.0.0.1:PORT (CPU SERVER_CPU);
# sets NGINX_PID and NWORKER, its worker process (the one doing the work,
# for bench --pid).
start_nginx() {
  local port=$1 dir; dir=$(mktemp -d /tmp/xbt-bench-nginx.XXXXXX)
  sed -e "s#DIR#$dir#g" -e "s#PORT#$port#g" scripts/bench-nginx.conf >"$dir/nginx.conf"
  log taskset -c "$SERVER_CPU" nginx -c "$dir/nginx.conf"
  taskset -c "$SERVER_CPU" nginx -c "$dir/nginx.conf" &
  NGINX_PID=$!
  wait_port "$port"
  NWORKER=$(pgrep -P "$NGINX_PID" | head -1)
}

stop_nginx() {
  if [ -n "${NGINX_PID:-}" ]; then
    kill -QUIT "$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
    NGINX_PID=
  fi
}

# bench ARGS...: the load generator pinned to LOAD_CPU.
bench() {
  log taskset -c "$LOAD_CPU" "$BIN" bench "$@"
  taskset -c "$LOAD_CPU" "$BIN" bench "$@"
}

cleanup() { stop_serve; stop_nginx; }
trap cleanup EXIT
