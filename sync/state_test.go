package sync

import (
	"context"
	gosql "database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	xsql "github.com/xbt-tracker/xbt-tracker/sql"
	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// stRun is one run of the tracker against a real database: what serve
// builds, up to the listeners.
type stRun struct {
	trk  *tracker.Tracker
	w    *xsql.Writer
	sy   *Syncer
	logs *observer.ObservedLogs
	o    StateOptions
	warm bool
}

func stStart(t *testing.T, db *gosql.DB, s xsql.Schema, path string, mod func(*tracker.Settings, *StateOptions)) *stRun {
	t.Helper()
	ctx := context.Background()
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)
	st := tracker.Settings{Secret: testSecret, AnnounceInterval: 1800}
	o := StateOptions{Path: path, DB: db}
	if mod != nil {
		mod(&st, &o)
	}
	trk := tracker.New(st, tracker.Options{})
	w := xsql.NewWriter(db, s, xsql.WriterOptions{Logger: log})
	if err := w.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	o.Writer = w
	sy := New(trk, db, xsql.NewLoader(db, s), w, Options{}, log)
	if err := sy.Load(ctx); err != nil {
		t.Fatal(err)
	}
	r := &stRun{trk: trk, w: w, sy: sy, logs: logs, o: o}
	r.warm = sy.RestoreState(ctx, o)
	return r
}

// stop is serve's stop: the final flush, then the state file.
func (r *stRun) stop(t *testing.T, shutdownErr error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.sy.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	r.sy.SaveState(ctx, r.o, shutdownErr)
}

// line returns the one log entry with msg, failing the test unless there
// is exactly one.
func (r *stRun) line(t *testing.T, msg string) observer.LoggedEntry {
	t.Helper()
	es := r.logs.FilterMessage(msg).All()
	if len(es) != 1 {
		var all []string
		for _, e := range r.logs.All() {
			all = append(all, e.Message)
		}
		t.Fatalf("%d log lines %q, want 1; log: %q", len(es), msg, all)
	}
	return es[0]
}

const (
	msgWarm      = "warm start: swarms restored from the state file"
	msgColdUnuse = "cold start: the state file is not used"
	msgSaved     = "saved the swarms to the state file for a warm restart"
	msgNoSave    = "no state file written: the next start is cold"
)

