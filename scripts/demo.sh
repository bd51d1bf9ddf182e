#!/usr/bin/env bash
# `make demo`: a local database (scripts/dev-db.sh), the migrations, a demo
# user and torrent written with the same SQL a catalog uses, then the tracker
# in the foreground with a working announce URL printed. Ctrl-C stops it.
#   XBT_DEMO_PORT   tracker port (default 2710)
#   XBT_DEMO_DB     database name (default xbt_demo)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/bin/xbt-tracker"
port="${XBT_DEMO_PORT:-2710}"
dbname="${XBT_DEMO_DB:-xbt_demo}"
[ -x "$bin" ] || (cd "$root" && go build -o bin/xbt-tracker ./cmd/xbt-tracker)

base=$("$root/scripts/dev-db.sh")
# base is user:pass@tcp(host:port)/[?params]: put the demo database name in.
case "$base" in
  *\?*) dsn="${base%%\?*}"; params="?${base#*\?}" ;;
  *) dsn="$base"; params="" ;;
esac
dsn="${dsn%%/*}/${dbname}${params}"
export XBT_DSN="$dsn"

echo "== database ${dsn#*@} (migrate up)"
"$bin" migrate up --create-database >/dev/null

# The demo torrent's info_hash: SHA-1 of a fixed string, so reruns reuse it.
info_hash=$(printf 'xbt-tracker demo torrent' | sha1sum | cut -c1-40)
uid_file="$root/.dev/demo-uid-$dbname"
mkdir -p "$root/.dev"
# Reuse the demo user of an earlier run while it still exists.
if [ -s "$uid_file" ] && "$bin" user show --uid "$(cat "$uid_file")" >/dev/null 2>&1; then
  uid=$(cat "$uid_file")
else
  uid=$("$bin" user add)
  echo "$uid" >"$uid_file"
fi
fid=$("$bin" file add --info-hash "$info_hash")
echo "== demo user uid=$uid, demo torrent fid=$fid info_hash=$info_hash"

log="$root/.dev/demo-tracker.log"
"$bin" serve --listen-http "127.0.0.1:$port" --listen-udp off >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT INT TERM
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  kill -0 $pid 2>/dev/null || { echo "tracker exited; its log:"; cat "$log"; exit 1; }
  sleep 0.1
done

url=$("$bin" passkey url --uid "$uid" --info-hash "$info_hash" --base "http://127.0.0.1:$port")
escaped=$(printf '%s' "$info_hash" | sed 's/../%&/g')
cat <<MSG

== xbt-tracker is running (pid $pid, log $log)
announce URL (uid $uid, demo torrent):
  $url

try it:
  curl -s '$url?info_hash=$escaped&peer_id=-DEMO00-000000000001&port=6881&uploaded=0&downloaded=0&left=0&compact=1&event=started'

statistics: http://127.0.0.1:$port/statistics    metrics: http://127.0.0.1:$port/metrics
Ctrl-C stops the tracker.
MSG
wait $pid
