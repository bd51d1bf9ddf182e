#!/usr/bin/env bash
# `make demo-cluster`: `make demo` for issue 17's setup. One local database
# (scripts/dev-db.sh), the migrations, a demo user and torrent, then 2
# `xbt-tracker serve --cluster 1` instances on consecutive ports and HAProxy
# in front of them with the shipped deploy/haproxy/haproxy.cfg, which routes
# every announce and scrape of a torrent to one instance by its decoded
# info_hash. Prints the announce URL through HAProxy and a curl line to try;
# Ctrl-C stops everything. With mktorrent installed the demo torrent is a
# real one and the aria2c command lines to seed and download it are printed.
#   XBT_CLUSTER_SIZE        instances, 1 to 3 (default 2; haproxy.cfg has 3 slots)
#   XBT_CLUSTER_PORT        HAProxy's port, the one clients announce to
#                           (default 2720: not make demo's 2710)
#   XBT_CLUSTER_FIRST_PORT  first instance's port, the others follow
#                           (default XBT_CLUSTER_PORT + 1)
#   XBT_DEMO_DB             database name (default xbt_demo_cluster)
#   XBT_DEMO_DIR            demo files (default .dev/demo-cluster)
#   XBT_BIN                 the xbt-tracker binary (default bin/xbt-tracker,
#                           rebuilt first when go is installed)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
size="${XBT_CLUSTER_SIZE:-2}"
hport="${XBT_CLUSTER_PORT:-2720}"
first="${XBT_CLUSTER_FIRST_PORT:-$((hport + 1))}"
dbname="${XBT_DEMO_DB:-xbt_demo_cluster}"
cfg="$root/deploy/haproxy/haproxy.cfg"

die() {
  echo "make demo-cluster: $*" >&2
  exit 1
}
case "$size" in
  1 | 2 | 3) ;;
  *) die "XBT_CLUSTER_SIZE=$size: 1, 2 or 3 (deploy/haproxy/haproxy.cfg has three server slots)" ;;
esac
haproxy=$(command -v haproxy || { [ -x /usr/sbin/haproxy ] && echo /usr/sbin/haproxy; } || true)
if [ -z "$haproxy" ]; then
  die "haproxy is not installed; Debian/Ubuntu: sudo apt-get install --no-install-recommends haproxy (then sudo systemctl disable --now haproxy: this demo runs its own)"
fi

ports=("$hport")
for i in $(seq 1 "$size"); do
  ports+=("$((first + i - 1))")
done
# Something already answers on a port: refuse before touching anything.
for p in "${ports[@]}"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    die "port $p on 127.0.0.1 is in use by another program; choose free ones with XBT_CLUSTER_PORT (HAProxy) and XBT_CLUSTER_FIRST_PORT (instances), e.g. XBT_CLUSTER_PORT=2730 make demo-cluster"
  fi
done

if [ -n "${XBT_BIN:-}" ]; then
  bin="$XBT_BIN"
else
  bin="$root/bin/xbt-tracker"
  # A no-op when bin/xbt-tracker is up to date: a stale binary never runs.
  if command -v go >/dev/null || [ ! -x "$bin" ]; then
    (cd "$root" && go build -o bin/xbt-tracker ./cmd/xbt-tracker)
  fi
fi

source "$root/scripts/demo-lib.sh"
demo_catalog "${XBT_DEMO_DIR:-$root/.dev/demo-cluster}" "xbt-tracker cluster demo torrent"

pids=()
stop_all() {
  # HAProxy first, so no request reaches an instance that is stopping.
  local p
  for p in "${pids[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  pids=()
}
trap stop_all EXIT
# Ctrl-C (or SIGTERM) is the normal way out: stop everything (the instances
# write their statistics) and end with status 0.
trap 'echo; echo "== stopping HAProxy and the instances"; stop_all; trap - EXIT; exit 0' INT TERM

# get PORT PATH: the raw HTTP answer (head and body) of GET PATH on 127.0.0.1:PORT.
get() {
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
  timeout 2 cat <&3
}
# wait_ready PID LOG PORT WHAT CHECK: until GET /statistics on PORT passes
# CHECK (a grep pattern), or the process exits, or 10 s pass.
wait_ready() {
  local pid=$1 log=$2 port=$3 what=$4 check=$5
  for _ in $(seq 1 100); do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null || true
      echo "make demo-cluster: $what exited; its log ($log):" >&2
      cat "$log" >&2
      exit 1
    fi
    if get "$port" /statistics 2>/dev/null | grep -qi "$check"; then
      return 0
    fi
    sleep 0.1
  done
  die "$what (pid $pid) did not answer /statistics on 127.0.0.1:$port within 10 s; its log: $log"
}

