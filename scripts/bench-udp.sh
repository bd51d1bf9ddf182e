#!/usr/bin/env bash
# UDP announce throughput (BEP 15 connect + announce with the passkey in BEP 41
# URL data) of `xbt-tracker serve` against the same 100k-user, 100k-torrent
# database as bench-throughput.sh, serve on CPU 0 and the load tool on CPU 1.
# No scrapes: a BEP 15 scrape cannot carry a passkey, so with anonymous_scrape=0
# (the default) every UDP scrape is refused. See docs/BENCHMARKS.md ("UDP throughput").
#   XBT_BENCH_DURATION (12s), XBT_BENCH_CONCURRENCY (64)
source "$(dirname "$0")/bench-lib.sh"
DB=${XBT_BENCH_DB:-xbt_bench}
DUR=${XBT_BENCH_DURATION:-12s}
CONC=${XBT_BENCH_CONCURRENCY:-64}
build
bench --dsn "$(dsn_for "$DB")" --setup-only --users 100000 --torrents 100000
start_serve "$DB"
bench --dsn "$(dsn_for "$DB")" --setup=false --udp --target "udp://127.0.0.1:$PORT" --users 100000 --torrents 100000 \
  --peers 100000 --scrape-ratio 0 --concurrency "$CONC" --warmup 10s --duration "$DUR" --quiet | tee "$OUT/udp.txt"
