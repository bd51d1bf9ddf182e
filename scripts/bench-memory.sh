#!/usr/bin/env bash
# Memory per peer of the real server: RSS of `xbt-tracker serve` before and
# after the load generator starts 1,000,000 peers (each once: no stops, no
# scrapes) over 100,000 torrents of Zipf popularity, 100,000 users. See
# docs/BENCHMARKS.md ("Memory per peer"); the in-process figure is
#   go test -run '^$' -bench PeerMemory -benchtime 1x ./tracker
source "$(dirname "$0")/bench-lib.sh"
DB=${XBT_BENCH_DB:-xbt_bench}
PEERS=${XBT_BENCH_PEERS:-1000000}
build
bench --dsn "$(dsn_for "$DB")" --setup-only --users 100000 --torrents 100000
# No flush during the measurement (the pending ledger is measured with the
# peers, see the doc), GC as configured by default.
start_serve "$DB" --write-db-interval 3600
sleep 2
before=$(awk '/^VmRSS/ {print $2}' "/proc/$SERVE_PID/status")
bench --dsn "$(dsn_for "$DB")" --setup=false --target "http://127.0.0.1:$PORT" --users 100000 --torrents 100000 \
  --peers "$PEERS" --requests "$PEERS" --stop-ratio 0 --scrape-ratio 0 --numwant 0 --quiet --seed 2 | tee "$OUT/memory.txt"
sleep 5 # let the runtime settle
after=$(awk '/^VmRSS/ {print $2}' "/proc/$SERVE_PID/status")
metrics=$(curl -s "http://127.0.0.1:$PORT/metrics")
peers=$(awk '$1 ~ /^xbt_tracker_peers\{/ {n += $2} END {print n}' <<<"$metrics")
ledger=$(awk '$1 == "xbt_tracker_ledger_entries" {print $2}' <<<"$metrics")
echo "peers $peers, ledger rows pending $ledger"
echo "RSS before ${before} kB, after ${after} kB, peers ${peers}: $(awk -v a="$after" -v b="$before" -v p="$peers" 'BEGIN {printf "%.0f", (a-b)*1024/p}') bytes/peer"
