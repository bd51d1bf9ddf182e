package integration

import (
	"encoding/hex"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestClusterRealClients: Transmission seeds, aria2 and libtorrent leech one
// private torrent whose announce URL points at HAProxy in front of three
// instances. Each client escapes the info_hash its own way; all of them
// must land in one swarm on one instance, and both downloads complete. The
// catalog then shows the three users' rows as the owner wrote them.
func TestClusterRealClients(t *testing.T) {
	requireHAProxy(t)
	requireClients(t, kindTransmission, kindAria2, kindLibtorrent)
	begin := time.Now()
	cat := newSyCatalog(t)
	uids := map[string]uint32{}
	for _, k := range []string{kindTransmission, kindAria2, kindLibtorrent} {
		uids[k] = cat.addUser(t)
	}
	pay := makeClPayload(t, "cluster-payload.bin", clPayloadSize)
	work := t.TempDir()
	env := []string{"XBT_DSN=" + cat.dsn}
	canonical := filepath.Join(work, "canonical.torrent")
	out := mustRun(t, env, "torrent", "stamp", "--private", "--register", "-o", canonical, pay.torrent)
	m := clInfoHashRE.FindStringSubmatch(out)
	fid := regexp.MustCompile(`(?m)^fid (\d+)$`).FindStringSubmatch(out)
	if m == nil || fid == nil {
		t.Fatalf("torrent stamp --register printed no info_hash/fid:\n%s", out)
	}
	var ih [20]byte
	if _, err := hex.Decode(ih[:], []byte(m[1])); err != nil {
		t.Fatal(err)
	}

	c := startCluster(t, 3, clusterOpts{catalog: cat})
	owner := c.ownerOf(t, uids[kindTransmission], ih)
	t.Logf("torrent %s lives on %s", m[1], owner)
	proxy := startRecordingProxy(t, c.hapAddr)

	// Each user's copy announces to the proxy in front of HAProxy.
	torrents, kindOf := map[string]string{}, map[string]string{}
	for k, uid := range uids {
		path, pk := clStamp(t, env, strconv.FormatUint(uint64(uid), 10), proxy.base(), canonical, filepath.Join(work, k+".torrent"))
		torrents[k], kindOf[pk] = path, k
	}
	sent := func(kind, event string) bool {
		for _, e := range proxy.exchanges() {
			if kindOf[strings.Trim(strings.TrimSuffix(e.path, "/announce"), "/")] == kind && e.query.Get("event") == event {
				return true
			}
		}
		return false
	}
	scrape := func() string {
		body, who := c.get(t, c.baseURL()+"/"+c.passkey(uids[kindTransmission], ih)+"/scrape?info_hash="+clEscapeHex(m[1]))
		if who != owner {
			t.Errorf("scrape answered by %s, the torrent lives on %s", who, owner)
		}
		return body
	}

	seeder := startBTClient(t, kindTransmission, torrents[kindTransmission], pay.dir, true)
	if !clWait(30*time.Second, func() bool { return strings.Contains(scrape(), "8:completei1e") }) {
		t.Fatalf("the Transmission seeder never counted as a seeder; scrape %q; its output:\n%s", scrape(), clTail(seeder.out.String()))
	}
	started := time.Now()
	leechers := map[string]*btClient{}
	for _, k := range []string{kindAria2, kindLibtorrent} {
		leechers[k] = startBTClient(t, k, torrents[k], filepath.Join(work, "leech-"+k), false)
	}
	for _, k := range []string{kindAria2, kindLibtorrent} {
		got := filepath.Join(work, "leech-"+k, pay.name)
		if !clWait(clTransferTimeout-time.Since(started), func() bool { return clFileSHA256(got) == pay.sha256 }) {
			t.Fatalf("the %s leecher did not get the file within %s; scrape %q\nseeder:\n%s\n%s:\n%s", k, clTransferTimeout,
				scrape(), clTail(seeder.out.String()), k, clTail(leechers[k].out.String()))
		}
		t.Logf("%s has the file (SHA-256 checked) %s after the leechers started", k, time.Since(started).Round(100*time.Millisecond))
	}

	// aria2 (--seed-time=0) leaves by itself with event=stopped&left=0;
	// libtorrent stays as a seeder, as does Transmission.
	if !clWait(30*time.Second, func() bool { return leechers[kindAria2].exited() && sent(kindAria2, "stopped") }) {
		t.Fatalf("aria2 did not exit with event=stopped after completing; output:\n%s", clTail(leechers[kindAria2].out.String()))
	}
	want := map[string]cuRow{
		kindTransmission: {active: 1, completed: 0},
		kindAria2:        {active: 0, completed: 1},
		kindLibtorrent:   {active: 1, completed: 1},
	}
	cuWaitRows(t, cat, fid[1], uids, want, "with aria2 gone")

	leechers[kindLibtorrent].stop(func() bool { return sent(kindLibtorrent, "stopped") })
	seeder.stop(func() bool { return sent(kindTransmission, "stopped") })
	for _, k := range []string{kindLibtorrent, kindTransmission} {
		if !clWait(20*time.Second, func() bool { return sent(k, "stopped") }) {
			t.Errorf("no event=stopped from %s", k)
		}
	}
	want[kindTransmission] = cuRow{active: 0, completed: 0}
	want[kindLibtorrent] = cuRow{active: 0, completed: 1}
	cuWaitRows(t, cat, fid[1], uids, want, "with every client stopped")
	var completed, seeders, leechersN int
	if !clWait(20*time.Second, func() bool {
		err := cat.db.QueryRow("SELECT completed, seeders, leechers FROM xbt_files WHERE fid = ?", fid[1]).Scan(&completed, &seeders, &leechersN)
		return err == nil && completed == 2 && seeders == 0 && leechersN == 0
	}) {
		t.Errorf("xbt_files: completed %d, seeders %d, leechers %d; want 2, 0, 0", completed, seeders, leechersN)
	}

	// Every request of the three clients was answered by the torrent's
	// instance, and HAProxy sent nothing to the other two.
	perKind := map[string]int{}
	for _, e := range proxy.exchanges() {
		k := kindOf[strings.Trim(strings.TrimSuffix(strings.TrimSuffix(e.path, "/announce"), "/scrape"), "/")]
		perKind[k]++
		if e.instance != owner || e.status != 200 || e.query.Get("info_hash") != string(ih[:]) {
			t.Errorf("%s request answered by %q (HTTP %d), the torrent lives on %s:\n%s", k, e.instance, e.status, owner, e.head)
		}
	}
	for k := range uids {
		if perKind[k] == 0 {
			t.Errorf("no request from %s went through the proxy", k)
		}
	}
	stot := c.serverSessions(t)
	for i := 1; i <= c.size(); i++ {
		if name := serverName(i); name != owner && stot[name] != 0 {
			t.Errorf("HAProxy sent %d requests to %s, which does not hold the torrent", stot[name], name)
		}
	}
	t.Logf("requests per client through HAProxy: %v; HAProxy sessions per server: %v; whole test %s",
		perKind, stot, time.Since(begin).Round(100*time.Millisecond))
}

// cuRow is the part of an xbt_files_users row the cluster tests check.
type cuRow struct{ active, completed int }

// cuWaitRows waits (20 s at most, statistics are written every second) until
// the torrent's xbt_files_users rows of the given users are as wanted.
func cuWaitRows(t *testing.T, cat *syCatalog, fid string, uids map[string]uint32, want map[string]cuRow, when string) {
	t.Helper()
	got := map[string]cuRow{}
	ok := clWait(20*time.Second, func() bool {
		for k, uid := range uids {
			var r cuRow
			err := cat.db.QueryRow("SELECT active, completed FROM xbt_files_users WHERE fid = ? AND uid = ?", fid, uid).Scan(&r.active, &r.completed)
			if err != nil {
				r = cuRow{-1, -1} // no row (yet)
			}
			got[k] = r
		}
		for k, w := range want {
			if got[k] != w {
				return false
			}
		}
		return true
	})
	if !ok {
		t.Errorf("xbt_files_users %s: got %s, want %s", when, cuRowsString(got), cuRowsString(want))
	}
}

func cuRowsString(rows map[string]cuRow) string {
	var b strings.Builder
	for _, k := range []string{kindTransmission, kindAria2, kindLibtorrent} {
		if r, ok := rows[k]; ok {
			fmt.Fprintf(&b, "%s{active %d completed %d} ", k, r.active, r.completed)
		}
	}
	return strings.TrimSpace(b.String())
}