func stExec(t *testing.T, db *gosql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

type stFixture struct {
	db         *gosql.DB
	s          xsql.Schema
	path       string
	seed, leec *client
	fid        uint32
}

// stFirstRun: a seeder and a leecher announce, credited; a clean stop
// saves the state file.
func stFirstRun(t *testing.T) (*stFixture, *stRun) {
	t.Helper()
	db, _, s := realLoader(t)
	ctx := context.Background()
	u1, err := xsql.InsertUser(ctx, db, s.Names, "")
	if err != nil {
		t.Fatal(err)
	}
	u2, err := xsql.InsertUser(ctx, db, s.Names, "")
	if err != nil {
		t.Fatal(err)
	}
	fid, err := xsql.InsertFile(ctx, db, s.Names, hashOf(1))
	if err != nil {
		t.Fatal(err)
	}
	f := &stFixture{db: db, s: s, path: filepath.Join(t.TempDir(), "xbt-tracker.state"), fid: fid,
		seed: &client{uid: u1, ih: hashOf(1), id: 1},
		leec: &client{uid: u2, ih: hashOf(1), id: 2, left: 1000}}
	r := stStart(t, db, s, f.path, nil)
	if r.warm {
		t.Fatal("warm start without a state file")
	}
	r.line(t, "cold start: no state file (the first start, or the last stop was not clean)")
	for _, c := range []*client{f.seed, f.leec} {
		if msg := c.announce(r.trk, 0, 0); msg != "" {
			t.Fatal(msg)
		}
	}
	f.seed.announce(r.trk, 300, 0)
	f.leec.announce(r.trk, 0, 300)
	r.stop(t, nil)
	r.line(t, msgSaved)
	if _, err := os.Stat(f.path); err != nil {
		t.Fatalf("no state file after a clean stop: %v", err)
	}
	return f, r
}

func (f *stFixture) users(t *testing.T) (seedUp, leechDown uint64) {
	t.Helper()
	ctx := context.Background()
	a, err := xsql.LookupUserStats(ctx, f.db, f.s, f.seed.uid)
	if err != nil {
		t.Fatal(err)
	}
	b, err := xsql.LookupUserStats(ctx, f.db, f.s, f.leec.uid)
	if err != nil {
		t.Fatal(err)
	}
	return a.Uploaded, b.Downloaded
}

// TestWarmRestartRealDatabase: the swarms come back, the file is gone, the
// ledger is empty, and the bytes moved during the restart are credited
// once, from the saved counters.
func TestWarmRestartRealDatabase(t *testing.T) {
	f, _ := stFirstRun(t)
	r := stStart(t, f.db, f.s, f.path, nil)
	if !r.warm {
		t.Fatalf("cold start after a clean stop: %v", r.logs.All())
	}
	e := r.line(t, msgWarm)
	if got := e.ContextMap()["peers"]; got != int64(2) {
		t.Fatalf("warm start line says %v peers, want 2: %v", got, e.ContextMap())
	}
	if _, err := os.Stat(f.path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the state file is still there after it was used: %v", err)
	}
	if st := r.trk.Stats(); st.Seeders != 1 || st.Leechers != 1 || st.LedgerLen != 0 {
		t.Fatalf("after the restore: %+v", st)
	}
	f.seed.announce(r.trk, 700, 0) // 700 moved during the restart
	f.leec.announce(r.trk, 0, 700)
	r.stop(t, nil)
	if up, down := f.users(t); up != 1000 || down != 1000 {
		t.Fatalf("credited %d up, %d down; want 1000 each (300 before, 700 across the restart)", up, down)
	}
}

// TestWarmRestartRefused: every reason a file is not believed gives a
// cold start with one warning naming it, and the file is removed.
func TestWarmRestartRefused(t *testing.T) {
	cases := []struct {
		name   string
		before func(t *testing.T, f *stFixture, first *stRun)
		mod    func(*tracker.Settings, *StateOptions)
		want   string
	}{
		{"marker rolled back", func(t *testing.T, f *stFixture, first *stRun) {
			id, _ := first.w.Marker()
			stExec(t, f.db, "UPDATE xbt_tracker_writers SET seq = seq - 1 WHERE writer = ?", id[:])
		}, nil, "holds sequence"},
		{"marker gone", func(t *testing.T, f *stFixture, first *stRun) {
			stExec(t, f.db, "DELETE FROM xbt_tracker_writers")
		}, nil, "not in xbt_tracker_writers"},
		{"another tracker since", func(t *testing.T, f *stFixture, first *stRun) {
			stExec(t, f.db, "INSERT INTO xbt_tracker_writers(writer, seq, mtime) VALUES (UNHEX('00112233445566778899AABBCCDDEEFF'), 3, UNIX_TIMESTAMP())")
		}, nil, "other tracker process"},
		{"another secret", nil, func(s *tracker.Settings, _ *StateOptions) { s.Secret = "another" }, "another torrent_pass_private_key"},
		{"too old", nil, func(_ *tracker.Settings, o *StateOptions) {
			o.Now = func() time.Time { return time.Now().Add(45 * time.Minute) }
		}, "peer expiry"},
		{"interval shortened", nil, func(s *tracker.Settings, o *StateOptions) {
			s.AnnounceInterval = 60
			o.Now = func() time.Time { return time.Now().Add(91 * time.Second) }
		}, "peer expiry"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, first := stFirstRun(t)
			if c.before != nil {
				c.before(t, f, first)
			}
			r := stStart(t, f.db, f.s, f.path, c.mod)
			if r.warm {
				t.Fatal("warm start")
			}
			e := r.line(t, msgColdUnuse)
			if reason := e.ContextMap()["reason"].(string); !strings.Contains(reason, c.want) {
				t.Fatalf("reason %q, want it to mention %q", reason, c.want)
			}
			if e.Level != zapcore.WarnLevel || e.ContextMap()["removed"] != true {
				t.Fatalf("level %v, %v", e.Level, e.ContextMap())
			}
			if st := r.trk.Stats(); st.Peers != 0 || st.LedgerLen != 0 {
				t.Fatalf("cold start holds %+v", st)
			}
			if _, err := os.Stat(f.path); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("refused file not removed: %v", err)
			}
		})
	}
}

// TestCorruptStateFileIsCold: a damaged file is one warning and a cold
// start.
func TestCorruptStateFileIsCold(t *testing.T) {
	f, _ := stFirstRun(t)
	b, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if err := os.WriteFile(f.path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	r := stStart(t, f.db, f.s, f.path, nil)
	e := r.line(t, "cold start: the state file is not usable")
	if r.warm || !strings.Contains(e.ContextMap()["reason"].(string), "checksum") {
		t.Fatalf("warm %v, %v", r.warm, e.ContextMap())
	}
}

// TestNoStateAfterFailedFlush: a stop whose final write did not complete
// writes no file and removes a stale one.
func TestNoStateAfterFailedFlush(t *testing.T) {
	f, _ := stFirstRun(t)
	r := stStart(t, f.db, f.s, f.path, nil) // warm: the file is used and removed
	if !r.warm {
		t.Fatal("cold")
	}
	if err := os.WriteFile(f.path, []byte("stale"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.stop(t, errors.New("deadline passed"))
	e := r.line(t, msgNoSave)
	if e.ContextMap()["stale_file_removed"] != true {
		t.Fatalf("%v", e.ContextMap())
	}
	if _, err := os.Stat(f.path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale file left: %v", err)
	}
	// Nor while statistics are pending.
	r2 := stStart(t, f.db, f.s, f.path, nil)
	f.seed.announce(r2.trk, 1, 0)
	r2.sy.SaveState(context.Background(), r2.o, nil)
	if e := r2.line(t, msgNoSave); !strings.Contains(e.ContextMap()["reason"].(string), "rows pending") {
		t.Fatalf("%v", e.ContextMap())
	}
}
