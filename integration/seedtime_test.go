package integration

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// stRow is what the test reads of one xbt_files_users row.
type stRow struct {
	timespent, leechtime, mtime int64
	found                       bool
}

// stRead returns (fid, uid)'s timespent, leechtime and mtime.
func stRead(t *testing.T, cat *syCatalog, fid, uid uint32) stRow {
	t.Helper()
	r := stRow{}
	err := cat.db.QueryRow("SELECT timespent, leechtime, mtime FROM xbt_files_users WHERE fid = ? AND uid = ?", fid, uid).
		Scan(&r.timespent, &r.leechtime, &r.mtime)
	if err == nil {
		r.found = true
	}
	return r
}

// stWaitRow waits until (fid, uid)'s row has mtime at least since.
func stWaitRow(t *testing.T, cat *syCatalog, fid, uid uint32, since int64) stRow {
	t.Helper()
	var r stRow
	syEventually(t, 10*time.Second, func() string {
		r = stRead(t, cat, fid, uid)
		if !r.found || r.mtime < since {
			return fmt.Sprintf("(%d,%d): %+v, want a row with mtime >= %d", fid, uid, r, since)
		}
		return ""
	})
	return r
}

// stColumns counts xbt_files_users' timespent and leechtime columns.
func stColumns(t *testing.T, cat *syCatalog) int {
	t.Helper()
	var n int
	if err := cat.db.QueryRow("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_files_users' AND COLUMN_NAME IN ('timespent', 'leechtime')").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// stWait is the real time between the two announces (announce interval
// 10: the expiry is 15 s).
const stWait = 3 * time.Second

// TestSeedLeechTime: after "migrate up --extras", a seeder announcing at t
// and t+N accumulates timespent N (the tracker's seconds: exactly the
// difference of the rows' mtimes, and N ± 1 by the test's clock), and a
// leecher leechtime. "migrate down --extras" removes the columns again.
func TestSeedLeechTime(t *testing.T) {
	cat := newSyCatalog(t)
	env := []string{"XBT_DSN=" + cat.dsn}
	if stColumns(t, cat) != 0 {
		t.Fatal("plain migrate up added the time columns")
	}
	out := mustRun(t, env, "migrate", "up", "--extras")
	if !strings.Contains(out, "00001_seed_leech_time.sql") {
		t.Fatalf("migrate up --extras output:\n%s", out)
	}
	if n := stColumns(t, cat); n != 2 {
		t.Fatalf("%d time columns after migrate up --extras, want 2", n)
	}
	status := mustRun(t, env, "migrate", "status", "--extras")
	if !regexp.MustCompile(`(?m)^1\s+applied\s+.*00001_seed_leech_time\.sql$`).MatchString(status) {
		t.Fatalf("migrate status --extras:\n%s", status)
	}
	if plain := mustRun(t, env, "migrate", "status"); strings.Contains(plain, "seed_leech_time") {
		t.Fatalf("plain migrate status lists the extras:\n%s", plain)
	}
	if out := mustRun(t, env, "migrate", "up"); !strings.Contains(out, "no pending migrations") {
		t.Fatalf("plain migrate up after --extras:\n%s", out)
	}

	p := startServe(t, env, append([]string{"--announce-interval", "10"}, syncFlags...)...)
	base := p.syBaseURL(t)
	secret := configValue(t, cat.db, "torrent_pass_private_key")
	uidS, uidL := cat.addUser(t), cat.addUser(t)
	ih := syInfoHash("seed and leech time")
	fid := cat.addFile(t, ih)
	seeder := newSimPeer(base, secret, 0, uidS, ih, 1, 0)
	leecher := newSimPeer(base, secret, 0, uidL, ih, 2, 1000)
	// The users and torrent reach the tracker within a reload.
	syEventually(t, 10*time.Second, func() string {
		body, err := seeder.announce(0, 0, "started")
		if err != nil {
			return err.Error()
		}
		if f := syFailure(body); f != "" {
			return f
		}
		return ""
	})
	syMustAnnounce(t, leecher, 0, 0, "started")
	start := time.Now()
	s1 := stWaitRow(t, cat, fid, uidS, 0)
	l1 := stWaitRow(t, cat, fid, uidL, 0)
	if s1.timespent != 0 || s1.leechtime != 0 || l1.timespent != 0 || l1.leechtime != 0 {
		t.Fatalf("first announces added time: seeder %+v leecher %+v", s1, l1)
	}

	time.Sleep(stWait - time.Since(start))
	syMustAnnounce(t, seeder, 10, 0, "")
	syMustAnnounce(t, leecher, 0, 10, "")
	elapsed := time.Since(start)
	s2 := stWaitRow(t, cat, fid, uidS, s1.mtime+1)
	l2 := stWaitRow(t, cat, fid, uidL, l1.mtime+1)
	if s2.timespent != s2.mtime-s1.mtime || s2.leechtime != 0 {
		t.Errorf("seeder %+v after %+v: want timespent = mtime difference %d, leechtime 0", s2, s1, s2.mtime-s1.mtime)
	}
	if l2.leechtime != l2.mtime-l1.mtime || l2.timespent != 0 {
		t.Errorf("leecher %+v after %+v: want leechtime = mtime difference %d, timespent 0", l2, l1, l2.mtime-l1.mtime)
	}
	n := int64(elapsed.Round(time.Second) / time.Second)
	if d := s2.timespent - n; d < -1 || d > 1 {
		t.Errorf("timespent %d after %v, want %d ± 1", s2.timespent, elapsed, n)
	}
	if d := l2.leechtime - n; d < -1 || d > 1 {
		t.Errorf("leechtime %d after %v, want %d ± 1", l2.leechtime, elapsed, n)
	}

	// A stop counts its interval too.
	time.Sleep(time.Second)
	syMustAnnounce(t, seeder, 0, 0, "stopped")
	s3 := stWaitRow(t, cat, fid, uidS, s2.mtime+1)
	if s3.timespent != s3.mtime-s1.mtime {
		t.Errorf("after stop %+v: timespent want %d", s3, s3.mtime-s1.mtime)
	}
	if v := syMetric(t, base, "xbt_tracker_flush_failures_total"); v != 0 {
		t.Fatalf("flush failures %v", v)
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d\n%s", code, p.stderr.String())
	}

	mustRun(t, env, "migrate", "down", "--extras", "--to", "0")
	if n := stColumns(t, cat); n != 0 {
		t.Fatalf("%d time columns after migrate down --extras --to 0", n)
	}
	if v := strings.TrimSpace(mustRun(t, env, "migrate", "version")); v != lastMigration(t) {
		t.Fatalf("main version %s after down --extras, want %s", v, lastMigration(t))
	}
}

// TestSeedLeechTimeWithoutColumns: a database without the columns (plain
// migrate up) works as before: rows written, no flush fails, no column
// appears.
func TestSeedLeechTimeWithoutColumns(t *testing.T) {
	cat := newSyCatalog(t)
	p := startServe(t, []string{"XBT_DSN=" + cat.dsn}, append([]string{"--announce-interval", "10"}, syncFlags...)...)
	base := p.syBaseURL(t)
	secret := configValue(t, cat.db, "torrent_pass_private_key")
	uid := cat.addUser(t)
	ih := syInfoHash("seed time, no columns")
	fid := cat.addFile(t, ih)
	peer := newSimPeer(base, secret, 0, uid, ih, 1, 0)
	syEventually(t, 10*time.Second, func() string {
		body, err := peer.announce(0, 0, "started")
		if err != nil {
			return err.Error()
		}
		return syFailure(body)
	})
	time.Sleep(1100 * time.Millisecond)
	syMustAnnounce(t, peer, 5, 0, "")
	syEventually(t, 10*time.Second, func() string {
		var announced, up int
		if err := cat.db.QueryRow("SELECT announced, uploaded FROM xbt_files_users WHERE fid = ? AND uid = ?", fid, uid).Scan(&announced, &up); err != nil {
			return err.Error()
		}
		if announced != 2 || up != 5 {
			return fmt.Sprintf("announced %d uploaded %d, want 2 5", announced, up)
		}
		return ""
	})
	syWaitFlushes(t, base, 1, 10*time.Second)
	if v := syMetric(t, base, "xbt_tracker_flush_failures_total"); v != 0 {
		t.Fatalf("flush failures %v", v)
	}
	if n := stColumns(t, cat); n != 0 {
		t.Fatalf("%d time columns appeared", n)
	}
}
