#!/usr/bin/env bash
# The server's CPU time per answered request, side by side with a reference
# server in the same run: `xbt-tracker serve` (real database, 100k users,
# 100k torrents, passkeys, accounting, flushes) against nginx returning a
# fixed bencoded body over HTTP (keep-alive, and a new connection per
# request), and against opentracker (anonymous, no passkey) over UDP.
#
# Why CPU per request and not requests/s: on a 2-core machine one core of
# load generator saturates before a good server does, so requests/s compare
# load generators. The figure here is utime + stime of the server's process
# (all threads, /proc/PID/stat) over the measured part of a run, divided by
# the answers it gave (`xbt-tracker bench` prints it as "CPU/answer").
# Server and reference run on CPU 0, the load generator on CPU 1; rounds
# alternate the two servers so a busy moment hits both, and each mode ends
# with the means and the ratio. See docs/BENCHMARKS.md ("CPU per request").
#   XBT_BENCH_ROUNDS (3), XBT_BENCH_DURATION (10s), XBT_BENCH_CONCURRENCY (32),
#   XBT_BENCH_MODES ("keepalive close udp"), XBT_BENCH_SERVE_ARGS (more serve flags)
source "$(dirname "$0")/bench-lib.sh"
DB=${XBT_BENCH_DB:-xbt_bench}
DUR=${XBT_BENCH_DURATION:-10s}
CONC=${XBT_BENCH_CONCURRENCY:-32}
ROUNDS=${XBT_BENCH_ROUNDS:-3}
MODES=${XBT_BENCH_MODES:-keepalive close udp}
command -v nginx >/dev/null || { echo "nginx missing: apt-get install -y nginx-light" >&2; exit 1; }
case " $MODES " in *" udp "*)
  command -v opentracker >/dev/null || { echo "opentracker missing: apt-get install -y opentracker" >&2; exit 1; } ;;
esac
build
bench --dsn "$(dsn_for "$DB")" --setup-only --users 100000 --torrents 100000
COMMON=(--users 100000 --torrents 100000 --peers 100000 --concurrency "$CONC" --warmup 10s --duration "$DUR" --quiet)

# shellcheck disable=SC2086 # word splitting wanted
start_serve "$DB" ${XBT_BENCH_SERVE_ARGS:-}
NPORT=$((PORT + 1))
start_nginx "$NPORT"
OPORT=$((PORT + 2))
OT_PID=
case " $MODES " in *" udp "*)
  # Debian's opentracker is built with a whitelist: without one it answers
  # every announce with an empty 8-byte packet. Its whitelist is the bench
  # world's torrents (one hex info_hash per line), read from the database
  # the setup filled.
  mariadb -h 127.0.0.1 -u root -N -e "SELECT LOWER(HEX(info_hash)) FROM xbt_files" "$DB" >"$OUT/opentracker-whitelist.txt"
  log taskset -c "$SERVER_CPU" opentracker -i 127.0.0.1 -P "$OPORT" -p "$OPORT" -w "$OUT/opentracker-whitelist.txt"
  taskset -c "$SERVER_CPU" opentracker -i 127.0.0.1 -P "$OPORT" -p "$OPORT" -w "$OUT/opentracker-whitelist.txt" >"$OUT/opentracker.log" 2>&1 &
  OT_PID=$!
  sleep 0.5
  kill -0 "$OT_PID" || { cat "$OUT/opentracker.log" >&2; exit 1; } ;;
esac
trap 'stop_serve; stop_nginx; [ -n "$OT_PID" ] && kill "$OT_PID" 2>/dev/null; true' EXIT

# cpu_per_answer FILE: the report's target CPU per answer (µs); rps FILE:
# its requests/s.
cpu_per_answer() { awk '/^CPU\/answer/ {print $3}' "$1"; }
rps() { awk '/^requests/ {print $(NF-1)}' "$1"; }

for mode in $MODES; do
  case $mode in
    keepalive) sargs=(--target "http://127.0.0.1:$PORT" --keepalive=true); rargs=(--target "http://127.0.0.1:$NPORT" --keepalive=true --pid "$NWORKER"); ref=nginx ;;
    close) sargs=(--target "http://127.0.0.1:$PORT" --keepalive=false); rargs=(--target "http://127.0.0.1:$NPORT" --keepalive=false --pid "$NWORKER"); ref=nginx ;;
    udp) sargs=(--udp --target "udp://127.0.0.1:$PORT"); rargs=(--udp --no-passkey --target "udp://127.0.0.1:$OPORT" --pid "$OT_PID"); ref=opentracker ;;
    *) echo "unknown mode $mode" >&2; exit 1 ;;
  esac
  : >"$OUT/cpu-$mode.txt"
  for r in $(seq 1 "$ROUNDS"); do
    bench --dsn "$(dsn_for "$DB")" --setup=false "${sargs[@]}" --seed "$r" "${COMMON[@]}" >"$OUT/cpu-serve-$mode-$r.txt"
    # serve writes the run's statistics next, and MariaDB works on after
    # that: the reference's run must not share the machine with either.
    wait_flushed
    wait_db_idle
    bench "${rargs[@]}" --seed "$r" "${COMMON[@]}" >"$OUT/cpu-$ref-$mode-$r.txt"
    s=$(cpu_per_answer "$OUT/cpu-serve-$mode-$r.txt"); n=$(cpu_per_answer "$OUT/cpu-$ref-$mode-$r.txt")
    se=$(awk '/^errors/ {print $2}' "$OUT/cpu-serve-$mode-$r.txt"); ne=$(awk '/^errors/ {print $2}' "$OUT/cpu-$ref-$mode-$r.txt")
    echo "$s $n" >>"$OUT/cpu-$mode.txt"
    echo "$mode round $r: serve $s µs/answer ($(rps "$OUT/cpu-serve-$mode-$r.txt") req/s, errors $se; $(awk '/^bottleneck/ {$1=""; print}' "$OUT/cpu-serve-$mode-$r.txt" | cut -c2-40)), $ref $n µs/answer ($(rps "$OUT/cpu-$ref-$mode-$r.txt") req/s, errors $ne): $(awk -v s="$s" -v n="$n" 'BEGIN {printf "%.2f×", s/n}')"
  done
  awk -v m="$mode" -v ref="$ref" '{s += $1; n += $2; k++} END {printf "%s, %d rounds: serve %.1f µs/answer, %s %.1f µs/answer on average: %.2f×\n", m, k, s/k, ref, n/k, s/n}' "$OUT/cpu-$mode.txt"
done