# Files named by port: two demos on other ports do not share them.
sock="$root/.dev/demo-cluster-haproxy-$hport.sock"
hap_env=(XBT_HAPROXY_BIND="127.0.0.1:$hport" XBT_HAPROXY_SOCKET="$sock")
# One at a time: the first start on a new database generates the passkey
# secret, which the others then read.
for i in $(seq 1 "$size"); do
  port=${ports[$i]}
  log="$root/.dev/demo-cluster-$port.log"
  "$bin" serve --cluster 1 --listen-udp off --listen-http "127.0.0.1:$port" \
    --trusted-proxies 127.0.0.1 --state-file "$root/.dev/demo-cluster-$port.state" >"$log" 2>&1 &
  pids+=($!)
  wait_ready "$!" "$log" "$port" "instance t$i" '<title>xbt-tracker statistics</title>'
  hap_env+=("XBT_TRACKER_$i=127.0.0.1:$port")
done

hlog="$root/.dev/demo-cluster-haproxy-$hport.log"
env "${hap_env[@]}" "$haproxy" -f "$cfg" -db >"$hlog" 2>&1 &
# HAProxy goes first in the stop order.
pids=("$!" "${pids[@]}")
wait_ready "$!" "$hlog" "$hport" "haproxy" '^x-tracker-instance: t'

url=$("$bin" passkey url --uid "$uid" --info-hash "$info_hash" --base "http://127.0.0.1:$hport")
escaped=$(printf '%s' "$info_hash" | sed 's/../%&/g')
cat <<MSG

== HAProxy on 127.0.0.1:$hport (log $hlog) in front of $size instances:
MSG
for i in $(seq 1 "$size"); do
  echo "   t$i  127.0.0.1:${ports[$i]}  (log $root/.dev/demo-cluster-${ports[$i]}.log)"
done
cat <<MSG
announce URL (uid $uid, demo torrent), through HAProxy:
  $url

try it (-i shows X-Tracker-Instance, the instance that holds the torrent):
  curl -s '$url?info_hash=$escaped&peer_id=-DEMO00-000000000001&port=6881&uploaded=0&downloaded=0&left=0&compact=1&event=started'
MSG

if [ -s "$upload" ] && command -v mktorrent >/dev/null; then
  "$bin" torrent stamp --uid "$uid" --base "http://127.0.0.1:$hport" -o "$demo/demo.torrent" "$upload" >/dev/null
  rm -rf "$demo/download-aria2"
  a2="aria2c --no-conf=true --enable-dht=false --enable-dht6=false --bt-enable-lpd=false --enable-peer-exchange=false --interface=127.0.0.1 --disable-ipv6=true --file-allocation=none"
  cat <<MSG

demo torrent: $demo/demo.torrent (uid $uid's copy, announcing through HAProxy)
seed it (another terminal):
  $a2 --listen-port=$((hport + 10)) --dir='$demo/seed' --check-integrity=true --seed-ratio=0.0 --bt-tracker-interval=5 '$demo/demo.torrent'
download it (a third terminal; exits when done):
  $a2 --listen-port=$((hport + 11)) --dir='$demo/download-aria2' --seed-time=0 '$demo/demo.torrent'
MSG
else
  echo
  echo "(install mktorrent for a real demo torrent and the aria2c command lines to seed and download it)"
fi
cat <<MSG

each instance's statistics: http://127.0.0.1:${ports[1]}/statistics ... (through HAProxy, /statistics is always the same one)
runtime API: echo 'show servers state' | socat stdio $sock
Ctrl-C stops HAProxy and the instances.
MSG
# An instance that stops (try kill -TERM on one) is what HAProxy is there
# for: its health checks take it out within seconds and its torrents move
# to the others; the demo goes on. HAProxy ending ends the demo.
hap_pid=${pids[0]}
while :; do
  rc=0
  wait -n "${pids[@]}" || rc=$?
  if ! kill -0 "$hap_pid" 2>/dev/null; then
    echo "make demo-cluster: haproxy exited with status $rc; its log: $hlog" >&2
    exit 1
  fi
  alive=()
  for p in "${pids[@]}"; do
    if kill -0 "$p" 2>/dev/null; then
      alive+=("$p")
    else
      wait "$p" 2>/dev/null || true
      echo "== an instance (pid $p) exited; HAProxy sends its torrents to the others (log $hlog)"
    fi
  done
  pids=("${alive[@]}")
done
