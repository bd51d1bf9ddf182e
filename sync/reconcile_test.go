package sync

import (
	"context"
	gosql "database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/xbt-tracker/xbt-tracker/internal/dbtest"
	"github.com/xbt-tracker/xbt-tracker/migrations"
	"github.com/xbt-tracker/xbt-tracker/passkey"
	xsql "github.com/xbt-tracker/xbt-tracker/sql"
	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// ghostDB is a migrated database with nFiles torrents (fids 1..nFiles,
// info hashes hashOf(fid)) and nUsers users, every torrent claiming 5
// seeders and 3 leechers and every (fid, uid) row active: what XBT, or this
// tracker before a crash, leaves behind.
func ghostDB(t *testing.T, nFiles, nUsers int) (*gosql.DB, xsql.Schema) {
	t.Helper()
	db, dsn := dbtest.New(t)
	ctx := context.Background()
	if _, err := migrations.Up(ctx, db); err != nil {
		t.Fatal(err)
	}
	pool, err := xsql.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	s, _, err := xsql.CheckSchema(ctx, pool, xsql.DefaultNames())
	if err != nil {
		t.Fatal(err)
	}
	for fid := 1; fid <= nFiles; fid++ {
		ih := hashOf(fid)
		mustDB(t, pool, "INSERT INTO xbt_files (fid, info_hash, seeders, leechers, mtime, ctime) VALUES (?, ?, 5, 3, 1, 1)", fid, ih[:])
	}
	mustDB(t, pool, fmt.Sprintf("INSERT INTO xbt_users (uid) SELECT seq FROM seq_1_to_%d", nUsers))
	mustDB(t, pool, fmt.Sprintf("INSERT INTO xbt_files_users (fid, uid, active, announced, completed, downloaded, `left`, uploaded, mtime) "+
		"SELECT f.fid, u.uid, 1, 1, 0, 0, 7, 0, 100 FROM xbt_files f JOIN xbt_users u"))
	return pool, s
}

// ghostSyncer is a Syncer with a reconciler on db, loaded.
func ghostSyncer(t *testing.T, db *gosql.DB, s xsql.Schema) (*tracker.Tracker, *Syncer) {
	t.Helper()
	trk := tracker.New(tracker.Settings{Secret: testSecret, AnnounceInterval: 1800}, tracker.Options{})
	rec, err := xsql.NewReconciler(db, s)
	if err != nil {
		t.Fatal(err)
	}
	sy := New(trk, db, xsql.NewLoader(db, s), xsql.NewWriter(db, s, xsql.WriterOptions{}), Options{Reconciler: rec}, nil)
	if err := sy.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return trk, sy
}

func mustDB(t *testing.T, db *gosql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func dbInt(t *testing.T, db *gosql.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// TestReconcileAtStart: a cold start zeroes every claim; a start with
// swarms in memory (as after a warm restart) keeps exactly the rows memory
// backs, corrects counts that differ, and clears the rest, across chunk
// boundaries.
func TestReconcileAtStart(t *testing.T) {
	for _, warm := range []bool{false, true} {
		t.Run(fmt.Sprintf("warm=%v", warm), func(t *testing.T) {
			const nFiles, nUsers = 3, 900 // 2,700 active rows: three chunks
			db, s := ghostDB(t, nFiles, nUsers)
			mustDB(t, db, "INSERT INTO xbt_files_users (fid, uid, active, announced, completed, downloaded, `left`, uploaded, mtime) VALUES (99, 1, 1, 1, 0, 0, 0, 0, 100)") // a deleted torrent's row
			ctx := context.Background()
			trk, sy := ghostSyncer(t, db, s)
			if warm {
				// Memory holds: torrent 1 with user 7 seeding and user 8
				// leeching (two peers of user 8, one of them stopped);
				// torrent 2 with user 9 leeching.
				for _, c := range []*client{
					{uid: 7, ih: hashOf(1), id: 1},
					{uid: 8, ih: hashOf(1), id: 2, left: 10},
					{uid: 8, ih: hashOf(1), id: 3, left: 10},
					{uid: 9, ih: hashOf(2), id: 4, left: 10},
				} {
					if f := c.announce(trk, 0, 0); f != "" {
						t.Fatal(f)
					}
				}
				stop := &client{uid: 8, ih: hashOf(1), id: 3, left: 10}
				if f := stopAnnounce(trk, stop); f != "" {
					t.Fatal(f)
				}
				trk.Drain() // what those announces would write: not what is under test
			}
			res, err := sy.ReconcileAtStart(ctx)
			if err != nil {
				t.Fatal(err)
			}
			type counts struct{ s, l int }
			want := map[int]counts{1: {0, 0}, 2: {0, 0}, 3: {0, 0}}
			wantActive := map[[2]int]bool{}
			if warm {
				want[1], want[2] = counts{1, 1}, counts{0, 1}
				wantActive[[2]int{1, 7}], wantActive[[2]int{1, 8}], wantActive[[2]int{2, 9}] = true, true, true
			}
			for fid, w := range want {
				var got counts
				if err := db.QueryRow("SELECT seeders, leechers FROM xbt_files WHERE fid = ?", fid).Scan(&got.s, &got.l); err != nil {
					t.Fatal(err)
				}
				if got != w {
					t.Errorf("fid %d: seeders/leechers %+v, want %+v", fid, got, w)
				}
			}
			if n := dbInt(t, db, "SELECT COUNT(*) FROM xbt_files_users WHERE active = 1"); n != len(wantActive) {
				t.Errorf("%d active rows, want %d", n, len(wantActive))
			}
			for k := range wantActive {
				if n := dbInt(t, db, "SELECT active FROM xbt_files_users WHERE fid = ? AND uid = ?", k[0], k[1]); n != 1 {
					t.Errorf("(fid %d, uid %d) inactive: memory has a live peer", k[0], k[1])
				}
			}
			if res.FileUsers != nFiles*nUsers+1-len(wantActive) {
				t.Errorf("result %+v", res)
			}
			// Nothing else changed: left and mtime are the catalog's.
			if n := dbInt(t, db, "SELECT COUNT(*) FROM xbt_files_users WHERE mtime <> 100"); n != 0 {
				t.Errorf("%d rows with another mtime", n)
			}
		})
	}
}

func stopAnnounce(trk *tracker.Tracker, c *client) tracker.Failure {
	a := &tracker.Announce{
		Passkey:  []byte(passkeyOf(c)),
		InfoHash: c.ih, Port: 6881, Left: c.left, NumWant: -1, Event: tracker.EventStopped,
	}
	a.PeerID[0], a.PeerID[1] = byte(c.id>>8), byte(c.id)
	var out tracker.AnnounceResult
	trk.Announce(a, &out)
	return out.Failure
}

// TestSweepCorrectsGhosts: while running, rows another writer left behind
// (counts that are not memory's, active rows without a peer) are corrected
// through the ledger by the sweep and the next flush; a live peer's row and
// a fresh row of a torrent not in memory are left alone; the sweep's cursor
// goes round the table.
func TestSweepCorrectsGhosts(t *testing.T) {
	db, s := ghostDB(t, 2, 1200)
	ctx := context.Background()
	trk, sy := ghostSyncer(t, db, s)
	if _, err := sy.ReconcileAtStart(ctx); err != nil {
		t.Fatal(err)
	}
	live := &client{uid: 5, ih: hashOf(1), id: 1, left: 10}
	if f := live.announce(trk, 0, 0); f != "" {
		t.Fatal(f)
	}
	if err := sy.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Another tracker writes behind our back.
	mustDB(t, db, "UPDATE xbt_files SET seeders = 4, leechers = 4")
	mustDB(t, db, "UPDATE xbt_files_users SET active = 1")
	now := time.Now().Unix()
	mustDB(t, db, "INSERT INTO xbt_files_users (fid, uid, active, announced, completed, downloaded, `left`, uploaded, mtime) VALUES (50, 1, 1, 1, 0, 0, 0, 0, ?), (51, 1, 1, 1, 0, 0, 0, 0, 100)", now)

	for i := 0; i < 2; i++ { // 2,402 active rows: the budget covers them in one sweep
		if _, err := sy.sweep(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := sy.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if s, l := dbInt(t, db, "SELECT seeders FROM xbt_files WHERE fid = 1"), dbInt(t, db, "SELECT leechers FROM xbt_files WHERE fid = 1"); s != 0 || l != 1 {
		t.Errorf("fid 1: %d seeders %d leechers, want 0 and 1", s, l)
	}
	if s, l := dbInt(t, db, "SELECT seeders FROM xbt_files WHERE fid = 2"), dbInt(t, db, "SELECT leechers FROM xbt_files WHERE fid = 2"); s != 0 || l != 0 {
		t.Errorf("fid 2: %d seeders %d leechers, want 0 and 0", s, l)
	}
	active := map[[2]int]bool{}
	rows, err := db.Query("SELECT fid, uid FROM xbt_files_users WHERE active = 1")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k [2]int
		if err := rows.Scan(&k[0], &k[1]); err != nil {
			t.Fatal(err)
		}
		active[k] = true
	}
	rows.Close()
	if len(active) != 2 || !active[[2]int{1, 5}] || !active[[2]int{50, 1}] {
		t.Fatalf("active rows %v: want the live peer's (1,5) and the fresh row of a torrent not in memory (50,1)", active)
	}
}

func passkeyOf(c *client) string { return passkey.Derive(testSecret, 0, c.uid, c.ih) }

// TestReconcileCluster: in a cluster, a row memory does not back may be
// another live instance's. The start-up reconciliation and the sweep leave
// the rows written for an announce recently (fid 2 and its users) and
// correct only stale ones (fid 1); a swarm this instance holds competes
// by announce time (fid 3).
func TestReconcileCluster(t *testing.T) {
	db, s := ghostDB(t, 3, 5)
	ctx := context.Background()
	now := time.Now().Unix()
	mustDB(t, db, "UPDATE xbt_files SET mtime = ? WHERE fid IN (2, 3)", now-60)
	mustDB(t, db, "UPDATE xbt_files_users SET mtime = ? WHERE fid IN (2, 3)", now-60)

	trk := tracker.New(tracker.Settings{Secret: testSecret, AnnounceInterval: 1800}, tracker.Options{Cluster: true})
	rec, err := xsql.NewReconciler(db, s)
	if err != nil {
		t.Fatal(err)
	}
	sy := New(trk, db, xsql.NewLoader(db, s), xsql.NewWriter(db, s, xsql.WriterOptions{Cluster: true}),
		Options{Reconciler: rec, Cluster: true, WriteInterval: 15 * time.Second}, nil)
	if err := sy.Load(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := sy.ReconcileAtStart(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 1 || res.FileUsers != 5 {
		t.Errorf("start-up corrected %+v, want fid 1 and its 5 rows only", res)
	}
	counts := func(fid int) [2]int {
		return [2]int{dbInt(t, db, "SELECT seeders FROM xbt_files WHERE fid = ?", fid), dbInt(t, db, "SELECT leechers FROM xbt_files WHERE fid = ?", fid)}
	}
	if c1, c2 := counts(1), counts(2); c1 != [2]int{0, 0} || c2 != [2]int{5, 3} {
		t.Errorf("after start-up: fid 1 %v (want 0 0), fid 2 %v (want another instance's 5 3)", c1, c2)
	}
	if n := dbInt(t, db, "SELECT COUNT(*) FROM xbt_files_users WHERE active = 1"); n != 10 {
		t.Errorf("%d active rows, want fid 2's and 3's 10", n)
	}

	// This instance now holds fid 3 (one leecher, announced now, newer than
	// the row): its view replaces the row's.
	live := &client{uid: 5, ih: hashOf(3), id: 1, left: 10}
	if f := live.announce(trk, 0, 0); f != "" {
		t.Fatal(f)
	}
	if err := sy.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	mustDB(t, db, "UPDATE xbt_files SET seeders = 5, leechers = 3 WHERE fid = 1") // a ghost written behind our back, stale
	for i := 0; i < 2; i++ {
		// In a cluster the torrents' rows are reconciled by the stored
		// counts' refresh, the users' rows by the sweep.
		if _, err := sy.refreshStored(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := sy.sweep(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := sy.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if c1, c2, c3 := counts(1), counts(2), counts(3); c1 != [2]int{0, 0} || c2 != [2]int{5, 3} || c3 != [2]int{0, 1} {
		t.Errorf("after the sweep: fid 1 %v (want 0 0), fid 2 %v (want 5 3), fid 3 %v (want 0 1)", c1, c2, c3)
	}
	if n := dbInt(t, db, "SELECT COUNT(*) FROM xbt_files_users WHERE active = 1 AND fid = 2"); n != 5 {
		t.Errorf("fid 2: %d active rows, want another instance's 5", n)
	}
}
