package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// snRow is one xbt_snatched row.
type snRow struct {
	uid, fid uint32
	tstamp   int64
	ip       string
}

// snRows returns xbt_snatched's rows.
func snRows(t *testing.T, cat *syCatalog) []snRow {
	t.Helper()
	rows, err := cat.db.Query("SELECT uid, fid, tstamp, IP FROM xbt_snatched ORDER BY tstamp")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []snRow
	for rows.Next() {
		var r snRow
		if err := rows.Scan(&r.uid, &r.fid, &r.tstamp, &r.ip); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// snComplete announces p as a leecher, then completed: one completion.
func snComplete(t *testing.T, p *simPeer) {
	t.Helper()
	syMustAnnounce(t, p, 0, 0, "started")
	p.left = 0
	syMustAnnounce(t, p, 0, 100, "completed")
}

// snCompleted is xbt_files.completed of fid.
func snCompleted(t *testing.T, cat *syCatalog, fid uint32) int {
	t.Helper()
	var n int
	if err := cat.db.QueryRow("SELECT completed FROM xbt_files WHERE fid = ?", fid).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSnatched: a completion is written to xbt_snatched (uid, fid, time,
// address) in the batched flush, exactly once: announcing completed again,
// or stopping, adds no row.
func TestSnatched(t *testing.T) {
	cat := newSyCatalog(t)
	p := startServe(t, []string{"XBT_DSN=" + cat.dsn}, syncFlags...)
	base := p.syBaseURL(t)
	secret := configValue(t, cat.db, "torrent_pass_private_key")
	uid := cat.addUser(t)
	ih := syInfoHash("snatched")
	fid := cat.addFile(t, ih)

	before := time.Now().Unix()
	peer := newSimPeer(base, secret, 0, uid, ih, 1, 100)
	snComplete(t, peer)
	after := time.Now().Unix()

	syEventually(t, 10*time.Second, func() string {
		got := snRows(t, cat)
		if len(got) != 1 {
			return fmt.Sprintf("xbt_snatched rows %+v, want 1", got)
		}
		r := got[0]
		if r.uid != uid || r.fid != fid || r.tstamp < before || r.tstamp > after || r.ip != "127.0.0.1" {
			return fmt.Sprintf("xbt_snatched row %+v, want uid %d fid %d tstamp in [%d, %d] IP 127.0.0.1", r, uid, fid, before, after)
		}
		return ""
	})

	// Completed again, then stopped: the same completion, no new row.
	syMustAnnounce(t, peer, 0, 0, "completed")
	syMustAnnounce(t, peer, 0, 0, "stopped")
	syWaitFlushes(t, base, 2, 10*time.Second)
	if got := snRows(t, cat); len(got) != 1 {
		t.Fatalf("xbt_snatched rows after more announces and flushes: %+v, want 1", got)
	}
	if n := snCompleted(t, cat, fid); n != 1 {
		t.Fatalf("xbt_files.completed %d, want 1", n)
	}
}

// TestSnatchedWithoutTable: a database without xbt_snatched works as
// before: the completion is counted, nothing else is written, no flush
// fails.
func TestSnatchedWithoutTable(t *testing.T) {
	cat := newSyCatalog(t)
	cat.exec(t, "DROP TABLE xbt_snatched")
	p := startServe(t, []string{"XBT_DSN=" + cat.dsn}, syncFlags...)
	base := p.syBaseURL(t)
	secret := configValue(t, cat.db, "torrent_pass_private_key")
	uid := cat.addUser(t)
	ih := syInfoHash("snatched, no table")
	fid := cat.addFile(t, ih)

	snComplete(t, newSimPeer(base, secret, 0, uid, ih, 1, 100))
	syEventually(t, 10*time.Second, func() string {
		if n := snCompleted(t, cat, fid); n != 1 {
			return fmt.Sprintf("xbt_files.completed %d, want 1", n)
		}
		return ""
	})
	syWaitFlushes(t, base, 2, 10*time.Second)
	if st := syGet(t, base+"/statistics"); strings.Contains(st, "flush error") {
		t.Fatalf("flush failed without xbt_snatched:\n%s", st)
	}
	if v := syMetric(t, base, "xbt_tracker_flush_failures_total"); v != 0 {
		t.Fatalf("flush failures %v", v)
	}
	if strings.Contains(p.stderr.String(), "xbt_snatched") {
		t.Fatalf("the absent optional table was logged about:\n%s", p.stderr.String())
	}
	var n int
	if err := cat.db.QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_snatched'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("xbt_snatched exists: %d %v", n, err)
	}
}
