#!/usr/bin/env bash
# Memory per peer of the real server: RSS of `xbt-tracker serve` before and
# after the load generator starts 1,000,000 peers (each once: no stops, no
# scrapes) over 100,000 torrents of Zipf popularity, 100,000 users, once
# their statistics are written to the database (flushes as by default,
# every 15 s) and SETTLE seconds (20) later. See docs/BENCHMARKS.md
# ("Memory per peer"); the in-process figure is
#   go test -run '^$' -bench 'PeerMemory(1M)?$' -benchtime 1x ./tracker
source "$(dirname "$0")/bench-lib.sh"
DB=${XBT_BENCH_DB:-xbt_bench}
PEERS=${XBT_BENCH_PEERS:-1000000}
SETTLE=${XBT_BENCH_SETTLE:-20}
build
bench --dsn "$(dsn_for "$DB")" --setup-only --users 100000 --torrents 100000
start_serve "$DB"
sleep 2
before=$(awk '/^VmRSS/ {print $2}' "/proc/$SERVE_PID/status")
bench --dsn "$(dsn_for "$DB")" --setup=false --target "http://127.0.0.1:$PORT" --users 100000 --torrents 100000 \
  --peers "$PEERS" --requests "$PEERS" --stop-ratio 0 --scrape-ratio 0 --numwant 0 --quiet --seed 2 | tee "$OUT/memory.txt"
metric() { curl -s "http://127.0.0.1:$PORT/metrics" | awk -v k="$1" '$1 == k {print $2}'; }
# The pending statistics are not peer memory: wait until they are handed to
# the writer, then let it finish and the runtime settle.
for _ in $(seq 1 120); do
  l=$(metric xbt_tracker_ledger_entries); [ "${l%.*}" = 0 ] && break; sleep 1
done
log "sleep $SETTLE"
sleep "$SETTLE"
after=$(awk '/^VmRSS/ {print $2}' "/proc/$SERVE_PID/status")
metrics=$(curl -s "http://127.0.0.1:$PORT/metrics")
peers=$(awk '$1 ~ /^xbt_tracker_peers\{/ {n += $2} END {print n}' <<<"$metrics")
heap=$(awk '$1 == "go_memstats_heap_alloc_bytes" {printf "%.0f", $2/1048576}' <<<"$metrics")
echo "peers $peers, ledger rows pending $(metric xbt_tracker_ledger_entries), Go heap $heap MB"
echo "RSS before ${before} kB, after ${after} kB, peers ${peers}: $(awk -v a="$after" -v b="$before" -v p="$peers" 'BEGIN {printf "%.0f", (a-b)*1024/p}') bytes/peer"
