#!/usr/bin/env bash
# Warm restart at 1,000,000 peers: `xbt-tracker serve` with a state file, the
# load generator starting 1,000,000 peers (each once: no stops, no scrapes)
# over 100,000 torrents of Zipf popularity and 100,000 users (the population
# of bench-memory.sh), then RUNS (3) times: SIGTERM (final flush, then the
# state file written: its size and time from serve's log line, and the whole
# stop from the signal to the exit) and a start (the state file loaded: its
# time from serve's log line, and the whole start to the listening port).
# Loopback only; the load takes about a minute. See docs/BENCHMARKS.md
# ("Warm restart"). The in-process figures are
#   go test -run '^$' -bench 1M -benchtime 5x ./internal/statefile
source "$(dirname "$0")/bench-lib.sh"
DB=${XBT_BENCH_DB:-xbt_bench}
PEERS=${XBT_BENCH_PEERS:-1000000}
RUNS=${XBT_BENCH_RUNS:-3}
STATE="$OUT/bench.state"
build
bench --dsn "$(dsn_for "$DB")" --setup-only --users 100000 --torrents 100000
rm -f "$STATE"
metric() { curl -s "http://127.0.0.1:$PORT/metrics" | awk -v k="$1" '$1 == k {print $2}'; }
peers() { curl -s "http://127.0.0.1:$PORT/metrics" | awk '$1 ~ /^xbt_tracker_peers\{/ {n += $2} END {print n}'; }

start_serve "$DB" --log-level info --state-file "$STATE"
grep -o '"msg":"cold start[^}]*' "$OUT/serve.log" || true
bench --dsn "$(dsn_for "$DB")" --setup=false --target "http://127.0.0.1:$PORT" --users 100000 --torrents 100000 \
  --peers "$PEERS" --requests "$PEERS" --stop-ratio 0 --scrape-ratio 0 --numwant 0 --quiet --seed 2 >"$OUT/state-load.txt"
# Let the statistics of the load reach the database first (nothing pending:
# ledger, in flight, in doubt): the stop's final flush is then small, as
# after any quiet write_db_interval, and the stop measures the state file.
for _ in $(seq 1 300); do
  l=$(metric xbt_tracker_pending_rows); [ "${l%.*}" = 0 ] && break; sleep 1
done
echo "peers in memory: $(peers)"
for i in $(seq 1 "$RUNS"); do
  log "SIGTERM"
  t0=$(date +%s%N)
  kill -TERM "$SERVE_PID"; wait "$SERVE_PID" || true; SERVE_PID=
  t1=$(date +%s%N)
  echo "run $i: stop took $(( (t1 - t0) / 1000000 )) ms; state file $(stat -c %s "$STATE") bytes;" \
    "$(grep -o '"msg":"final write to the database done"[^}]*' "$OUT/serve.log")" \
    "$(grep -o '"msg":"saved the swarms[^}]*' "$OUT/serve.log")"
  t0=$(date +%s%N)
  start_serve "$DB" --log-level info --state-file "$STATE"
  t1=$(date +%s%N)
  echo "run $i: listening after $(( (t1 - t0) / 1000000 )) ms; peers $(peers); RSS $(awk '/^VmRSS/ {print $2}' "/proc/$SERVE_PID/status") kB;" \
    "$(grep -o '"msg":"loaded users and torrents"[^}]*' "$OUT/serve.log")" \
    "$(grep -o '"msg":"\(warm\|cold\) start[^}]*' "$OUT/serve.log")"
done
stop_serve
rm -f "$STATE"
