#!/usr/bin/env bash
# `make demo`: a local database (scripts/dev-db.sh), the migrations, a demo
# user and torrent written with the same SQL a catalog uses, then the tracker
# in the foreground with a working announce URL printed. Ctrl-C stops it.
# With mktorrent installed the demo torrent is a real one (a 4 MiB random file
# under $XBT_DEMO_DIR): the demo user's copy is stamped with its passkey URL by
# `xbt-tracker torrent stamp`, and the script prints the aria2c and
# transmission-cli command lines that seed and download it over 127.0.0.1.
# Without mktorrent the torrent is only an info_hash (enough for curl).
#   XBT_DEMO_PORT   tracker port (default 2710); the clients' peer ports are
#                   the next three
#   XBT_DEMO_DB     database name (default xbt_demo)
#   XBT_DEMO_DIR    demo files (default .dev/demo)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/bin/xbt-tracker"
port="${XBT_DEMO_PORT:-2710}"
dbname="${XBT_DEMO_DB:-xbt_demo}"

busy() {
  echo "make demo: port $port on 127.0.0.1 is in use by another program; choose a free one with XBT_DEMO_PORT (e.g. XBT_DEMO_PORT=2711 make demo)" >&2
  exit 1
}
# Something already answers on the port (XBT's 2710 may be a real tracker):
# refuse before touching anything.
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  busy
fi
# Build (a no-op when bin/xbt-tracker is up to date), so a stale binary
# never runs the demo.
if command -v go >/dev/null || [ ! -x "$bin" ]; then
  (cd "$root" && go build -o bin/xbt-tracker ./cmd/xbt-tracker)
fi

source "$root/scripts/demo-lib.sh"
demo_catalog "${XBT_DEMO_DIR:-$root/.dev/demo}" "xbt-tracker demo torrent"

log="$root/.dev/demo-tracker.log"
"$bin" serve --listen-http "127.0.0.1:$port" --listen-udp off >"$log" 2>&1 &
pid=$!
stop_tracker() {
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
}
trap stop_tracker EXIT
# Ctrl-C (or SIGTERM) is the normal way out: stop the tracker (it writes its
# statistics) and end with status 0.
trap 'echo; echo "== stopping the tracker"; stop_tracker; trap - EXIT; exit 0' INT TERM

# Ready means this tracker said "listening" on the port in its own log, and
# /statistics on the port is an xbt-tracker page: a connection alone could
# be someone else's listener.
statistics() {
  exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
  printf 'GET /statistics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
  timeout 2 cat <&3
}
ready=
for _ in $(seq 1 100); do
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid" 2>/dev/null || true
    if grep -q 'address already in use' "$log"; then
      busy
    fi
    echo "make demo: the tracker exited; its log ($log):" >&2
    cat "$log" >&2
    exit 1
  fi
  if grep -q "listening.*127.0.0.1:$port" "$log" && statistics 2>/dev/null | grep -q '<title>xbt-tracker statistics</title>'; then
    ready=1
    break
  fi
  sleep 0.1
done
if [ -z "$ready" ]; then
  echo "make demo: the tracker (pid $pid) did not answer /statistics on 127.0.0.1:$port within 10 s; its log: $log" >&2
  exit 1
fi

url=$("$bin" passkey url --uid "$uid" --info-hash "$info_hash" --base "http://127.0.0.1:$port")
escaped=$(printf '%s' "$info_hash" | sed 's/../%&/g')
cat <<MSG

== xbt-tracker is running (pid $pid, log $log)
announce URL (uid $uid, demo torrent):
  $url

try it:
  curl -s '$url?info_hash=$escaped&peer_id=-DEMO00-000000000001&port=6881&uploaded=0&downloaded=0&left=0&compact=1&event=started'
MSG

if [ -s "$upload" ] && command -v mktorrent >/dev/null; then
  # The catalog's download step: the user's copy with its passkey URL.
  "$bin" torrent stamp --uid "$uid" --base "http://127.0.0.1:$port" -o "$demo/demo.torrent" "$upload" >/dev/null
  # transmission-cli reads its settings from a directory: keep it on
  # loopback with DHT, LPD, PEX, uTP and port mapping off.
  mkdir -p "$demo/transmission"
  cat >"$demo/transmission/settings.json" <<JSON
{
  "dht-enabled": false, "lpd-enabled": false, "pex-enabled": false, "utp-enabled": false,
  "port-forwarding-enabled": false, "bind-address-ipv4": "127.0.0.1", "bind-address-ipv6": "::1",
  "rpc-enabled": false, "ratio-limit-enabled": false
}
JSON
  rm -rf "$demo/download-aria2" "$demo/download-transmission"
  a2="aria2c --no-conf=true --enable-dht=false --enable-dht6=false --bt-enable-lpd=false --enable-peer-exchange=false --interface=127.0.0.1 --disable-ipv6=true --file-allocation=none"
  cat <<MSG

demo torrent: $demo/demo.torrent (uid $uid's copy, announce URL above; 4 MiB: $demo/seed/xbt-demo.bin)
seed it (another terminal; aria2c re-announces every 5 s because Transmission never dials 127.x peers itself):
  $a2 --listen-port=$((port + 1)) --dir='$demo/seed' --check-integrity=true --seed-ratio=0.0 --bt-tracker-interval=5 '$demo/demo.torrent'
download it (a third terminal) with transmission-cli (Ctrl-C once it says Seeding):
  transmission-cli -g '$demo/transmission' -p $((port + 2)) -w '$demo/download-transmission' '$demo/demo.torrent'
or with aria2c (exits when done):
  $a2 --listen-port=$((port + 3)) --dir='$demo/download-aria2' --seed-time=0 '$demo/demo.torrent'
then (traffic is written every write_db_interval, 15 s):
  XBT_DSN='$dsn' $bin user show --uid $uid
MSG
else
  echo
  echo "(install mktorrent for a real demo torrent and the client command lines to seed and download it)"
fi
cat <<MSG

statistics: http://127.0.0.1:$port/statistics    metrics: http://127.0.0.1:$port/metrics
Ctrl-C stops the tracker.
MSG
rc=0
wait "$pid" || rc=$?
trap - EXIT
echo "make demo: the tracker exited with status $rc; its log: $log" >&2
exit 1
