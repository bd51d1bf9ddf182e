package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Ghost peers: the seeders, leechers and active flags a site shows must be
// the tracker's, from before the first announce is answered and for as long
// as it runs.

// ghFixture is a catalog as another tracker (XBT, or this one before a
// crash) left it: fid 1 claiming 5 seeders and 3 leechers, fid 2 claiming 2
// leechers, four xbt_files_users rows active.
func ghFixture(t *testing.T) (cat *syCatalog, uids []uint32, fids []uint32) {
	t.Helper()
	cat = newSyCatalog(t)
	for i := 0; i < 4; i++ {
		uids = append(uids, cat.addUser(t))
	}
	fids = []uint32{cat.addFile(t, syInfoHash("ghost 1")), cat.addFile(t, syInfoHash("ghost 2"))}
	cat.exec(t, "UPDATE xbt_files SET seeders = 5, leechers = 3 WHERE fid = ?", fids[0])
	cat.exec(t, "UPDATE xbt_files SET seeders = 0, leechers = 2 WHERE fid = ?", fids[1])
	for i, uid := range uids {
		cat.exec(t, "INSERT INTO xbt_files_users (fid, uid, active, announced, completed, downloaded, `left`, uploaded, mtime) VALUES (?, ?, 1, 3, 0, 0, 100, 0, UNIX_TIMESTAMP())",
			fids[i%2], uid)
	}
	return cat, uids, fids
}

// ghClaims says what the database claims: every torrent with seeders or
// leechers and every active row, "" when nothing.
func ghClaims(t *testing.T, cat *syCatalog) string {
	t.Helper()
	var out []string
	rows, err := cat.db.Query("SELECT fid, seeders, leechers FROM xbt_files WHERE seeders <> 0 OR leechers <> 0 ORDER BY fid")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var fid, s, l int
		if err := rows.Scan(&fid, &s, &l); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("xbt_files fid %d: %d seeders %d leechers", fid, s, l))
	}
	rows.Close()
	rows, err = cat.db.Query("SELECT fid, uid FROM xbt_files_users WHERE active = 1 ORDER BY fid, uid")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var fid, uid int
		if err := rows.Scan(&fid, &uid); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("xbt_files_users (%d, %d) active", fid, uid))
	}
	rows.Close()
	return strings.Join(out, "; ")
}

// TestStartClearsGhostPeers: on a database another tracker served, every
// claimed seeder, leecher and active row is cleared before the tracker
// listens (so before any announce can be answered), and /statistics agrees.
func TestStartClearsGhostPeers(t *testing.T) {
	cat, _, _ := ghFixture(t)
	if ghClaims(t, cat) == "" {
		t.Fatal("the fixture claims nothing")
	}
	p := startServe(t, []string{"XBT_DSN=" + cat.dsn}, syncFlags...)
	// startServe returned at the "listening" line; nothing announced yet.
	if c := ghClaims(t, cat); c != "" {
		t.Fatalf("ghost peers left after start-up: %s", c)
	}
	if !strings.Contains(p.stderr.String(), "peer counts in the database agree with memory") {
		t.Fatalf("no reconciliation line:\n%s", p.stderr.String())
	}
	if v := syMetric(t, p.syBaseURL(t), "xbt_tracker_torrents_with_peers"); v != 0 {
		t.Fatalf("torrents with peers %v", v)
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestKillThenRestartIsCold: peers announce and their counts are written;
// the tracker is killed (no final flush, no state file); the restarted
// tracker serves nobody's peers and leaves no claim in the database.
func TestKillThenRestartIsCold(t *testing.T) {
	cat, uids, fids := ghFixture(t)
	p := startServe(t, []string{"XBT_DSN=" + cat.dsn}, syncFlags...)
	base := p.syBaseURL(t)
	secret := configValue(t, cat.db, "torrent_pass_private_key")
	ih := syInfoHash("ghost 1")
	seeder := newSimPeer(base, secret, 0, uids[0], ih, 1, 0)
	leecher := newSimPeer(base, secret, 0, uids[1], ih, 2, 500)
	syMustAnnounce(t, seeder, 0, 0, "started")
	syMustAnnounce(t, leecher, 0, 0, "started")
	syEventually(t, 10*time.Second, func() string {
		if c := ghClaims(t, cat); !strings.Contains(c, fmt.Sprintf("fid %d: 1 seeders 1 leechers", fids[0])) {
			return "counts not written yet: " + c
		}
		return ""
	})
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done

	p2 := startServe(t, []string{"XBT_DSN=" + cat.dsn}, syncFlags...)
	if c := ghClaims(t, cat); c != "" {
		t.Fatalf("after kill -9 and restart: %s", c)
	}
	if v := syMetric(t, p2.syBaseURL(t), "xbt_tracker_torrents_with_peers"); v != 0 {
		t.Fatalf("torrents with peers after a cold start: %v", v)
	}
	// The peers come back with their next announce, and so do the counts.
	seeder.base = p2.syBaseURL(t)
	syMustAnnounce(t, seeder, 0, 0, "")
	syEventually(t, 10*time.Second, func() string {
		if c := ghClaims(t, cat); c != fmt.Sprintf("xbt_files fid %d: 1 seeders 0 leechers; xbt_files_users (%d, %d) active", fids[0], fids[0], uids[0]) {
			return "after the seeder's announce: " + c
		}
		return ""
	})
	if code := p2.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestSweepClearsGhostsWhileRunning: rows another writer sets behind the
// running tracker's back (counts, active flags) are corrected within a few
// clean_up_interval, while a live peer's row stays.
func TestSweepClearsGhostsWhileRunning(t *testing.T) {
	cat, uids, fids := ghFixture(t)
	p := startServe(t, []string{"XBT_DSN=" + cat.dsn}, append(syncFlags, "--clean-up-interval", "1")...)
	base := p.syBaseURL(t)
	secret := configValue(t, cat.db, "torrent_pass_private_key")
	live := newSimPeer(base, secret, 0, uids[2], syInfoHash("ghost 1"), 1, 100)
	syMustAnnounce(t, live, 0, 0, "started")
	want := fmt.Sprintf("xbt_files fid %d: 0 seeders 1 leechers; xbt_files_users (%d, %d) active", fids[0], fids[0], uids[2])
	syEventually(t, 10*time.Second, func() string {
		if c := ghClaims(t, cat); c != want {
			return "before: " + c
		}
		return ""
	})
	cat.exec(t, "UPDATE xbt_files SET seeders = 7, leechers = 7")
	cat.exec(t, "UPDATE xbt_files_users SET active = 1")
	syEventually(t, 15*time.Second, func() string {
		if c := ghClaims(t, cat); c != want {
			return "ghosts not cleared while running: " + c
		}
		return ""
	})
	if !strings.Contains(p.stderr.String(), "corrected ghost peers in the database") {
		t.Fatalf("no line about the correction:\n%s", p.stderr.String())
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
}
