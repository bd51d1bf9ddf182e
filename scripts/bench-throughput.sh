#!/usr/bin/env bash
# Announce throughput of `xbt-tracker serve` (real database, 100k users,
# 100k torrents, passkeys, accounting, flushes) against nginx serving a
# fixed 100-byte body, under the same load generator, with and without
# keep-alive. See docs/BENCHMARKS.md ("HTTP throughput").
#   XBT_BENCH_DURATION (default 20s), XBT_BENCH_CONCURRENCY (default 64)
source "$(dirname "$0")/bench-lib.sh"
DB=${XBT_BENCH_DB:-xbt_bench}
DUR=${XBT_BENCH_DURATION:-20s}
CONC=${XBT_BENCH_CONCURRENCY:-64}
command -v nginx >/dev/null || { echo "nginx missing: apt-get install -y nginx-light" >&2; exit 1; }
build
bench --dsn "$(dsn_for "$DB")" --setup-only --users 100000 --torrents 100000
COMMON=(--users 100000 --torrents 100000 --peers 200000 --concurrency "$CONC" --duration "$DUR" --quiet --seed 1)

start_serve "$DB"
for ka in true false; do
  bench --dsn "$(dsn_for "$DB")" --setup=false --target "http://127.0.0.1:$PORT" --keepalive=$ka "${COMMON[@]}" | tee "$OUT/serve-keepalive-$ka.txt"
done
stop_serve

start_nginx
for ka in true false; do
  # Same world (BenchHash torrents, uids 1..N) without a database.
  bench --target "http://127.0.0.1:$PORT" --keepalive=$ka "${COMMON[@]}" | tee "$OUT/nginx-keepalive-$ka.txt"
done
stop_nginx

for ka in true false; do
  s=$(awk '/^requests/ {print $(NF-1)}' "$OUT/serve-keepalive-$ka.txt")
  n=$(awk '/^requests/ {print $(NF-1)}' "$OUT/nginx-keepalive-$ka.txt")
  echo "keep-alive=$ka: serve $s req/s, nginx $n req/s, ratio $(awk -v s="$s" -v n="$n" 'BEGIN {printf "%.0f%%", 100*s/n}')"
done
