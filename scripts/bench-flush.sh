#!/usr/bin/env bash
# Announce latency while the tracker writes ~100k dirty (fid,uid) rows to
# the database, against the same load with no flush. The load is paced
# (--rate) so that latency is not just queueing at saturation; serve logs
# each flush at debug level ("flushed statistics", rows, took), and the
# per-second p99 of the seconds overlapping a flush is compared with the
# others. See docs/BENCHMARKS.md ("Latency during a flush").
source "$(dirname "$0")/bench-lib.sh"
DB=${XBT_BENCH_DB:-xbt_bench}
RATE=${XBT_BENCH_RATE:-8000}
DUR=${XBT_BENCH_DURATION:-75s}
build
bench --dsn "$(dsn_for "$DB")" --setup-only --users 100000 --torrents 100000
# 300k peers announcing at random, RATE per second: in a 15 s window about
# 1 - e^(-15*RATE/300k) of them announce, i.e. ~100k distinct (fid,uid).
LOAD=(--dsn "$(dsn_for "$DB")" --setup=false --target "http://127.0.0.1:$PORT" --users 100000 --torrents 100000
  --peers 300000 --rate "$RATE" --duration "$DUR" --concurrency 64 --quiet --seed 3)

for mode in noflush flush; do
  interval=15
  [ "$mode" = noflush ] && interval=3600
  start_serve "$DB" --write-db-interval "$interval" --log-level debug
  bench "${LOAD[@]}" --timeline "$OUT/flush-$mode.csv" | tee "$OUT/flush-$mode.txt"
  cp "$OUT/serve.log" "$OUT/flush-$mode-serve.log"
  stop_serve
done
python3 - "$OUT" <<'PY'
import csv, json, sys
from datetime import datetime
out = sys.argv[1]
def rows(mode):
    return [r for r in csv.DictReader(open(f"{out}/flush-{mode}.csv"))][20:]  # skip the start (peers being added)
def flushes(mode):
    spans = []
    for line in open(f"{out}/flush-{mode}-serve.log"):
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("msg") == "flushed statistics" and e.get("rows", 0) > 0:
            took = e["took"] if isinstance(e["took"], (int, float)) else 0
            ts = e["ts"]
            if isinstance(ts, str):  # zap's JSON encoder writes ISO 8601
                ts = datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
            spans.append((ts, took, e["rows"]))
    return spans
def p(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else 0
base = rows("noflush")
print("no flush:   per-second p99 median %d us, worst %d us over %d s" % (p([int(r["p99_us"]) for r in base], .5), max(int(r["p99_us"]) for r in base), len(base)))
fl = rows("flush")
spans = flushes("flush")
for ts, took, n in spans:
    print("flush: %d rows in %.1f s" % (n, took))
during = [r for r in fl if any(ts - took - 1 <= float(r["unix"]) <= ts + 1 for ts, took, _ in spans)]
outside = [r for r in fl if r not in during]
for name, rs in (("during a flush", during), ("between flushes", outside)):
    if rs:
        print("%s: per-second p99 median %d us, worst %d us over %d s" % (name, p([int(r["p99_us"]) for r in rs], .5), max(int(r["p99_us"]) for r in rs), len(rs)))
PY
