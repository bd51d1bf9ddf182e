package sql

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// snatchedRows returns xbt_snatched's rows as "uid fid tstamp IP seedtime".
func snatchedRows(t *testing.T, w *Writer) []string {
	t.Helper()
	rows, err := w.db.Query("SELECT uid, fid, tstamp, IP, seedtime FROM xbt_snatched ORDER BY tstamp, uid")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var uid, fid, tstamp, seedtime int64
		var ip string
		if err := rows.Scan(&uid, &fid, &tstamp, &ip, &seedtime); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%d %d %d %q %d", uid, fid, tstamp, ip, seedtime))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func snatchBatch(entries ...tracker.SnatchEntry) *tracker.Batch {
	b := newBatch()
	b.Snatches = entries
	return b
}

// Migration 00006's table (IP varchar(39)): uid, fid, tstamp and the
// textual address, IPv4 and IPv6 alike; seedtime keeps its default.
func TestWriterSnatched(t *testing.T) {
	ctx := context.Background()
	db, s, _ := writerDB(t, "")
	if !s.HasSnatched {
		t.Fatal("HasSnatched false on a migrated database")
	}
	w := NewWriter(db, s, WriterOptions{})
	b := snatchBatch(
		tracker.SnatchEntry{Addr: netip.MustParseAddr("192.0.2.10"), UID: 7, Fid: 3, Mtime: 100},
		tracker.SnatchEntry{Addr: netip.MustParseAddr("2001:db8:1234:5678:9abc:def0:1234:5678"), UID: 8, Fid: 3, Mtime: 101},
		tracker.SnatchEntry{Addr: netip.MustParseAddr("::ffff:198.51.100.1"), UID: 9, Fid: 4, Mtime: 102},
	)
	if un, err := w.Write(ctx, b); err != nil || un != nil {
		t.Fatalf("Write: %v %+v", err, un)
	}
	want := []string{
		`7 3 100 "192.0.2.10" 0`,
		`8 3 101 "2001:db8:1234:5678:9abc:def0:1234:5678" 0`,
		`9 4 102 "198.51.100.1" 0`,
	}
	if got := snatchedRows(t, w); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("xbt_snatched:\n%q\nwant\n%q", got, want)
	}
}

// Gazelle's own table, IP varchar(15) (upper-case column name): IPv4 is
// written, an IPv6 address that does not fit becomes an empty string and
// never fails the row (strict mode, where a value too long is an error); one that fits is
// written.
func TestWriterSnatchedGazelleTable(t *testing.T) {
	ctx := context.Background()
	db, _, _ := writerDB(t, "sql_mode=%27STRICT_ALL_TABLES%2CNO_ENGINE_SUBSTITUTION%27")
	mustExec(t, db, "DROP TABLE xbt_snatched")
	mustExec(t, db, "CREATE TABLE xbt_snatched (uid int NOT NULL DEFAULT 0, tstamp int NOT NULL, fid int NOT NULL, IP varchar(15) NOT NULL, seedtime int NOT NULL DEFAULT 0, KEY fid (fid), KEY tstamp (tstamp), KEY uid_tstamp (uid, tstamp)) ENGINE=InnoDB")
	var mode string
	if err := db.QueryRow("SELECT @@SESSION.sql_mode").Scan(&mode); err != nil || !strings.Contains(mode, "STRICT_ALL_TABLES") {
		t.Fatalf("sql_mode %q, %v", mode, err)
	}
	s, warnings, err := CheckSchema(ctx, db, DefaultNames())
	if err != nil || len(warnings) != 0 || !s.HasSnatched {
		t.Fatalf("CheckSchema: %v %q HasSnatched=%v", err, warnings, s.HasSnatched)
	}
	w := NewWriter(db, s, WriterOptions{})
	b := snatchBatch(
		tracker.SnatchEntry{Addr: netip.MustParseAddr("203.0.113.255"), UID: 1, Fid: 2, Mtime: 500},
		tracker.SnatchEntry{Addr: netip.MustParseAddr("2001:db8:1234:5678:9abc:def0:1234:5678"), UID: 2, Fid: 2, Mtime: 501},
		tracker.SnatchEntry{Addr: netip.MustParseAddr("2001:db8::1"), UID: 3, Fid: 2, Mtime: 502},
	)
	if un, err := w.Write(ctx, b); err != nil || un != nil {
		t.Fatalf("Write: %v %+v", err, un)
	}
	want := []string{`1 2 500 "203.0.113.255" 0`, `2 2 501 "" 0`, `3 2 502 "2001:db8::1" 0`}
	if got := snatchedRows(t, w); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("xbt_snatched:\n%q\nwant\n%q", got, want)
	}
	if w.Quarantined() != 0 {
		t.Fatalf("%d rows quarantined", w.Quarantined())
	}
}

// Without the table: no warning, nothing written, no error, and the
// entries are dropped rather than returned as unwritten forever.
func TestWriterWithoutSnatched(t *testing.T) {
	ctx := context.Background()
	db, _, _ := writerDB(t, "")
	mustExec(t, db, "DROP TABLE xbt_snatched")
	s, warnings, err := CheckSchema(ctx, db, DefaultNames())
	if err != nil || s.HasSnatched {
		t.Fatalf("CheckSchema: %v HasSnatched=%v", err, s.HasSnatched)
	}
	for _, w := range warnings {
		if strings.Contains(w, "snatched") {
			t.Fatalf("warning about the optional table: %q", w)
		}
	}
	w := NewWriter(db, s, WriterOptions{})
	b := snatchBatch(tracker.SnatchEntry{Addr: netip.MustParseAddr("192.0.2.1"), UID: 1, Fid: 1, Mtime: 1})
	if un, err := w.Write(ctx, b); err != nil || un != nil {
		t.Fatalf("Write: %v %+v", err, un)
	}
}

// A failed chunk of xbt_snatched rows comes back unwritten, and writing it
// again writes each completion exactly once.
func TestWriterSnatchedFailedChunk(t *testing.T) {
	ctx := context.Background()
	db, s, _ := writerDB(t, "")
	w := NewWriter(db, s, WriterOptions{MaxRowsPerStatement: 2})
	boom := errors.New("boom")
	chunk := 0
	w.beforeCommit = func(table string, _ []any) error {
		if table != "xbt_snatched" {
			return nil
		}
		chunk++
		if chunk == 2 {
			return boom
		}
		return nil
	}
	var entries []tracker.SnatchEntry
	for i := 1; i <= 5; i++ {
		entries = append(entries, tracker.SnatchEntry{Addr: netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", i)), UID: uint32(i), Fid: 1, Mtime: int64(i)})
	}
	un, err := w.Write(ctx, snatchBatch(entries...))
	if !errors.Is(err, boom) || un == nil || len(un.Snatches) != 3 || un.Snatches[0].UID != 3 {
		t.Fatalf("err %v, unwritten %+v: want boom and uids 3-5", err, un)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM xbt_snatched"); n != 2 {
		t.Fatalf("%d rows after the failed chunk, want 2", n)
	}
	w.beforeCommit = nil
	if un, err := w.Write(ctx, un); err != nil || un != nil {
		t.Fatalf("rewrite: %v %+v", err, un)
	}
	got := snatchedRows(t, w)
	if len(got) != 5 {
		t.Fatalf("rows %q, want 5", got)
	}
	for i, r := range got {
		if want := fmt.Sprintf(`%d 1 %d "192.0.2.%d" 0`, i+1, i+1, i+1); r != want {
			t.Fatalf("row %d = %s, want %s", i, r, want)
		}
	}
}
