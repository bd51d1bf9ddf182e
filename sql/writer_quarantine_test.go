package sql

import (
	"context"
	gosql "database/sql"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// testClock is a settable clock for the quarantine's schedule.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestRowError: which server answers isolate rows and which fail the write.
func TestRowError(t *testing.T) {
	tests := []struct {
		err      error
		row, oor bool
	}{
		{&mysql.MySQLError{Number: 1690}, true, true},
		{&mysql.MySQLError{Number: 1264}, true, true},
		{&mysql.MySQLError{Number: 1644}, true, false}, // SIGNAL in a trigger
		{&mysql.MySQLError{Number: 1452}, true, false}, // foreign key
		{&mysql.MySQLError{Number: 1406}, true, false}, // data too long
		{&mysql.MySQLError{Number: 4025}, true, false}, // CHECK constraint (MariaDB)
		{&mysql.MySQLError{Number: 1213}, false, false},
		{&mysql.MySQLError{Number: 1205}, false, false},
		{&mysql.MySQLError{Number: 1142}, false, false}, // UPDATE command denied: every row alike
		{&mysql.MySQLError{Number: 1146}, false, false},
		{&mysql.MySQLError{Number: 1290}, false, false}, // read-only server
		{&mysql.MySQLError{Number: 2013}, false, false}, // "lost connection", as a proxy may answer
		{io.ErrUnexpectedEOF, false, false},
		{context.DeadlineExceeded, false, false},
		{fmt.Errorf("write x: %w", &mysql.MySQLError{Number: 1644}), true, false},
	}
	for _, tc := range tests {
		if got := rowError(tc.err); got != tc.row {
			t.Errorf("rowError(%v) = %v, want %v", tc.err, got, tc.row)
		}
		if got := outOfRange(tc.err); got != tc.oor {
			t.Errorf("outOfRange(%v) = %v, want %v", tc.err, got, tc.oor)
		}
	}
}

func TestColumnMax(t *testing.T) {
	for typ, want := range map[string]uint64{
		"bigint(20) unsigned": math.MaxUint64,
		"bigint unsigned":     math.MaxUint64,
		"bigint(20)":          math.MaxInt64,
		"int(11)":             math.MaxInt32,
		"int(10) unsigned":    math.MaxUint32,
		"tinyint(1)":          127,
		"smallint unsigned":   65535,
		"mediumint(9)":        1<<23 - 1,
		"decimal(30,0)":       math.MaxUint64,
		"":                    math.MaxUint64,
	} {
		if got := columnMax(typ); got != want {
			t.Errorf("columnMax(%q) = %d, want %d", typ, got, want)
		}
	}
}

// A user whose xbt_users.uploaded is near 2^64 among honest ones: the
// honest rows are written exactly in the same Write, the poisoned sum
// saturates at the column's maximum (counted and logged once), and later
// writes of that user go straight to the saturating statement.
func TestWriterSaturatesAtTheColumnMaximum(t *testing.T) {
	ctx := context.Background()
	db, s, _ := writerDB(t, "")
	seedUsers(t, db, 1, 2, 3, 4, 5)
	seedFiles(t, db, 1)
	mustExec(t, db, "UPDATE xbt_users SET uploaded = 18446744073709551615 - 1000 WHERE uid = 3")
	mustExec(t, db, "INSERT INTO xbt_files_users (fid, uid, active, announced, completed, downloaded, `left`, uploaded, mtime) VALUES (1, 3, 1, 1, 0, 0, 0, 18446744073709551615 - 10, 1)")
	core, logs := observer.New(zap.InfoLevel)
	w := NewWriter(db, s, WriterOptions{MaxRowsPerStatement: 250, Logger: zap.New(core)})
	for round := 1; round <= 2; round++ {
		b := newBatch()
		for u := uint32(1); u <= 5; u++ {
			b.Users[u] = tracker.UserDelta{Uploaded: 5000, Downloaded: 7}
			b.FileUsers[tracker.FileUserKey{Fid: 1, UID: u}] = tracker.FileUserDelta{Active: true, Announced: 1, Uploaded: 5000, Mtime: 100}
		}
		if un, err := w.Write(ctx, b); err != nil || un != nil {
			t.Fatalf("round %d: Write: %v %+v", round, err, un)
		}
		users := readUsers(t, db)
		fu := readFileUsers(t, db)
		for u := uint32(1); u <= 5; u++ {
			wantUp := uint64(round) * 5000
			wantFU := wantUp
			if u == 3 {
				wantUp, wantFU = math.MaxUint64, math.MaxUint64
			}
			if users[u].up != wantUp || users[u].down != uint64(round)*7 {
				t.Fatalf("round %d: user %d = %+v, want up %d down %d", round, u, users[u], wantUp, round*7)
			}
			if got := fu[tracker.FileUserKey{Fid: 1, UID: u}]; got.Uploaded != wantFU || got.Announced != uint64(round) && u != 3 {
				t.Fatalf("round %d: files_users (1,%d) = %+v, want uploaded %d", round, u, got, wantFU)
			}
		}
	}
	st := w.Stats()
	if st.Clamped != 4 || st.Quarantined != 0 {
		t.Fatalf("stats %+v: want 4 clamped rows (2 tables x 2 rounds), none quarantined", st)
	}
	if n := logs.FilterMessageSnippet("saturated").Len(); n != 2 {
		t.Fatalf("%d saturation lines, want one per key:\n%v", n, logs.All())
	}
}

// A row the catalog's own trigger refuses: every other row is written in
// the same Write, the refused one is quarantined (one warning naming table
// and key), newer deltas of its key join it without failing a statement,
// and it is retried alone on schedule: written once the catalog relents,
// with every byte, exactly once.
func TestWriterQuarantinesARefusedRow(t *testing.T) {
	ctx := context.Background()
	db, s, _ := writerDB(t, "")
	var uids []uint32
	for u := uint32(1); u <= 10; u++ {
		uids = append(uids, u)
	}
	seedUsers(t, db, uids...)
	mustExec(t, db, `CREATE TRIGGER catalog_refuses BEFORE UPDATE ON xbt_users FOR EACH ROW
		IF NEW.uid = 5 THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'catalog refuses uid 5'; END IF`)
	core, logs := observer.New(zap.InfoLevel)
	w := NewWriter(db, s, WriterOptions{MaxRowsPerStatement: 4, Logger: zap.New(core)})
	clk := &testClock{t: time.Unix(1_700_000_000, 0)}
	w.now = clk.now
	var statements int
	w.beforeCommit = func(string, []any) error { statements++; return nil }

	write := func(up uint64) {
		t.Helper()
		b := newBatch()
		for _, u := range uids {
			b.Users[u] = tracker.UserDelta{Uploaded: up}
		}
		b.AnnounceLog = []tracker.AnnounceLogEntry{{Addr: netip.MustParseAddr("192.0.2.1"), Port: 1, UID: 1, Mtime: 100}}
		if un, err := w.Write(ctx, b); err != nil || un != nil {
			t.Fatalf("Write: %v %+v", err, un)
		}
	}
	write(100)
	users := readUsers(t, db)
	for _, u := range uids {
		want := uint64(100)
		if u == 5 {
			want = 0
		}
		if users[u].up != want {
			t.Fatalf("user %d uploaded %d, want %d", u, users[u].up, want)
		}
	}
	if n := count(t, db, "SELECT COUNT(*) FROM xbt_announce_log"); n != 1 {
		t.Fatalf("announce log rows %d: a later part must not be held back", n)
	}
	if w.Quarantined() != 1 || w.Stats().Quarantined != 1 {
		t.Fatalf("quarantined %d, stats %+v", w.Quarantined(), w.Stats())
	}
	q := logs.FilterMessageSnippet("quarantined a row").All()
	if len(q) != 1 || q[0].Level != zap.WarnLevel || q[0].ContextMap()["table"] != "xbt_users" || q[0].ContextMap()["key"] != "uid=5" {
		t.Fatalf("quarantine log lines %+v", q)
	}

	// The next flush: uid 5's new delta joins the quarantine; no statement
	// fails for it (one chunk of 4 users x 3 minus uid 5 = 3 chunks + log).
	statements = 0
	write(10)
	if statements != 4 || w.Quarantined() != 1 {
		t.Fatalf("%d statements, %d quarantined: want 4 and 1 (uid 5 diverted)", statements, w.Quarantined())
	}
	if got := readUsers(t, db)[5].up; got != 0 {
		t.Fatalf("uid 5 uploaded %d before its retry", got)
	}

	// Not due yet: an empty Write does nothing.
	clk.add(QuarantineRetry - time.Second)
	if un, err := w.Write(ctx, nil); err != nil || un != nil || w.Quarantined() != 1 {
		t.Fatalf("early retry: %v %+v %d", err, un, w.Quarantined())
	}
	// Due, still refused: kept.
	clk.add(time.Second)
	if un, err := w.Write(ctx, nil); err != nil || un != nil || w.Quarantined() != 1 {
		t.Fatalf("retry while refused: %v %+v %d", err, un, w.Quarantined())
	}
	// The catalog relents: the next retry writes both deltas, once.
	mustExec(t, db, "DROP TRIGGER catalog_refuses")
	clk.add(QuarantineRetry)
	if un, err := w.Write(ctx, nil); err != nil || un != nil {
		t.Fatalf("retry: %v %+v", err, un)
	}
	if w.Quarantined() != 0 || w.Stats().QuarantineWritten != 1 {
		t.Fatalf("quarantined %d, stats %+v", w.Quarantined(), w.Stats())
	}
	for u, v := range readUsers(t, db) {
		if v.up != 110 {
			t.Fatalf("user %d uploaded %d, want 110 (each delta exactly once)", u, v.up)
		}
	}
}

// A row refused for longer than QuarantineKeep is given up (error line with
// its values); FinishQuarantine gives up on the rest at stop.
func TestWriterGivesUpQuarantinedRows(t *testing.T) {
	ctx := context.Background()
	db, s, _ := writerDB(t, "")
	seedUsers(t, db, 1, 2, 3)
	mustExec(t, db, `CREATE TRIGGER catalog_refuses BEFORE UPDATE ON xbt_users FOR EACH ROW
		IF NEW.uid IN (1, 3) THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'no'; END IF`)
	core, logs := observer.New(zap.InfoLevel)
	w := NewWriter(db, s, WriterOptions{Logger: zap.New(core)})
	clk := &testClock{t: time.Unix(1_700_000_000, 0)}
	w.now = clk.now
	b := newBatch()
	b.Users[1] = tracker.UserDelta{Uploaded: 11, Downloaded: 12}
	b.Users[2] = tracker.UserDelta{Uploaded: 21}
	if un, err := w.Write(ctx, b); err != nil || un != nil || w.Quarantined() != 1 {
		t.Fatalf("Write: %v %+v %d", err, un, w.Quarantined())
	}
	clk.add(QuarantineKeep / 2)
	b = newBatch()
	b.Users[3] = tracker.UserDelta{Uploaded: 31}
	if un, err := w.Write(ctx, b); err != nil || un != nil || w.Quarantined() != 2 {
		t.Fatalf("Write: %v %+v %d", err, un, w.Quarantined())
	}
	clk.add(QuarantineKeep / 2)
	if un, err := w.Write(ctx, nil); err != nil || un != nil {
		t.Fatalf("Write: %v %+v", err, un)
	}
	if w.Quarantined() != 1 || w.Stats().QuarantineGivenUp != 1 {
		t.Fatalf("after an hour: quarantined %d, stats %+v: want uid 1 given up, uid 3 kept", w.Quarantined(), w.Stats())
	}
	gone := logs.FilterMessageSnippet("GAVE UP").All()
	if len(gone) != 1 || gone[0].Level != zap.ErrorLevel || gone[0].ContextMap()["key"] != "uid=1" ||
		gone[0].ContextMap()["uploaded"] != uint64(11) || gone[0].ContextMap()["downloaded"] != uint64(12) {
		t.Fatalf("give-up lines %+v", gone)
	}
	if n := w.FinishQuarantine(ctx); n != 1 || w.Quarantined() != 0 {
		t.Fatalf("FinishQuarantine = %d, %d left", n, w.Quarantined())
	}
	if n := logs.FilterMessageSnippet("GAVE UP").Len(); n != 2 {
		t.Fatalf("%d give-up lines, want 2", n)
	}
	if got := readUsers(t, db); got[2].up != 21 || got[1].up != 0 || got[3].up != 0 {
		t.Fatalf("users %+v", got)
	}
}

// A statement-wide refusal (no UPDATE privilege here is simulated by a
// missing table) isolates nothing: the whole batch comes back unwritten.
func TestWriterStatementErrorIsNotQuarantined(t *testing.T) {
	ctx := context.Background()
	db, s, _ := writerDB(t, "")
	seedUsers(t, db, 1, 2)
	w := NewWriter(db, s, WriterOptions{})
	w.beforeCommit = func(string, []any) error {
		return &mysql.MySQLError{Number: 1142, Message: "UPDATE command denied to user"}
	}
	b := newBatch()
	b.Users[1] = tracker.UserDelta{Uploaded: 1}
	b.Users[2] = tracker.UserDelta{Uploaded: 2}
	un, err := w.Write(ctx, b)
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1142 || un == nil || len(un.Users) != 2 || w.Quarantined() != 0 {
		t.Fatalf("err %v, unwritten %+v, quarantined %d", err, un, w.Quarantined())
	}
}

// An error reply to a COMMIT the server did commit (a proxy such as
// ProxySQL or MaxScale may answer 2013 when a backend dies mid-COMMIT) is
// settled through the commit marker like a lost connection: the bytes count
// once. An error reply to a COMMIT that did not commit is written again.
func TestWriterCommitErrorReplySettledByMarker(t *testing.T) {
	for _, committed := range []bool{true, false} {
		t.Run(fmt.Sprintf("committed=%v", committed), func(t *testing.T) {
			ctx := context.Background()
			db, s, _ := writerDB(t, "")
			seedUsers(t, db, 1, 2)
			core, logs := observer.New(zap.InfoLevel)
			w := NewWriter(db, s, WriterOptions{Logger: zap.New(core)})
			w.commit = func(_ string, tx *gosql.Tx) error {
				w.commit = nil // the first COMMIT only
				if committed {
					if err := tx.Commit(); err != nil {
						return err
					}
				} else {
					_ = tx.Rollback()
				}
				return &mysql.MySQLError{Number: 2013, Message: "Lost connection to MySQL server during query"}
			}
			b := newBatch()
			b.Users[1] = tracker.UserDelta{Uploaded: 1_000_000}
			b.Users[2] = tracker.UserDelta{Uploaded: 2}
			un, err := w.Write(ctx, b)
			if committed {
				if err != nil || un != nil {
					t.Fatalf("Write: %v %+v", err, un)
				}
			} else {
				if err == nil || un == nil || len(un.Users) != 2 {
					t.Fatalf("Write: %v %+v: want both users back", err, un)
				}
				if un, err = w.Write(ctx, un); err != nil || un != nil {
					t.Fatalf("rewrite: %v %+v", err, un)
				}
			}
			if got := readUsers(t, db); got[1].up != 1_000_000 || got[2].up != 2 {
				t.Fatalf("users %+v: want 1000000 and 2 (once)", got)
			}
			want := "not committed"
			if committed {
				want = "committed"
			}
			l := logs.FilterMessageSnippet("commit outcome unknown").All()
			if len(l) != 1 || l[0].ContextMap()["settled"] != want || l[0].Level < zap.InfoLevel {
				t.Fatalf("log %+v: want one line settled %q", l, want)
			}
		})
	}
}

// A COMMIT that does not answer (the database hung) is given up on at the
// write's deadline, not at the driver's 30 s read timeout: the chunk is held
// as in doubt and settled by the next Write once the database answers.
func TestWriterCommitWithoutAnswerKeepsTheDeadline(t *testing.T) {
	db, s, _ := writerDB(t, "")
	seedUsers(t, db, 1)
	w := NewWriter(db, s, WriterOptions{})
	release := make(chan struct{})
	committed := make(chan struct{})
	w.commit = func(_ string, tx *gosql.Tx) error {
		<-release
		err := tx.Commit()
		close(committed)
		return err
	}
	b := newBatch()
	b.Users[1] = tracker.UserDelta{Uploaded: 5}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	un, err := w.Write(ctx, b)
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Write took %v with a 300ms deadline", took)
	}
	if !errors.Is(err, ErrCommitUnknown) || un.Len() != 0 || w.InDoubt() != 1 {
		t.Fatalf("err %v, unwritten %+v, in doubt %d: want the chunk held", err, un, w.InDoubt())
	}
	w.commit = nil
	close(release)
	<-committed
	if un, err := w.Write(context.Background(), nil); err != nil || un != nil || w.InDoubt() != 0 {
		t.Fatalf("settling Write: %v %+v %d", err, un, w.InDoubt())
	}
	if got := readUsers(t, db)[1].up; got != 5 {
		t.Fatalf("uploaded %d, want 5 (once)", got)
	}
}
