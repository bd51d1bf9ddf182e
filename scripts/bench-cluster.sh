#!/usr/bin/env bash
# 1, 2 and 3 `serve --cluster 1` instances behind HAProxy
# (deploy/haproxy/haproxy.cfg, as shipped) on one database: requests/s, and
# the CPU time per answered request of HAProxy and of the instances summed
# (utime + stime from /proc/PID/stat over the measured part of the run,
# divided by the load tool's OK answers), next to one instance alone. All
# servers share CPU 0 and the load generator has CPU 1 (a 2-core machine
# cannot show more throughput from more instances; the CPU per request is
# what a larger machine or several machines multiply). See
# docs/BENCHMARKS.md ("Several instances behind HAProxy").
#   XBT_BENCH_DURATION (10s), XBT_BENCH_CONCURRENCY (32),
#   XBT_BENCH_SIZES ("1 2 3"), XBT_BENCH_MODES ("keepalive close")
source "$(dirname "$0")/bench-lib.sh"
DB=${XBT_BENCH_DB:-xbt_bench}
DUR=${XBT_BENCH_DURATION:-10s}
WARMUP=10
CONC=${XBT_BENCH_CONCURRENCY:-32}
SIZES=${XBT_BENCH_SIZES:-1 2 3}
MODES=${XBT_BENCH_MODES:-keepalive close}
HPORT=$((PORT + 30))
command -v haproxy >/dev/null || { echo "haproxy missing: apt-get install -y haproxy" >&2; exit 1; }
build
bench --dsn "$(dsn_for "$DB")" --setup-only --users 100000 --torrents 100000
COMMON=(--dsn "$(dsn_for "$DB")" --setup=false --users 100000 --torrents 100000 --peers 100000
  --concurrency "$CONC" --warmup "${WARMUP}s" --duration "$DUR" --quiet)

PIDS=()
HAPROXY_PID=
stop_all() {
  if [ -n "$HAPROXY_PID" ]; then
    kill "$HAPROXY_PID" 2>/dev/null || true
    wait "$HAPROXY_PID" 2>/dev/null || true
  fi
  HAPROXY_PID=
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}
trap stop_all EXIT

# start_instances N: N cluster instances on PORT+31.. (CPU 0).
start_instances() {
  local i port
  for i in $(seq 1 "$1"); do
    port=$((HPORT + i))
    log taskset -c "$SERVER_CPU" "$BIN" serve --dsn "$(dsn_for "$DB")" --cluster 1 --listen-udp off \
      --listen-http "127.0.0.1:$port" --trusted-proxies 127.0.0.1 --log-level warn --state-file ''
    taskset -c "$SERVER_CPU" "$BIN" serve --dsn "$(dsn_for "$DB")" --cluster 1 --listen-udp off \
      --listen-http "127.0.0.1:$port" --trusted-proxies 127.0.0.1 --log-level warn --state-file '' 2>"$OUT/cluster-$i.log" &
    PIDS+=($!)
    wait_port "$port"
  done
}

start_haproxy() {
  local n=$1 i
  local env=(XBT_HAPROXY_BIND="127.0.0.1:$HPORT" XBT_HAPROXY_SOCKET="$OUT/haproxy.sock")
  for i in $(seq 1 "$n"); do env+=("XBT_TRACKER_$i=127.0.0.1:$((HPORT + i))"); done
  log env "${env[@]}" taskset -c "$SERVER_CPU" haproxy -f deploy/haproxy/haproxy.cfg -db
  env "${env[@]}" taskset -c "$SERVER_CPU" haproxy -f deploy/haproxy/haproxy.cfg -db >"$OUT/haproxy.log" 2>&1 &
  HAPROXY_PID=$!
  wait_port "$HPORT"
  sleep 3 # the first health checks mark the servers up
}

# cpu_ticks PID...: summed utime + stime of the processes, in clock ticks.
cpu_ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat"))); done; echo "$t"; }

# measure LABEL TARGET_PORT KEEPALIVE HAPROXY?: one bench run; prints
# requests/s and µs of CPU per OK answer for the instances and HAProxy.
measure() {
  local label=$1 port=$2 ka=$3 tck out i0 h0 i1 h1
  tck=$(getconf CLK_TCK)
  out="$OUT/cluster-$label.txt"
  bench "${COMMON[@]}" --target "http://127.0.0.1:$port" --keepalive="$ka" --pid "${PIDS[0]}" >"$out" &
  local bpid=$!
  sleep "$WARMUP"
  i0=$(cpu_ticks "${PIDS[@]}"); h0=0; [ -n "$HAPROXY_PID" ] && h0=$(cpu_ticks "$HAPROXY_PID")
  wait "$bpid"
  i1=$(cpu_ticks "${PIDS[@]}"); h1=0; [ -n "$HAPROXY_PID" ] && h1=$(cpu_ticks "$HAPROXY_PID")
  awk -v l="$label" -v i="$((i1 - i0))" -v h="$((h1 - h0))" -v tck="$tck" '
    /^ok/ {ok = $2} /^errors/ {err = $2} /^requests/ {rps = $(NF-1)}
    END {
      us = 1e6 / tck
      printf "%-22s %8s req/s  errors %s  instances %.1f µs/answer  haproxy %.1f µs/answer  total %.1f\n",
        l, rps, err, i * us / ok, h * us / ok, (i + h) * us / ok
    }' "$out" | tee -a "$OUT/cluster-summary.txt"
}

: >"$OUT/cluster-summary.txt"
for mode in $MODES; do
  ka=true; [ "$mode" = close ] && ka=false
  # One instance alone (no HAProxy), the reference.
  start_instances 1
  measure "$mode-direct-1" "$((HPORT + 1))" "$ka"
  stop_all
  wait_db_idle
  for n in $SIZES; do
    start_instances "$n"
    start_haproxy "$n"
    measure "$mode-haproxy-$n" "$HPORT" "$ka"
    stop_all
    wait_db_idle
  done
done
cat "$OUT/cluster-summary.txt"
