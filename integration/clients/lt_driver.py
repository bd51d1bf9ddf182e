#!/usr/bin/python3
"""Drive one libtorrent (python3-libtorrent) client for integration/clients_test.go.

Run with Debian's /usr/bin/python3 (python3-libtorrent is not importable from
another python3). Loopback only: listens and dials on 127.0.0.1, DHT, LSD,
UPnP, NAT-PMP, uTP and the default plugins (PEX, ...) off.

    lt_driver.py --torrent FILE --save DIR --port P

Prints one JSON object per line on stdout:
    {"event": "added"}
    {"event": "announce", "tracker_event": "started"}
    {"event": "tracker_reply", "peers": N}
    {"event": "tracker_error", "message": "..."}      (the tracker's failure reason)
    {"event": "finished"}                             (every piece downloaded and checked)
    {"event": "stats", "uploaded": N, "downloaded": N, "progress": F}   (every second)
    {"event": "removed", "uploaded": N, "downloaded": N}
Reads commands, one per line, on stdin:
    reannounce   announce now (a Transmission leecher never dials 127.x peers,
                 so a seeder must announce after it)
    stop         remove the torrent (libtorrent sends event=stopped), wait for
                 that announce, then exit 0
End of stdin is "stop".
"""

import argparse
import json
import queue
import sys
import threading
import time

import libtorrent as lt


def emit(**kv):
    sys.stdout.write(json.dumps(kv) + "\n")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--torrent", required=True)
    ap.add_argument("--save", required=True)
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()

    settings = {
        "listen_interfaces": "127.0.0.1:%d" % args.port,
        "outgoing_interfaces": "127.0.0.1",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        # A loopback tracker whose path does not start with /announce
        # (/<passkey>/announce) is refused without this.
        "ssrf_mitigation": False,
        # The tracker's interval is 1800 s; announces happen on "reannounce".
        "min_announce_interval": 1,
        "allow_multiple_connections_per_ip": True,
        "stop_tracker_timeout": 10,
        "alert_mask": lt.alert.category_t.status_notification
        | lt.alert.category_t.port_mapping_notification
        | lt.alert.category_t.error_notification
        | lt.alert.category_t.tracker_notification,
    }
    # flags=0: no default plugins (ut_pex, ut_metadata, smart_ban).
    ses = lt.session(settings, 0)
    # Wait for the UDP side of the listen socket before adding the torrent:
    # libtorrent 2.0 announces once per listen socket known when the torrent
    # starts, so a torrent added first may never announce to a UDP tracker
    # (seen here in about one run in four), not even on force_reannounce.
    deadline = time.time() + 10
    udp_ready = False
    while not udp_ready and time.time() < deadline:
        ses.wait_for_alert(200)
        for a in ses.pop_alerts():
            if isinstance(a, lt.listen_succeeded_alert):
                emit(event="listening", text=a.message())
                udp_ready = udp_ready or "[TCP]" not in a.message()
            elif isinstance(a, lt.listen_failed_alert):
                emit(event="error", text=a.message())

    ti = lt.torrent_info(args.torrent)
    h = ses.add_torrent({"ti": ti, "save_path": args.save})
    emit(event="added", info_hash=str(ti.info_hash()))

    cmds = queue.Queue()

    def read_stdin():
        for line in sys.stdin:
            cmds.put(line.strip())
        cmds.put("stop")

    threading.Thread(target=read_stdin, daemon=True).start()

    def drain():
        for a in ses.pop_alerts():
            if isinstance(a, lt.tracker_error_alert):
                # a.message() is libtorrent's own text; the tracker's failure
                # reason is in failure_reason() (2.0) or error_message().
                reason = ""
                for attr in ("failure_reason", "error_message"):
                    f = getattr(a, attr, None)
                    if f:
                        try:
                            reason = f()
                        except Exception:
                            reason = ""
                    if reason:
                        break
                emit(event="tracker_error", message=reason, text=a.message())
            elif isinstance(a, lt.tracker_reply_alert):
                emit(event="tracker_reply", peers=a.num_peers)
            elif isinstance(a, lt.tracker_announce_alert):
                ev = {0: "none", 1: "completed", 2: "started", 3: "stopped", 4: "paused"}.get(int(a.event), str(a.event))
                emit(event="announce", tracker_event=ev)
            elif isinstance(a, lt.torrent_finished_alert):
                emit(event="finished")
            elif isinstance(a, (lt.torrent_error_alert, lt.file_error_alert, lt.listen_failed_alert)):
                emit(event="error", text=a.message())
            elif isinstance(a, lt.listen_succeeded_alert):
                emit(event="listening", text=a.message())

    last = 0.0
    while True:
        ses.wait_for_alert(200)
        drain()
        now = time.time()
        if now - last >= 1:
            last = now
            st = h.status()
            emit(event="stats", uploaded=st.all_time_upload, downloaded=st.all_time_download,
                 progress=round(st.progress, 4), peers=st.num_peers, state=str(st.state))
        try:
            cmd = cmds.get_nowait()
        except queue.Empty:
            continue
        if cmd == "reannounce":
            # The tracker's min interval is its announce_interval (1800 s).
            h.force_reannounce(0, -1, lt.reannounce_flags_t.ignore_min_interval)
        elif cmd == "stop":
            st = h.status()
            ses.remove_torrent(h)
            # remove_torrent sends event=stopped; wait for its answer.
            deadline = time.time() + 10
            while time.time() < deadline:
                ses.wait_for_alert(200)
                done = False
                for a in ses.pop_alerts():
                    if isinstance(a, (lt.tracker_reply_alert, lt.tracker_error_alert)):
                        done = True
                    if isinstance(a, lt.tracker_announce_alert) and int(a.event) == 3:
                        emit(event="announce", tracker_event="stopped")
                if done:
                    break
            emit(event="removed", uploaded=st.all_time_upload, downloaded=st.all_time_download)
            del ses
            return 0


if __name__ == "__main__":
    sys.exit(main())
