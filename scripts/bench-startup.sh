#!/usr/bin/env bash
# Start-up time of `xbt-tracker serve` with 1,000,000 users and 1,000,000
# torrents: from the process's start to its "listening" log line, three
# times (the port is polled every 20 ms, and serve logs the time its load
# took at info level). The database (xbt_bench_1m) is made on the first run
# (a minute or two). See docs/BENCHMARKS.md ("Start-up").
source "$(dirname "$0")/bench-lib.sh"
DB=${XBT_BENCH_DB:-xbt_bench_1m}
build
bench --dsn "$(dsn_for "$DB")" --setup-only --users 1000000 --torrents 1000000
for i in 1 2 3; do
  t0=$(date +%s%N)
  start_serve "$DB" --log-level info
  t1=$(date +%s%N)
  echo "run $i: listening after $(( (t1 - t0) / 1000000 )) ms; RSS $(awk '/^VmRSS/ {print $2}' "/proc/$SERVE_PID/status") kB; $(grep -o '"msg":"loaded users and torrents".*' "$OUT/serve.log")"
  stop_serve
done
