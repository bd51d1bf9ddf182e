#!/usr/bin/env bash
# Announce throughput of `xbt-tracker serve` (real database, 100k users,
# 100k torrents, passkeys, accounting, flushes) against nginx serving a
# fixed 100-byte body, under the same load generator, with and without
# keep-alive. Both servers run at once on one core (CPU 0, idle when not
# measured), the load generator on the other; runs alternate between them,
# ROUNDS times, so that a busy moment of a shared machine hits both alike.
# See docs/BENCHMARKS.md ("HTTP throughput").
#   XBT_BENCH_ROUNDS (3), XBT_BENCH_DURATION (12s), XBT_BENCH_CONCURRENCY (64),
#   XBT_BENCH_KEEPALIVE ("true false": which modes to run),
#   XBT_BENCH_SERVE_ARGS (more serve flags, e.g. --http-event-loops=false)
source "$(dirname "$0")/bench-lib.sh"
DB=${XBT_BENCH_DB:-xbt_bench}
DUR=${XBT_BENCH_DURATION:-12s}
CONC=${XBT_BENCH_CONCURRENCY:-64}
ROUNDS=${XBT_BENCH_ROUNDS:-3}
command -v nginx >/dev/null || { echo "nginx missing: apt-get install -y nginx-light" >&2; exit 1; }
build
bench --dsn "$(dsn_for "$DB")" --setup-only --users 100000 --torrents 100000
# 100k simulated peers, each started during the warm-up (not counted); the
# measured part is the steady mix of periodic, completed, stopped and
# (re)started announces plus 10% scrapes.
COMMON=(--users 100000 --torrents 100000 --peers 100000 --concurrency "$CONC" --warmup 15s --duration "$DUR" --quiet)

# shellcheck disable=SC2086 # word splitting wanted
start_serve "$DB" ${XBT_BENCH_SERVE_ARGS:-}
NPORT=$((PORT + 1))
start_nginx "$NPORT"
for ka in ${XBT_BENCH_KEEPALIVE:-true false}; do
  : >"$OUT/ratio-ka-$ka.txt"
  for r in $(seq 1 "$ROUNDS"); do
    bench --dsn "$(dsn_for "$DB")" --setup=false --target "http://127.0.0.1:$PORT" --keepalive=$ka --seed "$r" "${COMMON[@]}" \
      >"$OUT/serve-ka-$ka-$r.txt"
    # serve writes the run's statistics during the next 15-25 s, and the
    # database works on after that; nginx's run must not share the machine
    # with either.
    wait_flushed
    wait_db_idle
    # Same world (BenchHash torrents, uids 1..N) without a database; --pid is
    # nginx's worker, which does the work.
    bench --target "http://127.0.0.1:$NPORT" --keepalive=$ka --pid "$NWORKER" --seed "$r" "${COMMON[@]}" \
      >"$OUT/nginx-ka-$ka-$r.txt"
    s=$(awk '/^requests/ {print $(NF-1)}' "$OUT/serve-ka-$ka-$r.txt")
    n=$(awk '/^requests/ {print $(NF-1)}' "$OUT/nginx-ka-$ka-$r.txt")
    se=$(awk '/^errors/ {print $2}' "$OUT/serve-ka-$ka-$r.txt")
    # "CPU         target N% of C core(s), load generator M% of C core(s) ..."
    sc=$(awk '/^CPU / {print $3, $9}' "$OUT/serve-ka-$ka-$r.txt")
    nc=$(awk '/^CPU / {print $3, $9}' "$OUT/nginx-ka-$ka-$r.txt")
    sp=$(awk '/^latency/ {print $3, $7}' "$OUT/serve-ka-$ka-$r.txt")
    np=$(awk '/^latency/ {print $3, $7}' "$OUT/nginx-ka-$ka-$r.txt")
    echo "$s $n" >>"$OUT/ratio-ka-$ka.txt"
    echo "keep-alive=$ka round $r: serve $s req/s (errors $se; p50/p99 $sp; CPU server/loadgen $sc), nginx $n req/s (p50/p99 $np; CPU $nc): $(awk -v s="$s" -v n="$n" 'BEGIN {printf "%.0f%%", 100*s/n}')"
  done
  # The run's headline: mean of the rounds on each side, then the ratio.
  awk -v ka="$ka" '{s += $1; n += $2; k++} END {printf "keep-alive=%s, %d rounds: serve %.0f req/s, nginx %.0f req/s on average: %.0f%%\n", ka, k, s/k, n/k, 100*s/n}' "$OUT/ratio-ka-$ka.txt"
done
