package sql

import (
	"context"
	gosql "database/sql"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/xbt-tracker/xbt-tracker/internal/dbtest"
	"github.com/xbt-tracker/xbt-tracker/migrations"
	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// writerDB is a migrated throwaway database opened the way the tracker opens
// it (sql.Open: interpolateParams=true), with extra DSN params appended.
func writerDB(t testing.TB, params string) (*gosql.DB, Schema, string) {
	t.Helper()
	ctx := context.Background()
	raw, dsn := dbtest.New(t)
	if _, err := migrations.Up(ctx, raw); err != nil {
		t.Fatalf("migrations.Up: %v", err)
	}
	if params != "" {
		dsn += "&" + params
	}
	db, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, _, err := CheckSchema(ctx, db, DefaultNames())
	if err != nil {
		t.Fatal(err)
	}
	return db, s, dsn
}

func mustExec(t testing.TB, db *gosql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func seedUsers(t testing.TB, db *gosql.DB, uids ...uint32) {
	t.Helper()
	var sb strings.Builder
	for i, u := range uids {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, "(%d)", u)
	}
	mustExec(t, db, "INSERT INTO xbt_users (uid) VALUES "+sb.String())
}

func hashOf(i int) tracker.InfoHash {
	var h tracker.InfoHash
	copy(h[:], fmt.Sprintf("hash-%015d", i))
	return h
}

func seedFiles(t testing.TB, db *gosql.DB, fids ...uint32) {
	t.Helper()
	for _, fid := range fids {
		h := hashOf(int(fid))
		mustExec(t, db, "INSERT INTO xbt_files (fid, info_hash, mtime, ctime) VALUES (?, ?, 1, 1)", fid, h[:])
	}
}

type userTotals struct{ down, up uint64 }

func readUsers(t testing.TB, db *gosql.DB) map[uint32]userTotals {
	t.Helper()
	rows, err := db.Query("SELECT uid, downloaded, uploaded FROM xbt_users")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[uint32]userTotals{}
	for rows.Next() {
		var uid uint32
		var v userTotals
		if err := rows.Scan(&uid, &v.down, &v.up); err != nil {
			t.Fatal(err)
		}
		out[uid] = v
	}
	return out
}

type fileRowDB struct {
	completed, leechers, seeders int
	mtime                        int64
}

func readFiles(t testing.TB, db *gosql.DB) map[uint32]fileRowDB {
	t.Helper()
	rows, err := db.Query("SELECT fid, completed, leechers, seeders, mtime FROM xbt_files")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[uint32]fileRowDB{}
	for rows.Next() {
		var fid uint32
		var v fileRowDB
		if err := rows.Scan(&fid, &v.completed, &v.leechers, &v.seeders, &v.mtime); err != nil {
			t.Fatal(err)
		}
		out[fid] = v
	}
	return out
}

func readFileUsers(t testing.TB, db *gosql.DB) map[tracker.FileUserKey]tracker.FileUserDelta {
	t.Helper()
	rows, err := db.Query("SELECT fid, uid, active, announced, completed, downloaded, `left`, uploaded, mtime FROM xbt_files_users")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[tracker.FileUserKey]tracker.FileUserDelta{}
	for rows.Next() {
		var k tracker.FileUserKey
		var d tracker.FileUserDelta
		if err := rows.Scan(&k.Fid, &k.UID, &d.Active, &d.Announced, &d.Completed, &d.Downloaded, &d.Left, &d.Uploaded, &d.Mtime); err != nil {
			t.Fatal(err)
		}
		out[k] = d
	}
	return out
}

func count(t testing.TB, db *gosql.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func newBatch() *tracker.Batch {
	b := &tracker.Batch{}
	fill(b)
	return b
}

func TestWriterSumsAndOverwrites(t *testing.T) {
	ctx := context.Background()
	db, s, _ := writerDB(t, "")
	seedUsers(t, db, 1, 2)
	seedFiles(t, db, 10, 11)
	w := NewWriter(db, s, WriterOptions{})

	a := newBatch()
	a.Users[1] = tracker.UserDelta{Uploaded: 100, Downloaded: 10}
	a.Users[2] = tracker.UserDelta{Uploaded: 1 << 40, Downloaded: 0}
	a.Files[10] = tracker.FileDelta{Completed: 1, Seeders: 5, Leechers: 3, Mtime: 1000}
	a.FileUsers[tracker.FileUserKey{Fid: 10, UID: 1}] = tracker.FileUserDelta{Active: true, Announced: 2, Completed: 1, Uploaded: 100, Downloaded: 10, Left: 500, Mtime: 1000}
	a.NewFiles[hashOf(99)] = 1234
	if un, err := w.Write(ctx, a); err != nil || un != nil {
		t.Fatalf("Write: %v, unwritten %+v", err, un)
	}

	b := newBatch()
	b.Users[1] = tracker.UserDelta{Uploaded: 5, Downloaded: 7}
	b.Files[10] = tracker.FileDelta{Completed: 2, Seeders: 1, Leechers: 0, Mtime: 2000}
	b.Files[11] = tracker.FileDelta{Completed: 0, Seeders: 9, Leechers: 8, Mtime: 2000}
	b.FileUsers[tracker.FileUserKey{Fid: 10, UID: 1}] = tracker.FileUserDelta{Active: false, Announced: 1, Completed: 0, Uploaded: 5, Downloaded: 7, Left: 0, Mtime: 2000}
	b.FileUsers[tracker.FileUserKey{Fid: 11, UID: 2}] = tracker.FileUserDelta{Active: true, Announced: 1, Left: 9, Mtime: 2000}
	b.NewFiles[hashOf(99)] = 5678 // already inserted: INSERT IGNORE keeps the first
	if un, err := w.Write(ctx, b); err != nil || un != nil {
		t.Fatalf("Write: %v, unwritten %+v", err, un)
	}

	users := readUsers(t, db)
	if users[1] != (userTotals{down: 17, up: 105}) || users[2] != (userTotals{down: 0, up: 1 << 40}) {
		t.Fatalf("users = %+v", users)
	}
	files := readFiles(t, db)
	if files[10] != (fileRowDB{completed: 3, leechers: 0, seeders: 1, mtime: 2000}) || files[11] != (fileRowDB{completed: 0, leechers: 8, seeders: 9, mtime: 2000}) {
		t.Fatalf("files = %+v", files)
	}
	fu := readFileUsers(t, db)
	want := map[tracker.FileUserKey]tracker.FileUserDelta{
		{Fid: 10, UID: 1}: {Active: false, Announced: 3, Completed: 1, Uploaded: 105, Downloaded: 17, Left: 0, Mtime: 2000},
		{Fid: 11, UID: 2}: {Active: true, Announced: 1, Left: 9, Mtime: 2000},
	}
	if len(fu) != len(want) || fu[tracker.FileUserKey{Fid: 10, UID: 1}] != want[tracker.FileUserKey{Fid: 10, UID: 1}] ||
		fu[tracker.FileUserKey{Fid: 11, UID: 2}] != want[tracker.FileUserKey{Fid: 11, UID: 2}] {
		t.Fatalf("files_users = %+v\nwant %+v", fu, want)
	}
	h := hashOf(99)
	var ctime int64
	if err := db.QueryRow("SELECT ctime FROM xbt_files WHERE info_hash = ?", h[:]).Scan(&ctime); err != nil || ctime != 1234 {
		t.Fatalf("auto-registered torrent: ctime %d, %v", ctime, err)
	}
	if st := w.Stats(); st.UsersDropped != 0 || st.FilesUnmatched != 0 || st.Retries != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// A delta for a user or torrent the catalog deleted is dropped: no row is
// created (no ghost account), the write succeeds, and nothing is left over to
// retry forever.
func TestWriterDoesNotResurrectDeletedRows(t *testing.T) {
	ctx := context.Background()
	db, s, _ := writerDB(t, "")
	seedUsers(t, db, 1)
	seedFiles(t, db, 10)
	w := NewWriter(db, s, WriterOptions{})
	b := newBatch()
	b.Users[1] = tracker.UserDelta{Uploaded: 1}
	b.Users[77] = tracker.UserDelta{Uploaded: 5, Downloaded: 5}
	b.Files[10] = tracker.FileDelta{Seeders: 1, Mtime: 5}
	b.Files[88] = tracker.FileDelta{Completed: 1, Seeders: 1, Mtime: 5}
	un, err := w.Write(ctx, b)
	if err != nil || un != nil {
		t.Fatalf("Write: %v, %+v", err, un)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM xbt_users"); n != 1 {
		t.Fatalf("%d users: a delta for a deleted uid created a row", n)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM xbt_files"); n != 1 {
		t.Fatalf("%d files: a delta for a deleted fid created a row", n)
	}
	if st := w.Stats(); st.UsersDropped != 1 || st.FilesUnmatched != 1 {
		t.Fatalf("stats %+v: want 1 user dropped, 1 file unmatched", st)
	}
}

func TestWriterChunksInPrimaryKeyOrder(t *testing.T) {
	ctx := context.Background()
	db, s, _ := writerDB(t, "")
	var uids []uint32
	for i := uint32(1); i <= 10; i++ {
		uids = append(uids, i*7)
	}
	seedUsers(t, db, uids...)
	seedFiles(t, db, 1, 2)
	w := NewWriter(db, s, WriterOptions{MaxRowsPerStatement: 3})
	var mu sync.Mutex
	seen := map[string][][]any{}
	w.beforeCommit = func(table string, args []any) error {
		mu.Lock()
		seen[table] = append(seen[table], args)
		mu.Unlock()
		return nil
	}
	b := newBatch()
	for i := len(uids) - 1; i >= 0; i-- { // map order is random anyway
		b.Users[uids[i]] = tracker.UserDelta{Uploaded: uint64(uids[i])}
	}
	for _, fid := range []uint32{2, 1} {
		for _, uid := range []uint32{9, 3, 5} {
			b.FileUsers[tracker.FileUserKey{Fid: fid, UID: uid}] = tracker.FileUserDelta{Uploaded: 1, Mtime: 1}
		}
	}
	if un, err := w.Write(ctx, b); err != nil || un != nil {
		t.Fatalf("Write: %v %+v", err, un)
	}
	chunks := seen["xbt_users"]
	if len(chunks) != 4 {
		t.Fatalf("users written in %d statements, want 4 (10 rows, 3 per statement)", len(chunks))
	}
	var order []uint32
	for _, c := range chunks {
		if len(c) > 9 {
			t.Fatalf("chunk of %d args > 3 rows", len(c))
		}
		for i := 0; i < len(c); i += 3 {
			order = append(order, c[i].(uint32))
		}
	}
	for i := 1; i < len(order); i++ {
		if order[i] <= order[i-1] {
			t.Fatalf("users written in order %v, want ascending uid", order)
		}
	}
	var keys []tracker.FileUserKey
	for _, c := range seen["xbt_files_users"] {
		for i := 0; i < len(c); i += 9 {
			keys = append(keys, tracker.FileUserKey{Fid: c[i].(uint32), UID: c[i+1].(uint32)})
		}
	}
	for i := 1; i < len(keys); i++ {
		a, b := keys[i-1], keys[i]
		if a.Fid > b.Fid || a.Fid == b.Fid && a.UID >= b.UID {
			t.Fatalf("files_users written in order %v, want ascending (fid, uid)", keys)
		}
	}
	got := readUsers(t, db)
	for _, u := range uids {
		if got[u].up != uint64(u) {
			t.Fatalf("user %d uploaded %d", u, got[u].up)
		}
	}
	if st := w.Stats(); st.Statements != 4+2 || st.Rows != 16 {
		t.Fatalf("stats %+v: want 6 statements, 16 rows", st)
	}
}

// A failure injected in the middle of the users (2nd chunk of 4) and an
// injected failure at the very first chunk.
func TestWriterInjectedFailure(t *testing.T) {
	ctx := context.Background()
	db, s, _ := writerDB(t, "")
	var uids []uint32
	for i := uint32(1); i <= 10; i++ {
		uids = append(uids, i)
	}
	seedUsers(t, db, uids...)
	w := NewWriter(db, s, WriterOptions{MaxRowsPerStatement: 3})
	chunk := 0
	boom := errors.New("boom")
	w.beforeCommit = func(table string, args []any) error {
		chunk++
		if chunk == 2 {
			return boom
		}
		return nil
	}
	b := newBatch()
	for _, u := range uids {
		b.Users[u] = tracker.UserDelta{Uploaded: 1, Downloaded: 2}
	}
	un, err := w.Write(ctx, b)
	if !errors.Is(err, boom) || un == nil || len(un.Users) != 7 {
		t.Fatalf("err %v, unwritten %+v: want boom and users 4-10", err, un)
	}
	for u := uint32(4); u <= 10; u++ {
		if un.Users[u] != (tracker.UserDelta{Uploaded: 1, Downloaded: 2}) {
			t.Fatalf("unwritten user %d = %+v", u, un.Users[u])
		}
	}
	w.beforeCommit = nil
	if un, err := w.Write(ctx, un); err != nil || un != nil {
		t.Fatalf("rewrite: %v %+v", err, un)
	}
	for u, v := range readUsers(t, db) {
		if v != (userTotals{down: 2, up: 1}) {
			t.Fatalf("user %d = %+v", u, v)
		}
	}
}

// A row lock held by another connection (the catalog in a long transaction)
// makes the chunk time out (1205) and retry until the lock is released.
func TestWriterRetriesLockWaitTimeout(t *testing.T) {
	ctx := context.Background()
	db, s, _ := writerDB(t, "innodb_lock_wait_timeout=1")
	seedUsers(t, db, 1, 2, 3)
	catalog, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var uid int
	if err := catalog.QueryRow("SELECT uid FROM xbt_users WHERE uid = 2 FOR UPDATE").Scan(&uid); err != nil {
		t.Fatal(err)
	}
	w := NewWriter(db, s, WriterOptions{Backoff: 10 * time.Millisecond, MaxAttempts: 10})
	b := newBatch()
	for u := uint32(1); u <= 3; u++ {
		b.Users[u] = tracker.UserDelta{Uploaded: 10}
	}
	type result struct {
		un  *tracker.Batch
		err error
	}
	done := make(chan result, 1)
	go func() {
		un, err := w.Write(ctx, b)
		done <- result{un, err}
	}()
	time.Sleep(1500 * time.Millisecond)
	if err := catalog.Commit(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.un != nil {
		t.Fatalf("Write: %v %+v", r.err, r.un)
	}
	if st := w.Stats(); st.Retries < 1 {
		t.Fatalf("stats %+v: want at least one retry", st)
	}
	for u, v := range readUsers(t, db) {
		if v.up != 10 {
			t.Fatalf("user %d uploaded %d, want 10 (exactly once)", u, v.up)
		}
	}
}

// Retries are bounded: with the lock never released, Write gives up after
// MaxAttempts and returns everything.
func TestWriterGivesUpAfterMaxAttempts(t *testing.T) {
	ctx := context.Background()
	db, s, _ := writerDB(t, "innodb_lock_wait_timeout=1")
	seedUsers(t, db, 1)
	catalog, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer catalog.Rollback()
	if _, err := catalog.Exec("UPDATE xbt_users SET can_leech = 0 WHERE uid = 1"); err != nil {
		t.Fatal(err)
	}
	w := NewWriter(db, s, WriterOptions{Backoff: time.Millisecond, MaxAttempts: 2})
	b := newBatch()
	b.Users[1] = tracker.UserDelta{Uploaded: 10}
	un, err := w.Write(ctx, b)
	if err == nil || !strings.Contains(err.Error(), "gave up after 2 attempts") || un == nil || un.Users[1].Uploaded != 10 {
		t.Fatalf("err %v, unwritten %+v", err, un)
	}
	if st := w.Stats(); st.Retries != 1 {
		t.Fatalf("retries %d, want 1", st.Retries)
	}
}

func TestRetryable(t *testing.T) {
	for n, want := range map[uint16]bool{1213: true, 1205: true, 1062: false, 1146: false} {
		err := fmt.Errorf("x: %w", &mysql.MySQLError{Number: n})
		if retryable(err) != want {
			t.Errorf("retryable(%d) = %v", n, !want)
		}
	}
	if retryable(io.ErrUnexpectedEOF) || retryable(context.Canceled) {
		t.Error("connection errors and cancellation are not retried in place")
	}
}

// errLost stands for the connection dying while COMMIT was in flight.
var errLost = io.ErrUnexpectedEOF

func commitThenLose(string, *gosql.Tx) error { return errLost }

// The COMMIT reply is lost but the chunk did commit: Write reads the commit
// marker back, counts it as written and goes on; nothing is written twice.
func TestWriterCommitLostButCommitted(t *testing.T) {
	ctx := context.Background()
	db, s, _ := writerDB(t, "")
	seedUsers(t, db, 1, 2, 3, 4)
	w := NewWriter(db, s, WriterOptions{MaxRowsPerStatement: 2})
	n := 0
	w.commit = func(table string, tx *gosql.Tx) error {
		n++
		if err := tx.Commit(); err != nil {
			return err
		}
		if n == 1 {
			return errLost
		}
		return nil
	}
	b := newBatch()
	for u := uint32(1); u <= 4; u++ {
		b.Users[u] = tracker.UserDelta{Uploaded: 3}
	}
	if un, err := w.Write(ctx, b); err != nil || un != nil {
		t.Fatalf("Write: %v %+v", err, un)
	}
	for u, v := range readUsers(t, db) {
		if v.up != 3 {
			t.Fatalf("user %d uploaded %d, want 3", u, v.up)
		}
	}
	if st := w.Stats(); st.InDoubt != 1 || st.Statements != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// The COMMIT reply is lost and the chunk did not commit: it is returned as
// unwritten with every later row.
func TestWriterCommitLostNotCommitted(t *testing.T) {
	ctx := context.Background()
	db, s, _ := writerDB(t, "")
	seedUsers(t, db, 1, 2, 3, 4)
	w := NewWriter(db, s, WriterOptions{MaxRowsPerStatement: 2})
	n := 0
	w.commit = func(table string, tx *gosql.Tx) error {
		n++
		if n == 2 {
			_ = tx.Rollback()
			return errLost
		}
		return tx.Commit()
	}
	b := newBatch()
	for u := uint32(1); u <= 4; u++ {
		b.Users[u] = tracker.UserDelta{Uploaded: 3}
	}
	un, err := w.Write(ctx, b)
	if !errors.Is(err, errLost) || un == nil || len(un.Users) != 2 || un.Users[3].Uploaded != 3 || un.Users[4].Uploaded != 3 {
		t.Fatalf("err %v unwritten %+v: want users 3 and 4", err, un)
	}
	w.commit = nil
	if un, err := w.Write(ctx, un); err != nil || un != nil {
		t.Fatalf("rewrite: %v %+v", err, un)
	}
	for u, v := range readUsers(t, db) {
		if v.up != 3 {
			t.Fatalf("user %d uploaded %d, want 3", u, v.up)
		}
	}
}

// The COMMIT reply is lost and the database cannot be asked right away: the
// Writer holds the chunk, returns the later rows, and the next Write settles
// it (here: it had not committed, so it is written with the new batch).
func TestWriterCommitLostSettledLater(t *testing.T) {
	for _, committed := range []bool{false, true} {
		t.Run(fmt.Sprintf("committed=%v", committed), func(t *testing.T) {
			ctx := context.Background()
			db, s, _ := writerDB(t, "")
			seedUsers(t, db, 1, 2, 3, 4)
			w := NewWriter(db, s, WriterOptions{MaxRowsPerStatement: 2, Backoff: time.Millisecond})
			w.commit = func(table string, tx *gosql.Tx) error {
				if committed {
					_ = tx.Commit()
				} else {
					_ = tx.Rollback()
				}
				return errLost
			}
			down := errors.New("database unreachable")
			w.settleHook = func() error { return down }
			b := newBatch()
			for u := uint32(1); u <= 4; u++ {
				b.Users[u] = tracker.UserDelta{Uploaded: 3}
			}
			un, err := w.Write(ctx, b)
			if !errors.Is(err, ErrCommitUnknown) || un == nil || len(un.Users) != 2 || un.Users[3].Uploaded != 3 {
				t.Fatalf("err %v unwritten %+v: want ErrCommitUnknown and users 3, 4", err, un)
			}
			if w.InDoubt() != 2 {
				t.Fatalf("InDoubt = %d, want 2", w.InDoubt())
			}
			// Still unreachable: nothing written, everything handed back.
			again := newBatch()
			again.Users[1] = tracker.UserDelta{Uploaded: 100}
			un2, err := w.Write(ctx, again)
			if !errors.Is(err, ErrCommitUnknown) || un2 != again {
				t.Fatalf("err %v unwritten %+v", err, un2)
			}
			// Back: the held chunk is settled first.
			w.commit, w.settleHook = nil, nil
			next := tracker.MergeBatches(un, again)
			if un3, err := w.Write(ctx, next); err != nil || un3 != nil {
				t.Fatalf("Write: %v %+v", err, un3)
			}
			if w.InDoubt() != 0 {
				t.Fatalf("InDoubt = %d after settling", w.InDoubt())
			}
			got := readUsers(t, db)
			if got[1].up != 103 || got[2].up != 3 || got[3].up != 3 || got[4].up != 3 {
				t.Fatalf("users %+v: want 103, 3, 3, 3 (each delta exactly once)", got)
			}
		})
	}
}

// Without the commit marker table an unclear COMMIT cannot be settled: the
// chunk is dropped (never counted twice) and the error says why.
func TestWriterCommitLostWithoutMarker(t *testing.T) {
	ctx := context.Background()
	db, s, _ := writerDB(t, "")
	mustExec(t, db, "DROP TABLE xbt_tracker_writers")
	seedUsers(t, db, 1, 2)
	w := NewWriter(db, s, WriterOptions{MaxRowsPerStatement: 1})
	w.commit = func(table string, tx *gosql.Tx) error {
		_ = tx.Commit()
		return errLost
	}
	b := newBatch()
	b.Users[1] = tracker.UserDelta{Uploaded: 1}
	b.Users[2] = tracker.UserDelta{Uploaded: 2}
	un, err := w.Write(ctx, b)
	if err == nil || !strings.Contains(err.Error(), "migration 00003") || un == nil || len(un.Users) != 1 || un.Users[2].Uploaded != 2 {
		t.Fatalf("err %v unwritten %+v", err, un)
	}
	if st := w.Stats(); st.InDoubtDropped != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// A cancelled context stops Write before the next chunk; what was not
// written comes back.
func TestWriterContextDone(t *testing.T) {
	db, s, _ := writerDB(t, "")
	seedUsers(t, db, 1, 2, 3)
	w := NewWriter(db, s, WriterOptions{MaxRowsPerStatement: 1})
	ctx, cancel := context.WithCancel(context.Background())
	w.beforeCommit = func(string, []any) error { cancel(); return nil }
	b := newBatch()
	for u := uint32(1); u <= 3; u++ {
		b.Users[u] = tracker.UserDelta{Uploaded: 1}
	}
	un, err := w.Write(ctx, b)
	if !errors.Is(err, context.Canceled) || un == nil || len(un.Users) != 2 {
		t.Fatalf("err %v unwritten %+v: want the 2 rows after the first chunk", err, un)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM xbt_users WHERE uploaded = 1"); n != 1 {
		t.Fatalf("%d users written, want 1", n)
	}
}

// WriteOptions.ChunkPause spaces the chunks out; a cancellation during a pause ends
// the Write with exactly the chunks not yet written as unwritten.
func TestWriterChunkPause(t *testing.T) {
	db, s, _ := writerDB(t, "")
	seedUsers(t, db, 1, 2, 3)
	w := NewWriter(db, s, WriterOptions{MaxRowsPerStatement: 1})
	var commits []time.Time
	w.beforeCommit = func(string, []any) error { commits = append(commits, time.Now()); return nil }
	b := newBatch()
	for u := uint32(1); u <= 3; u++ {
		b.Users[u] = tracker.UserDelta{Uploaded: 1}
	}
	const gap = 50 * time.Millisecond
	if un, err := w.WriteWith(context.Background(), b, WriteOptions{ChunkPause: gap}); err != nil || un != nil {
		t.Fatalf("write: %v %+v", err, un)
	}
	if len(commits) != 3 {
		t.Fatalf("%d chunks, want 3", len(commits))
	}
	for i := 1; i < len(commits); i++ {
		if d := commits[i].Sub(commits[i-1]); d < gap {
			t.Fatalf("chunks %d and %d %v apart, want >= %v", i-1, i, d, gap)
		}
	}

	// Cancelled during the pause after the first chunk.
	ctx, cancel := context.WithCancel(context.Background())
	w.beforeCommit = func(string, []any) error { time.AfterFunc(10*time.Millisecond, cancel); return nil }
	b = newBatch()
	for u := uint32(1); u <= 3; u++ {
		b.Users[u] = tracker.UserDelta{Uploaded: 1}
	}
	start := time.Now()
	un, err := w.WriteWith(ctx, b, WriteOptions{ChunkPause: time.Hour})
	if !errors.Is(err, context.Canceled) || un == nil || len(un.Users) != 2 {
		t.Fatalf("err %v unwritten %+v: want the 2 rows after the first chunk", err, un)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("cancelled write took %v: the pause did not end with ctx", d)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM xbt_users WHERE uploaded = 2"); n != 1 {
		t.Fatalf("%d users written twice, want 1", n)
	}
}

func TestWriterLogs(t *testing.T) {
	ctx := context.Background()
	db, s, _ := writerDB(t, "")
	w := NewWriter(db, s, WriterOptions{})
	b := newBatch()
	var pid tracker.PeerID
	copy(pid[:], "-qB4650-abcdefghijkl")
	b.AnnounceLog = []tracker.AnnounceLogEntry{
		{Addr: netip.MustParseAddr("192.0.2.10"), Port: 6881, Event: tracker.EventStarted, InfoHash: hashOf(1), PeerID: pid, Uploaded: 1, Downloaded: 2, Left: 3, UID: 7, Mtime: 100},
		{Addr: netip.MustParseAddr("2001:db8::1"), Port: 6882, Event: tracker.EventCompleted, InfoHash: hashOf(2), PeerID: pid, UID: 8, Mtime: 101},
		{Addr: netip.MustParseAddr("2001:db8::2"), Port: 6883, Event: tracker.EventStopped, UID: 9, Mtime: 102},
		{Addr: netip.MustParseAddr("2001:db8::3"), Port: 6884, Event: tracker.EventPaused, UID: 9, Mtime: 103},
	}
	b.ScrapeLog = []tracker.ScrapeLogEntry{
		{Addr: netip.MustParseAddr("198.51.100.1"), InfoHash: hashOf(3), UID: 7, Mtime: 200},
		{Addr: netip.MustParseAddr("2001:db8::9"), UID: 0, Mtime: 201},
	}
	if un, err := w.Write(ctx, b); err != nil || un != nil {
		t.Fatalf("Write: %v %+v", err, un)
	}
	rows, err := db.Query("SELECT ipa, ipv6, port, event, info_hash, peer_id, downloaded, left0, uploaded, uid, mtime FROM xbt_announce_log ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var ipa uint32
		var ipv6, ih, peer []byte
		var port, event, uid int
		var down, left, up uint64
		var mtime int64
		if err := rows.Scan(&ipa, &ipv6, &port, &event, &ih, &peer, &down, &left, &up, &uid, &mtime); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d %x %d %d %s %d %d %d %d %d", ipa, ipv6, port, event, peer, down, left, up, uid, mtime))
	}
	want := []string{
		"3221225994  6881 2 -qB4650-abcdefghijkl 2 3 1 7 100",
		"0 20010db8000000000000000000000001 6882 1 -qB4650-abcdefghijkl 0 0 0 8 101",
		"0 20010db8000000000000000000000002 6883 3 " + strings.Repeat("\x00", 20) + " 0 0 0 9 102",
		"0 20010db8000000000000000000000003 6884 0 " + strings.Repeat("\x00", 20) + " 0 0 0 9 103",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("announce log:\n%q\nwant\n%q", got, want)
	}
	var ipa uint32
	var ipv6, ih []byte
	if err := db.QueryRow("SELECT ipa, ipv6, info_hash FROM xbt_scrape_log WHERE uid = 7").Scan(&ipa, &ipv6, &ih); err != nil {
		t.Fatal(err)
	}
	h := hashOf(3)
	if ipa != 3325256705 || len(ipv6) != 0 || string(ih) != string(h[:]) {
		t.Fatalf("scrape log row: %d %x %q", ipa, ipv6, ih)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM xbt_scrape_log WHERE ipa = 0 AND LENGTH(ipv6) = 16"); n != 1 {
		t.Fatalf("IPv6 scrape log rows %d", n)
	}
}

// Without log tables the entries are dropped (CheckSchema warned), not
// returned as unwritten forever.
func TestWriterWithoutLogTables(t *testing.T) {
	ctx := context.Background()
	db, _, _ := writerDB(t, "")
	mustExec(t, db, "DROP TABLE xbt_announce_log")
	mustExec(t, db, "DROP TABLE xbt_scrape_log")
	s, _, err := CheckSchema(ctx, db, DefaultNames())
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter(db, s, WriterOptions{})
	b := newBatch()
	b.AnnounceLog = []tracker.AnnounceLogEntry{{UID: 1}}
	b.ScrapeLog = []tracker.ScrapeLogEntry{{UID: 1}}
	if un, err := w.Write(ctx, b); err != nil || un != nil {
		t.Fatalf("Write: %v %+v", err, un)
	}
}

// XBT HEAD-style files_users: keyed by tid, no announced column.
func TestWriterHEADFilesUsers(t *testing.T) {
	ctx := context.Background()
	db, _, _ := writerDB(t, "")
	mustExec(t, db, "CREATE TABLE xbt_peers (tid int NOT NULL, uid int NOT NULL, active tinyint NOT NULL, completed int NOT NULL, downloaded bigint unsigned NOT NULL, `left` bigint unsigned NOT NULL, uploaded bigint unsigned NOT NULL, mtime int NOT NULL, PRIMARY KEY (tid, uid), KEY (uid))")
	n := DefaultNames()
	n.FilesUsers = "xbt_peers"
	s, _, err := CheckSchema(ctx, db, n)
	if err != nil || s.FilesUsersFid != "tid" || s.HasAnnounced {
		t.Fatalf("schema %+v %v", s, err)
	}
	w := NewWriter(db, s, WriterOptions{})
	for i := 0; i < 2; i++ {
		b := newBatch()
		b.FileUsers[tracker.FileUserKey{Fid: 3, UID: 4}] = tracker.FileUserDelta{Active: true, Announced: 1, Uploaded: 5, Downloaded: 6, Left: 7, Mtime: int64(10 + i)}
		if un, err := w.Write(ctx, b); err != nil || un != nil {
			t.Fatalf("Write: %v %+v", err, un)
		}
	}
	var up, down, left uint64
	var mtime int
	if err := db.QueryRow("SELECT uploaded, downloaded, `left`, mtime FROM xbt_peers WHERE tid = 3 AND uid = 4").Scan(&up, &down, &left, &mtime); err != nil {
		t.Fatal(err)
	}
	if up != 10 || down != 12 || left != 7 || mtime != 11 {
		t.Fatalf("xbt_peers row: %d %d %d %d", up, down, left, mtime)
	}
}

func TestWriterDeleteFiles(t *testing.T) {
	ctx := context.Background()
	db, s, _ := writerDB(t, "")
	seedFiles(t, db, 1, 2, 3, 4)
	mustExec(t, db, "UPDATE xbt_files SET flags = 1 WHERE fid IN (1, 2, 3)")
	mustExec(t, db, "UPDATE xbt_files SET flags = 0 WHERE fid = 3") // the catalog changed its mind
	w := NewWriter(db, s, WriterOptions{MaxRowsPerStatement: 1})
	if err := w.DeleteFiles(ctx, []uint32{3, 2, 1, 4, 2}); err != nil {
		t.Fatal(err)
	}
	files := readFiles(t, db)
	if len(files) != 2 {
		t.Fatalf("files left %v: want 3 (un-flagged) and 4 (never flagged)", files)
	}
	if _, ok := files[3]; !ok {
		t.Fatal("fid 3 was un-flagged and must stay")
	}
}

func TestWriterChunkRowsRespectsPacketAndPlaceholders(t *testing.T) {
	w := NewWriter(nil, Schema{}, WriterOptions{MaxRowsPerStatement: 100000})
	p := &fileUserPart{fileUserCols: fileUserCols{announced: true}}
	if n := w.chunkRows(p); n != 65535/9 {
		t.Fatalf("chunkRows = %d, want %d (placeholder limit)", n, 65535/9)
	}
	w.env = &writerEnv{maxPacket: 64 << 10}
	n := w.chunkRows(p)
	if n*p.rowBytes()+p.fixedBytes() > 64<<10 || n < 100 {
		t.Fatalf("chunkRows = %d with a 64 KiB packet", n)
	}
	w.env.maxPacket = 1024
	if n := w.chunkRows(p); n != 1 {
		t.Fatalf("chunkRows = %d with a tiny packet, want 1", n)
	}
}

// Built statements stay under the estimate chunkRows relies on.
func TestWriterStatementSizeEstimate(t *testing.T) {
	e := &writerEnv{names: DefaultNames(), users: "`xbt_users`", files: "`xbt_files`", filesUsers: "`xbt_files_users`",
		announceLog: "`xbt_announce_log`", uid: "`uid`", fid: "`fid`", fuFid: "`fid`", leechers: "`leechers`", seeders: "`seeders`", completed: "`completed`",
		announceCols: announceLogColumns, announceIPA: true}
	b := newBatch()
	const n = 50
	var worst tracker.InfoHash
	for i := range worst {
		worst[i] = '\'' // escaped to two characters each
	}
	for i := uint32(1); i <= n; i++ {
		b.Users[i] = tracker.UserDelta{Uploaded: ^uint64(0), Downloaded: ^uint64(0)}
		b.Files[i] = tracker.FileDelta{Completed: ^uint64(0), Seeders: -1 << 62, Leechers: -1 << 62, Mtime: -1 << 62}
		b.FileUsers[tracker.FileUserKey{Fid: ^uint32(0) - i, UID: ^uint32(0)}] = tracker.FileUserDelta{Announced: ^uint64(0), Completed: ^uint64(0), Uploaded: ^uint64(0), Downloaded: ^uint64(0), Left: ^uint64(0), Mtime: -1 << 62}
		h := worst
		h[0] = byte(i)
		b.NewFiles[h] = -1 << 62
		b.AnnounceLog = append(b.AnnounceLog, tracker.AnnounceLogEntry{Addr: netip.MustParseAddr("2001:db8::1"), InfoHash: worst, Uploaded: ^uint64(0), Downloaded: ^uint64(0), Left: ^uint64(0), UID: ^uint32(0), Mtime: -1 << 62})
	}
	w := &Writer{env: e, s: Schema{Names: DefaultNames(), HasAnnounced: true, HasAnnounceLog: true}}
	for _, p := range w.plan(b) {
		q, args, err := p.build(0, p.len())
		if err != nil {
			t.Fatal(err)
		}
		text, err := interpolateForTest(q, args)
		if err != nil {
			t.Fatal(err)
		}
		if limit := p.fixedBytes() + n*p.rowBytes(); len(text) > limit {
			t.Errorf("%s: %d rows interpolate to %d bytes, estimate %d", p.table(), n, len(text), limit)
		}
	}
}

// interpolateForTest approximates go-sql-driver's interpolation (integers as
// decimal, []byte as _binary'...' with escapes) to measure statement text.
func interpolateForTest(q string, args []any) (string, error) {
	var sb strings.Builder
	i := 0
	for _, c := range []byte(q) {
		if c != '?' {
			sb.WriteByte(c)
			continue
		}
		if i >= len(args) {
			return "", errors.New("too few args")
		}
		switch v := args[i].(type) {
		case []byte:
			sb.WriteString("_binary'")
			for _, b := range v {
				switch b {
				case 0, '\n', '\r', '\\', '\'', '"', 0x1a:
					sb.WriteString(`\x`)
				default:
					sb.WriteByte(b)
				}
			}
			sb.WriteByte('\'')
		default:
			fmt.Fprint(&sb, v)
		}
		i++
	}
	return sb.String(), nil
}

// Two instances of a cluster writing the same rows (a torrent moving from
// one to the other): the counts of xbt_files and active/left of
// xbt_files_users are those of the newer announce, whatever order the
// writes arrive in; summed columns add up from both.
func TestWriterClusterNewestWins(t *testing.T) {
	ctx := context.Background()
	db, s, _ := writerDB(t, "")
	seedUsers(t, db, 1)
	seedFiles(t, db, 10)
	oldOwner := NewWriter(db, s, WriterOptions{Cluster: true})
	newOwner := NewWriter(db, s, WriterOptions{Cluster: true})
	key := tracker.FileUserKey{Fid: 10, UID: 1}
	write := func(w *Writer, f tracker.FileDelta, fu tracker.FileUserDelta) {
		t.Helper()
		b := newBatch()
		b.Files[10] = f
		b.FileUsers[key] = fu
		if un, err := w.Write(ctx, b); err != nil || un != nil {
			t.Fatalf("Write: %v, unwritten %+v", err, un)
		}
	}
	// The old owner's announce, then the new owner's newer one.
	write(oldOwner, tracker.FileDelta{Completed: 1, Seeders: 5, Leechers: 3, Mtime: 1000},
		tracker.FileUserDelta{Active: true, Announced: 1, Uploaded: 100, Left: 50, Mtime: 1000})
	write(newOwner, tracker.FileDelta{Completed: 1, Seeders: 2, Leechers: 1, Mtime: 2000},
		tracker.FileUserDelta{Active: true, Announced: 1, Uploaded: 10, Left: 40, Mtime: 2000})
	// The old owner's expiry, carrying its last announce time: too old.
	write(oldOwner, tracker.FileDelta{Completed: 2, Seeders: 0, Leechers: 0, Mtime: 1500},
		tracker.FileUserDelta{Active: false, Uploaded: 1, Left: 50, Mtime: 1500})
	files := readFiles(t, db)
	if want := (fileRowDB{completed: 4, leechers: 1, seeders: 2, mtime: 2000}); files[10] != want {
		t.Fatalf("files after the old owner's late write = %+v, want %+v", files[10], want)
	}
	fu := readFileUsers(t, db)[key]
	if want := (tracker.FileUserDelta{Active: true, Announced: 2, Uploaded: 111, Left: 40, Mtime: 2000}); fu != want {
		t.Fatalf("files_users after the old owner's late write = %+v, want %+v", fu, want)
	}
	// The same second counts as newer: an instance's own expiry carries
	// the time of the announce it wrote last.
	write(newOwner, tracker.FileDelta{Seeders: 0, Leechers: 0, Mtime: 2000},
		tracker.FileUserDelta{Active: false, Left: 40, Mtime: 2000})
	if got := readFiles(t, db)[10]; got != (fileRowDB{completed: 4, mtime: 2000}) {
		t.Fatalf("files after the owner's own expiry = %+v", got)
	}
	if got := readFileUsers(t, db)[key]; got.Active || got.Uploaded != 111 {
		t.Fatalf("files_users after the owner's own expiry = %+v", got)
	}

	// Without Cluster the last write wins, as XBT does.
	single := NewWriter(db, s, WriterOptions{})
	write(single, tracker.FileDelta{Seeders: 7, Leechers: 7, Mtime: 500},
		tracker.FileUserDelta{Active: true, Left: 1, Mtime: 500})
	if got := readFiles(t, db)[10]; got != (fileRowDB{completed: 4, leechers: 7, seeders: 7, mtime: 500}) {
		t.Fatalf("files, single instance = %+v", got)
	}
}
