package sql

import (
	"context"
	gosql "database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	gosync "sync"
	"testing"
	"time"

	sq "github.com/Masterminds/squirrel"

	"github.com/xbt-tracker/xbt-tracker/internal/dbtest"
	"github.com/xbt-tracker/xbt-tracker/migrations"
	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// The database measurements in docs/BENCHMARKS.md ("Database"). They need a
// few minutes and ~1 GB of disk, so they run only when asked:
//
//	XBT_BIG=1 go test -run TestBig -v -timeout 30m ./sql
//
// XBT_BIG_ROWS overrides the table size (default 1000000).

func bigRows(t *testing.T) int {
	t.Helper()
	if testing.Short() || os.Getenv("XBT_BIG") == "" {
		t.Skip("large measurement: set XBT_BIG=1 (see docs/BENCHMARKS.md)")
	}
	n := 1000000
	if v := os.Getenv("XBT_BIG_ROWS"); v != "" {
		if _, err := fmt.Sscan(v, &n); err != nil || n < 1000 {
			t.Fatalf("XBT_BIG_ROWS=%q", v)
		}
	}
	return n
}

// digits is a 10-row derived table; six of them cross-joined count to 10^6
// on MariaDB and MySQL alike (recursive CTE limits differ between them).
const digits = "(SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)"

func seq(n int) string {
	var parts, from []string
	mul := 1
	for i := 0; mul < n; i++ {
		parts = append(parts, fmt.Sprintf("%d*t%d.d", mul, i))
		from = append(from, digits+fmt.Sprintf(" t%d", i))
		mul *= 10
	}
	return fmt.Sprintf("(SELECT %s + 1 AS n FROM %s) s WHERE n <= %d", strings.Join(parts, " + "), strings.Join(from, ", "), n)
}

// bigDB is a throwaway database with n users and n torrents, created before
// migration 00004 (as on a catalog that adopts the tracker), then migrated.
func bigDB(t *testing.T, n int) (*gosql.DB, Schema) {
	t.Helper()
	ctx := context.Background()
	raw, dsn := dbtest.New(t)
	p, err := migrations.NewProvider(raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 3); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	mustExec(t, raw, "INSERT INTO xbt_users (uid, torrent_pass, torrent_pass_version, downloaded, uploaded, can_leech, wait_time) "+
		"SELECT n, IF(n % 10 = 0, LEFT(MD5(n), 32), ''), n % 3, n * 1000, n * 2000, n % 7 <> 0, (n % 5) * 3600 FROM "+seq(n))
	mustExec(t, raw, "INSERT INTO xbt_files (fid, info_hash, completed, flags, mtime, ctime) "+
		"SELECT n, UNHEX(SHA1(n)), n % 100, 0, 1700000000, 1700000000 + n FROM "+seq(n))
	t.Logf("generated %d users + %d files in %v", n, n, time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	if _, err := migrations.Up(ctx, raw); err != nil {
		t.Fatal(err)
	}
	t.Logf("migration 00004 on %d rows (triggers, flags index): %v", n, time.Since(t0).Round(time.Millisecond))
	db, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	mustExec(t, db, "ANALYZE TABLE xbt_users, xbt_files")
	s, _, err := CheckSchema(ctx, db, DefaultNames())
	if err != nil {
		t.Fatal(err)
	}
	return db, s
}

// median runs f k times and returns the median duration.
func median(k int, f func()) time.Duration {
	var ds []time.Duration
	for i := 0; i < k; i++ {
		t0 := time.Now()
		f()
		ds = append(ds, time.Since(t0))
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// textProtocolLoad is the previous LoadUsers/LoadTorrents (text protocol,
// scan through helper functions, no preallocation), kept to measure the
// difference.
func textProtocolLoad(ctx context.Context, db *gosql.DB, s Schema) (int, error) {
	n := 0
	q, _, _ := sq.Select(userColumns(s)...).From("`" + s.Users + "`").ToSql()
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return 0, err
	}
	var users []tracker.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			rows.Close()
			return 0, err
		}
		users = append(users, u)
	}
	rows.Close()
	n += len(users)
	q, _, _ = sq.Select("`"+s.FilesFid+"`", "info_hash", "ctime", "`"+s.FilesCompleted+"`").From("`" + s.Files + "`").Where("flags & 1 = 0").ToSql()
	rows, err = db.QueryContext(ctx, q)
	if err != nil {
		return 0, err
	}
	var torrents []tracker.Torrent
	for rows.Next() {
		tr, err := scanTorrent(rows)
		if err != nil {
			rows.Close()
			return 0, err
		}
		torrents = append(torrents, tr)
	}
	rows.Close()
	return n + len(torrents), nil
}

func TestBigLoad(t *testing.T) {
	n := bigRows(t)
	ctx := context.Background()
	db, s := bigDB(t, n)

	d := median(3, func() {
		if _, err := textProtocolLoad(ctx, db, s); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("RESULT full scan, previous code (text protocol): %d users + %d files in %v", n, n, d.Round(time.Millisecond))

	var nu, nt int
	du := median(3, func() {
		u, err := LoadUsers(ctx, db, s)
		if err != nil {
			t.Fatal(err)
		}
		nu = len(u)
	})
	dt := median(3, func() {
		tr, err := LoadTorrents(ctx, db, s)
		if err != nil {
			t.Fatal(err)
		}
		nt = len(tr)
	})
	t.Logf("RESULT LoadUsers: %d rows in %v; LoadTorrents: %d rows in %v; sum %v", nu, du.Round(time.Millisecond), nt, dt.Round(time.Millisecond), (du + dt).Round(time.Millisecond))

	dp := median(3, func() {
		var wg gosync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _, _ = LoadUsers(ctx, db, s) }()
		go func() { defer wg.Done(); _, _ = LoadTorrents(ctx, db, s) }()
		wg.Wait()
	})
	t.Logf("RESULT LoadUsers and LoadTorrents on two connections at once: %v", dp.Round(time.Millisecond))

	l := NewLoader(db, s)
	if err := l.ChangeTracking(ctx); err != nil {
		t.Fatal(err)
	}
	var snap *Snapshot
	df := median(1, func() {
		var err error
		if snap, err = l.Load(ctx); err != nil {
			t.Fatal(err)
		}
	})
	if !snap.Full || len(snap.Users) != n || len(snap.Torrents) != n {
		t.Fatalf("full Load: %d users, %d torrents", len(snap.Users), len(snap.Torrents))
	}
	t.Logf("RESULT Loader.Load, first (full): %v", df.Round(time.Millisecond))

	d0 := median(5, func() {
		snap, err := l.Load(ctx)
		if err != nil || !snap.Empty() {
			t.Fatalf("empty reload: %+v %v", snap, err)
		}
	})
	t.Logf("RESULT Loader.Load, nothing changed: %v", d0.Round(time.Microsecond))

	// 1,000 catalog changes among n users: bans, version bumps, new users,
	// deletions; plus 100 new torrents and 10 flagged.
	var changed []int
	picked := map[int]bool{}
	for len(changed) < 1000 {
		if id := 1 + rand.IntN(n); !picked[id] {
			picked[id] = true
			changed = append(changed, id)
		}
	}
	list := func(ids []int) string {
		var sb strings.Builder
		for i, id := range ids {
			if i > 0 {
				sb.WriteString(",")
			}
			fmt.Fprint(&sb, id)
		}
		return sb.String()
	}
	mustExec(t, db, "UPDATE xbt_users SET can_leech = 1 - can_leech WHERE uid IN ("+list(changed[:400])+")")
	mustExec(t, db, "UPDATE xbt_users SET torrent_pass_version = torrent_pass_version + 1 WHERE uid IN ("+list(changed[400:800])+")")
	mustExec(t, db, "DELETE FROM xbt_users WHERE uid IN ("+list(changed[800:900])+")")
	mustExec(t, db, fmt.Sprintf("INSERT INTO xbt_users (uid) SELECT %d + n FROM %s", n, seq(100)))
	mustExec(t, db, fmt.Sprintf("INSERT INTO xbt_files (info_hash, mtime, ctime) SELECT UNHEX(SHA1(%d + n)), 1, 1 FROM %s", n, seq(100)))
	mustExec(t, db, "UPDATE xbt_files SET flags = 1 WHERE fid IN ("+list(changed[:10])+")")
	dc := median(1, func() {
		var err error
		if snap, err = l.Load(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("RESULT Loader.Load after ~1000 user changes + 100 new torrents + 10 flagged: %v (users %d, removed users %d, torrents %d, removed torrents %d, deleted fids %d)",
		dc.Round(time.Microsecond), len(snap.Users), len(snap.RemovedUsers), len(snap.Torrents), len(snap.RemovedTorrents), len(snap.DeletedFids))
	if snap.Full || len(snap.Users) != 900 || len(snap.RemovedUsers) != 100 || len(snap.Torrents) != 100 || len(snap.DeletedFids) != 10 {
		t.Fatal("incremental Load: wrong counts")
	}

	// What the triggers cost the catalog: a bulk UPDATE of a tracked
	// column on 10% of the users, with and without the triggers.
	upd := fmt.Sprintf("UPDATE xbt_users SET wait_time = wait_time + 1 WHERE uid <= %d", n/10)
	with := median(1, func() { mustExec(t, db, upd) })
	stat := fmt.Sprintf("UPDATE xbt_users SET uploaded = uploaded + 1 WHERE uid <= %d", n/10)
	withStat := median(1, func() { mustExec(t, db, stat) })
	for _, name := range userTriggers {
		mustExec(t, db, "DROP TRIGGER "+name)
	}
	without := median(1, func() { mustExec(t, db, upd) })
	withoutStat := median(1, func() { mustExec(t, db, stat) })
	t.Logf("RESULT catalog UPDATE of %d users: tracked column %v with triggers, %v without; untracked column %v with, %v without",
		n/10, with.Round(time.Millisecond), without.Round(time.Millisecond), withStat.Round(time.Millisecond), withoutStat.Round(time.Millisecond))
}

func TestBigWrite(t *testing.T) {
	n := bigRows(t)
	ctx := context.Background()
	db, s := bigDB(t, n)
	// 100,000 dirty (fid, uid) rows: 10,000 torrents x 10 users each, the
	// 100,000 users they belong to, and the 10,000 torrents.
	const pairs, perFile = 100000, 10
	mk := func(round int) *tracker.Batch {
		b := newBatch()
		r := rand.New(rand.NewPCG(1, 2))
		for i := 0; i < pairs; i++ {
			fid := uint32(1 + (i/perFile)*(n/(pairs/perFile)))
			uid := uint32(1 + r.IntN(n))
			b.FileUsers[tracker.FileUserKey{Fid: fid, UID: uid}] = tracker.FileUserDelta{Active: true, Announced: 1, Uploaded: 1000, Downloaded: 500, Left: uint64(round), Mtime: int64(1700000000 + round)}
			d := b.Users[uid]
			d.Uploaded += 1000
			d.Downloaded += 500
			b.Users[uid] = d
			b.Files[fid] = tracker.FileDelta{Completed: 1, Seeders: 5, Leechers: 5, Mtime: int64(1700000000 + round)}
		}
		return b
	}
	w := NewWriter(db, s, WriterOptions{})
	for round := 1; round <= 3; round++ {
		b := mk(round)
		t0 := time.Now()
		un, err := w.Write(ctx, b)
		d := time.Since(t0)
		if err != nil || un != nil {
			t.Fatalf("Write: %v", err)
		}
		kind := "insert"
		if round > 1 {
			kind = "update"
		}
		t.Logf("RESULT Write round %d (%s): %d files_users + %d users + %d files rows in %v (%.0f rows/s)", round, kind,
			len(b.FileUsers), len(b.Users), len(b.Files), d.Round(time.Millisecond), float64(b.Len())/d.Seconds())
	}
	st := w.Stats()
	t.Logf("RESULT writer stats: %+v", st)

	// Where the time goes: each table alone (update rounds).
	full := mk(5)
	part := func(name string, fill func(dst *tracker.Batch)) time.Duration {
		b := newBatch()
		fill(b)
		t0 := time.Now()
		if un, err := w.Write(ctx, b); err != nil || un != nil {
			t.Fatalf("Write %s: %v", name, err)
		}
		d := time.Since(t0)
		t.Logf("RESULT Write %s only: %d rows in %v (%.0f rows/s)", name, b.Len(), d.Round(time.Millisecond), float64(b.Len())/d.Seconds())
		return d
	}
	part("users", func(b *tracker.Batch) { b.Users = full.Users })
	part("files_users", func(b *tracker.Batch) { b.FileUsers = full.FileUsers })
	part("files", func(b *tracker.Batch) { b.Files = full.Files })
	for _, name := range userTriggers {
		mustExec(t, db, "DROP TRIGGER "+name)
	}
	part("users (change-tracking triggers dropped)", func(b *tracker.Batch) { b.Users = full.Users })
	mustUp := func() {
		if _, err := migrations.DownTo(ctx, db, 3); err != nil {
			t.Fatal(err)
		}
		if _, err := migrations.Up(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
	mustUp()
	l := NewLoader(db, s)
	if _, err := l.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(ctx, mk(4)); err != nil {
		t.Fatal(err)
	}
	if snap, err := l.Load(ctx); err != nil || !snap.Empty() {
		t.Fatalf("after the tracker's own writes a reload must be empty: %v", err)
	}
}

// BenchmarkWriterBuild measures building one 1,000-row files_users
// statement (squirrel) and one 1,000-row users statement (UNION ALL), the
// client-side CPU per chunk.
func BenchmarkWriterBuild(b *testing.B) {
	e := &writerEnv{names: DefaultNames(), users: "`xbt_users`", files: "`xbt_files`", filesUsers: "`xbt_files_users`", uid: "`uid`", fid: "`fid`", fuFid: "`fid`",
		leechers: "`leechers`", seeders: "`seeders`", completed: "`completed`"}
	batch := newBatch()
	for i := uint32(1); i <= 1000; i++ {
		batch.Users[i] = tracker.UserDelta{Uploaded: uint64(i), Downloaded: 1}
		batch.FileUsers[tracker.FileUserKey{Fid: i, UID: i}] = tracker.FileUserDelta{Active: true, Announced: 1, Uploaded: 5, Mtime: 1}
	}
	up := newUserPart(e, batch.Users)
	fp := newFileUserPart(e, fileUserCols{announced: true}, batch.FileUsers)
	b.Run("users", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := up.build(0, up.len()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("files_users", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := fp.build(0, fp.len()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
