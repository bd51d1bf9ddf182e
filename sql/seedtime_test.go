package sql

import (
	"context"
	gosql "database/sql"
	"testing"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// readTime returns column col (timespent or leechtime) of the
// xbt_files_users row (fid, uid).
func readTime(t *testing.T, db *gosql.DB, col string, fid, uid uint32) uint64 {
	t.Helper()
	var v uint64
	if err := db.QueryRow("SELECT `"+col+"` FROM xbt_files_users WHERE fid = ? AND uid = ?", fid, uid).Scan(&v); err != nil {
		t.Fatalf("read %s of (%d,%d): %v", col, fid, uid, err)
	}
	return v
}

// writeTimes writes two batches with seed and leech time for (1,1) and
// (1,2) and returns the Schema the Writer used.
func writeTimes(t *testing.T, db *gosql.DB) Schema {
	t.Helper()
	ctx := context.Background()
	s, _, err := CheckSchema(ctx, db, DefaultNames())
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter(db, s, WriterOptions{})
	for i := range 2 {
		b := newBatch()
		b.FileUsers[tracker.FileUserKey{Fid: 1, UID: 1}] = tracker.FileUserDelta{Active: true, Announced: 1, SeedTime: 100, LeechTime: 7, Mtime: int64(10 + i)}
		b.FileUsers[tracker.FileUserKey{Fid: 1, UID: 2}] = tracker.FileUserDelta{Active: true, Announced: 1, LeechTime: 30, Left: 5, Mtime: int64(10 + i)}
		if un, err := w.Write(ctx, b); err != nil || un != nil {
			t.Fatalf("Write %d: %v %+v", i, err, un)
		}
	}
	return s
}

// Both columns present (Gazelle's timespent int unsigned and leechtime):
// summed across writes, next to the other columns.
func TestWriterSeedLeechTime(t *testing.T) {
	db, _, _ := writerDB(t, "")
	mustExec(t, db, "ALTER TABLE xbt_files_users ADD COLUMN timespent int unsigned NOT NULL DEFAULT 0, ADD COLUMN leechtime int unsigned NOT NULL DEFAULT 0")
	s := writeTimes(t, db)
	if !s.HasTimeSpent || !s.HasLeechTime {
		t.Fatalf("schema: HasTimeSpent %v HasLeechTime %v", s.HasTimeSpent, s.HasLeechTime)
	}
	if got := readTime(t, db, "timespent", 1, 1); got != 200 {
		t.Errorf("timespent (1,1) = %d, want 200", got)
	}
	if got := readTime(t, db, "leechtime", 1, 1); got != 14 {
		t.Errorf("leechtime (1,1) = %d, want 14", got)
	}
	if got := readTime(t, db, "timespent", 1, 2); got != 0 {
		t.Errorf("timespent (1,2) = %d, want 0", got)
	}
	if got := readTime(t, db, "leechtime", 1, 2); got != 60 {
		t.Errorf("leechtime (1,2) = %d, want 60", got)
	}
	if fu := readFileUsers(t, db)[tracker.FileUserKey{Fid: 1, UID: 2}]; fu.Announced != 2 || fu.Left != 5 || fu.Mtime != 11 {
		t.Errorf("other columns of (1,2): %+v", fu)
	}
}

// Only Gazelle's timespent: written; leech time has nowhere to go.
func TestWriterTimeSpentOnly(t *testing.T) {
	db, _, _ := writerDB(t, "")
	mustExec(t, db, "ALTER TABLE xbt_files_users ADD COLUMN timespent int unsigned NOT NULL DEFAULT 0")
	s := writeTimes(t, db)
	if !s.HasTimeSpent || s.HasLeechTime {
		t.Fatalf("schema: HasTimeSpent %v HasLeechTime %v", s.HasTimeSpent, s.HasLeechTime)
	}
	if got := readTime(t, db, "timespent", 1, 1); got != 200 {
		t.Errorf("timespent (1,1) = %d, want 200", got)
	}
}

// Neither column (every database migrate up made, and XBT's): the rows
// are written as before, no error, no column appears.
func TestWriterWithoutSeedLeechTime(t *testing.T) {
	db, _, _ := writerDB(t, "")
	s := writeTimes(t, db)
	if s.HasTimeSpent || s.HasLeechTime {
		t.Fatalf("schema: HasTimeSpent %v HasLeechTime %v", s.HasTimeSpent, s.HasLeechTime)
	}
	if fu := readFileUsers(t, db)[tracker.FileUserKey{Fid: 1, UID: 1}]; fu.Announced != 2 || !fu.Active {
		t.Errorf("(1,1): %+v", fu)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_files_users' AND COLUMN_NAME IN ('timespent', 'leechtime')"); n != 0 {
		t.Errorf("%d time columns appeared", n)
	}
}

// timespent int unsigned saturates at 4294967295 instead of failing the
// write.
func TestWriterTimeSpentSaturates(t *testing.T) {
	db, _, _ := writerDB(t, "")
	mustExec(t, db, "ALTER TABLE xbt_files_users ADD COLUMN timespent int unsigned NOT NULL DEFAULT 0, ADD COLUMN leechtime int unsigned NOT NULL DEFAULT 0")
	mustExec(t, db, "INSERT INTO xbt_files_users (fid, uid, active, announced, completed, downloaded, `left`, uploaded, mtime, timespent) VALUES (1, 1, 1, 1, 0, 0, 0, 0, 1, 4294967295 - 50)")
	writeTimes(t, db)
	if got := readTime(t, db, "timespent", 1, 1); got != 4294967295 {
		t.Errorf("timespent (1,1) = %d, want 4294967295", got)
	}
	if got := readTime(t, db, "leechtime", 1, 1); got != 14 {
		t.Errorf("leechtime (1,1) = %d, want 14", got)
	}
}

// The files_users statement with every optional column, plain and clamped,
// stays under the estimate chunkRows relies on.
func TestWriterSeedLeechTimeStatementSize(t *testing.T) {
	const maxU = ^uint64(0)
	e := &writerEnv{filesUsers: "`xbt_files_users`", fuFid: "`fid`", maxFUAnnounced: maxU, maxFUCompleted: maxU,
		maxFUDown: maxU, maxFUUp: maxU, maxFUTimeSpent: maxU, maxFULeechTime: maxU}
	m := map[tracker.FileUserKey]tracker.FileUserDelta{}
	const n = 50
	for i := uint32(1); i <= n; i++ {
		m[tracker.FileUserKey{Fid: ^uint32(0) - i, UID: ^uint32(0)}] = tracker.FileUserDelta{Active: true, Announced: maxU, Completed: maxU,
			Uploaded: maxU, Downloaded: maxU, SeedTime: maxU, LeechTime: maxU, Left: maxU, Mtime: -1 << 62}
	}
	for _, oc := range []fileUserCols{{}, {announced: true}, {timeSpent: true}, {announced: true, timeSpent: true, leechTime: true}} {
		p := newFileUserPart(e, oc, m)
		for _, k := range []int{1, n} {
			for clamp, build := range []func(int, int) (string, []any, error){p.build, p.buildClamped} {
				q, _, err := build(0, k)
				if err != nil {
					t.Fatal(err)
				}
				if limit := p.fixedBytes() + k*p.rowBytes(); len(q) > limit {
					t.Errorf("%+v clamp=%d: %d rows make %d bytes, estimate %d", oc, clamp, k, len(q), limit)
				}
			}
		}
	}
}
