package sync

import (
	"context"
	gosql "database/sql"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/xbt-tracker/xbt-tracker/internal/dbtest"
	"github.com/xbt-tracker/xbt-tracker/migrations"
	xsql "github.com/xbt-tracker/xbt-tracker/sql"
	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// realLoader returns a Loader on a fresh, migrated MariaDB database.
func realLoader(t *testing.T) (*gosql.DB, *xsql.Loader, xsql.Schema) {
	t.Helper()
	db, _ := dbtest.New(t)
	ctx := context.Background()
	if _, err := migrations.Up(ctx, db); err != nil {
		t.Fatal(err)
	}
	s, _, err := xsql.CheckSchema(ctx, db, xsql.DefaultNames())
	if err != nil {
		t.Fatal(err)
	}
	return db, xsql.NewLoader(db, s), s
}

// TestResolverFloodRealDatabase: a flood of random passkey uids and info
// hashes from many goroutines against a real Loader costs the database at
// most the rate limit in queries, while real keys still resolve.
func TestResolverFloodRealDatabase(t *testing.T) {
	db, ld, s := realLoader(t)
	ctx := context.Background()
	uid, err := xsql.InsertUser(ctx, db, s.Names, "")
	if err != nil {
		t.Fatal(err)
	}
	ih := hashOf(77)
	fid, err := xsql.InsertFile(ctx, db, s.Names, ih)
	if err != nil {
		t.Fatal(err)
	}
	cs := &countingSource{source: ld}
	const rate = 25
	r := newResolver(cs, LookupOptions{Rate: rate}, newMetrics(nil, 1))

	if u, ok := r.ResolveUser(uid); !ok || u.UID != uid || !u.CanLeech {
		t.Fatalf("ResolveUser(%d) = %+v %v", uid, u, ok)
	}
	if tr, ok := r.ResolveTorrent(ih); !ok || tr.Fid != fid {
		t.Fatalf("ResolveTorrent = %+v %v, want fid %d", tr, ok, fid)
	}
	before := cs.queries()
	elapsed := floodResolver(t, r, 64, 2*time.Second)
	flood := cs.queries() - before
	// The bucket was nearly drained by the two lookups above: a bucket's
	// worth plus the refill is the most the flood can cost.
	bound := int64(rate + rate*elapsed.Seconds() + 1)
	t.Logf("flood: %d database queries in %v (limit %d/s, bound %d); limited user=%v torrent=%v",
		flood, elapsed.Round(time.Millisecond), rate, bound,
		lookups(r, "user", resultLimited), lookups(r, "torrent", resultLimited))
	if flood > bound {
		t.Fatalf("%d queries in %v, bound %d", flood, elapsed, bound)
	}
	if flood < rate {
		t.Fatalf("only %d queries in %v: the limiter is stricter than %d/s", flood, elapsed, rate)
	}

	// A torrent flagged deleted is not found; the miss is remembered.
	if _, err := db.Exec("UPDATE xbt_files SET flags = 1 WHERE fid = ?", fid); err != nil {
		t.Fatal(err)
	}
	r2 := newResolver(cs, LookupOptions{Rate: rate}, newMetrics(nil, 1))
	n := cs.queries()
	for range 10 {
		if _, ok := r2.ResolveTorrent(ih); ok {
			t.Fatal("a flagged torrent resolved")
		}
	}
	if q := cs.queries() - n; q != 1 {
		t.Fatalf("%d queries for a flagged torrent asked 10 times, want 1", q)
	}
}

// TestSyncerRealDatabase: load, on-demand lookup, flush and reload against
// MariaDB with the real Loader and Writer.
func TestSyncerRealDatabase(t *testing.T) {
	db, ld, s := realLoader(t)
	ctx := context.Background()
	uid, err := xsql.InsertUser(ctx, db, s.Names, "")
	if err != nil {
		t.Fatal(err)
	}
	fid, err := xsql.InsertFile(ctx, db, s.Names, hashOf(1))
	if err != nil {
		t.Fatal(err)
	}
	trk := tracker.New(tracker.Settings{Secret: testSecret}, tracker.Options{})
	sy := New(trk, db, ld, xsql.NewWriter(db, s, xsql.WriterOptions{}), Options{}, nil)
	if err := sy.Load(ctx); err != nil {
		t.Fatal(err)
	}
	// Registered after the load: found on demand.
	uid2, err := xsql.InsertUser(ctx, db, s.Names, "")
	if err != nil {
		t.Fatal(err)
	}
	fid2, err := xsql.InsertFile(ctx, db, s.Names, hashOf(2))
	if err != nil {
		t.Fatal(err)
	}
	c1 := &client{uid: uid, ih: hashOf(1), id: 1, left: 10}
	c2 := &client{uid: uid2, ih: hashOf(2), id: 2}
	for _, c := range []*client{c1, c2} {
		if f := c.announce(trk, 0, 0); f != "" {
			t.Fatalf("first announce of uid %d: %q", c.uid, f)
		}
	}
	c1.announce(trk, 1000, 200)
	c1.announce(trk, 4000, 300)
	c2.announce(trk, 7, 0)
	if err := sy.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	st1, err := xsql.LookupUserStats(ctx, db, s, uid)
	if err != nil {
		t.Fatal(err)
	}
	st2, err := xsql.LookupUserStats(ctx, db, s, uid2)
	if err != nil {
		t.Fatal(err)
	}
	if st1.Uploaded != 5000 || st1.Downloaded != 500 || st2.Uploaded != 7 {
		t.Fatalf("xbt_users: uid %d up %d down %d, uid %d up %d", uid, st1.Uploaded, st1.Downloaded, uid2, st2.Uploaded)
	}
	var leechers, seeders int
	if err := db.QueryRow("SELECT leechers, seeders FROM xbt_files WHERE fid = ?", fid).Scan(&leechers, &seeders); err != nil {
		t.Fatal(err)
	}
	if leechers != 1 || seeders != 0 {
		t.Fatalf("xbt_files fid %d: leechers %d seeders %d", fid, leechers, seeders)
	}

	// Deleted by the catalog: the reload forgets it and deletes the row.
	if _, err := db.Exec("UPDATE xbt_files SET flags = 1 WHERE fid = ?", fid2); err != nil {
		t.Fatal(err)
	}
	if err := sy.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := trk.Torrent(hashOf(2)); ok {
		t.Fatal("flagged torrent still served")
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM xbt_files WHERE fid = ?", fid2).Scan(&n); err != nil || n != 0 {
		t.Fatalf("flagged row: count %d, %v; want it deleted", n, err)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sy.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
}

// TestStalledFlushIsLoud: a catalog transaction holds a user's row longer
// than the periodic flush's deadline. The session's lock wait (shorter than
// the deadline) makes the server answer 1205, which is retried and counted;
// the flush that runs out of time is a warning with the rows pending and
// the age of the oldest delta (not a debug line), /statistics shows the
// pending rows; once the lock is gone every byte is written, exactly once,
// and the recovery is logged.
func TestStalledFlushIsLoud(t *testing.T) {
	raw, dsn := dbtest.New(t)
	ctx := context.Background()
	if _, err := migrations.Up(ctx, raw); err != nil {
		t.Fatal(err)
	}
	db, err := xsql.Open(ctx, dsn+"&innodb_lock_wait_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, _, err := xsql.CheckSchema(ctx, db, xsql.DefaultNames())
	if err != nil {
		t.Fatal(err)
	}
	uid, err := xsql.InsertUser(ctx, db, s.Names, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := xsql.InsertFile(ctx, db, s.Names, hashOf(1)); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)
	trk := tracker.New(tracker.Settings{Secret: testSecret}, tracker.Options{})
	w := xsql.NewWriter(db, s, xsql.WriterOptions{Logger: log})
	sy := New(trk, db, xsql.NewLoader(db, s), w, Options{WriteInterval: 500 * time.Millisecond, FlushTimeout: 3 * time.Second}, log)
	if err := sy.Load(ctx); err != nil {
		t.Fatal(err)
	}
	c := &client{uid: uid, ih: hashOf(1), id: 1}
	if f := c.announce(trk, 0, 0); f != "" {
		t.Fatal(f)
	}

	catalog, err := raw.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer catalog.Rollback()
	var locked uint32
	if err := catalog.QueryRow("SELECT uid FROM xbt_users WHERE uid = ? FOR UPDATE", uid).Scan(&locked); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = sy.Run(runCtx) }()
	defer func() { stop(); <-done }()
	c.announce(trk, 1000, 0)

	warned := func() bool {
		for _, e := range logs.All() {
			if e.Level == zapcore.WarnLevel && strings.Contains(e.Message, "writing statistics to the database failed") {
				m := e.ContextMap()
				_, age := m["oldest_delta_age"]
				return m["pending_rows"] != nil && age
			}
		}
		return false
	}
	deadline := time.Now().Add(15 * time.Second)
	for !warned() {
		if time.Now().After(deadline) {
			t.Fatalf("no warning while the row is locked:\n%v", logs.All())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st := sy.Status(); st.PendingRows == 0 || st.FlushErr == "" {
		t.Fatalf("status while stalled: %+v", st)
	}
	if w.Stats().Retries == 0 {
		t.Fatalf("no 1205 retried: %+v", w.Stats())
	}
	c.announce(trk, 500, 0) // still served, still counted
	if err := catalog.Commit(); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(15 * time.Second)
	for countLevel(logs, zapcore.InfoLevel, "writing statistics to the database works again") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no recovery line:\n%v", logs.All())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for sy.Status().PendingRows != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d rows still pending after recovery", sy.Status().PendingRows)
		}
		time.Sleep(50 * time.Millisecond)
	}
	st, err := xsql.LookupUserStats(ctx, db, s, uid)
	if err != nil {
		t.Fatal(err)
	}
	if st.Uploaded != 1500 {
		t.Fatalf("uploaded %d after the stall, want 1500 (exactly once)", st.Uploaded)
	}
}
