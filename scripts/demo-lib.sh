# Shared by scripts/demo.sh and scripts/demo-cluster.sh (sourced, not run).

# demo_catalog DIR LABEL: what a catalog does before a tracker serves. The
# database $dbname (on scripts/dev-db.sh's server), its migrations, a demo
# torrent and a demo user, both reused by later runs. Needs root, bin and
# dbname; sets and exports XBT_DSN, and sets dsn, demo (the files' absolute
# directory, DIR), upload (the .torrent, when mktorrent made one),
# info_hash, uid and fid.
#
# With mktorrent the torrent is a real private one of a 4 MiB random file,
# made once so that reruns keep its info_hash (registered as a catalog's
# upload step does); without it, just an info_hash (SHA-1 of LABEL).
demo_catalog() {
  local dir=$1 label=$2 base params payload uid_file
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

  mkdir -p "$root/.dev" "$dir"
  demo=$(cd "$dir" && pwd)
  upload="$demo/upload.torrent"
  if command -v mktorrent >/dev/null; then
    payload="$demo/seed/xbt-demo.bin"
    if [ ! -s "$payload" ] || [ ! -s "$upload" ]; then
      mkdir -p "$demo/seed"
      head -c $((4 << 20)) /dev/urandom >"$payload"
      rm -f "$upload"
      mktorrent -p -l 18 -c "$label" -o "$upload" "$payload" >/dev/null
    fi
    info_hash=$("$bin" torrent info "$upload" | sed -n 's/^info_hash //p')
  else
    info_hash=$(printf '%s' "$label" | sha1sum | cut -c1-40)
  fi
  uid_file="$root/.dev/demo-uid-$dbname"
  # Reuse the demo user of an earlier run while it still exists.
  if [ -s "$uid_file" ] && "$bin" user show --uid "$(cat "$uid_file")" >/dev/null 2>&1; then
    uid=$(cat "$uid_file")
  else
    uid=$("$bin" user add)
    echo "$uid" >"$uid_file"
  fi
  fid=$("$bin" file add --info-hash "$info_hash")
  echo "== demo user uid=$uid, demo torrent fid=$fid info_hash=$info_hash"
}
