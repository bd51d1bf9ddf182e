package sql

import (
	"context"
	gosql "database/sql"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

func mustLoad(t *testing.T, l *Loader) *Snapshot {
	t.Helper()
	snap, err := l.Load(context.Background())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return snap
}

func wantEmpty(t *testing.T, snap *Snapshot, why string) {
	t.Helper()
	if !snap.Empty() {
		t.Fatalf("%s: Load = %+v, want an empty incremental snapshot", why, snap)
	}
}

// wantNoNews: nothing to apply except DeletedFids, which lists every row
// still flagged (a delete the tracker has not done yet is asked again).
func wantNoNews(t *testing.T, snap *Snapshot, why string) {
	t.Helper()
	if snap.Full || len(snap.Users)+len(snap.RemovedUsers)+len(snap.Torrents)+len(snap.RemovedTorrents) != 0 {
		t.Fatalf("%s: Load = %+v, want no news", why, snap)
	}
}

func TestLoaderFullThenNothing(t *testing.T) {
	ctx := context.Background()
	db, s, _ := writerDB(t, "")
	seedUsers(t, db, 1, 2, 3)
	seedFiles(t, db, 10, 11)
	mustExec(t, db, "UPDATE xbt_files SET flags = 1 WHERE fid = 11")
	l := NewLoader(db, s)
	if err := l.ChangeTracking(ctx); err != nil {
		t.Fatalf("ChangeTracking on a migrated database: %v", err)
	}
	snap := mustLoad(t, l)
	if !snap.Full || len(snap.Users) != 3 || len(snap.Torrents) != 1 || snap.Torrents[0].Fid != 10 {
		t.Fatalf("first Load = %+v, want Full with 3 users and torrent 10", snap)
	}
	if !slices.Equal(snap.DeletedFids, []uint32{11}) || !slices.Equal(snap.RemovedTorrents, []tracker.InfoHash{hashOf(11)}) {
		t.Fatalf("first Load: flagged fid 11 must be in DeletedFids and RemovedTorrents: %+v", snap)
	}
	// Until the tracker deletes it, the flagged row is asked for again.
	snap = mustLoad(t, l)
	wantNoNews(t, snap, "no change since")
	if !slices.Equal(snap.DeletedFids, []uint32{11}) {
		t.Fatalf("DeletedFids = %v, want [11] until it is deleted", snap.DeletedFids)
	}
	mustExec(t, db, "DELETE FROM xbt_files WHERE fid = 11")
	if snap = mustLoad(t, l); !slices.Equal(snap.RemovedTorrents, []tracker.InfoHash{hashOf(11)}) || len(snap.DeletedFids) != 0 {
		t.Fatalf("after the delete: %+v", snap)
	}
	wantEmpty(t, mustLoad(t, l), "no change since")
	wantEmpty(t, mustLoad(t, l), "still no change")
}

// Every kind of catalog change shows up in the next Load, with the right
// content, and only once.
func TestLoaderCatalogChanges(t *testing.T) {
	ctx := context.Background()
	db, s, _ := writerDB(t, "")
	seedUsers(t, db, 1, 2, 3)
	seedFiles(t, db, 10, 11, 12, 13)
	l := NewLoader(db, s)
	mustLoad(t, l)

	steps := []struct {
		name  string
		sql   []string
		check func(t *testing.T, snap *Snapshot)
	}{
		{"insert user", []string{"INSERT INTO xbt_users (torrent_pass) VALUES ('abcdefghijklmnopqrstuvwxyz012345')"}, func(t *testing.T, snap *Snapshot) {
			if len(snap.Users) != 1 || snap.Users[0].UID != 4 || snap.Users[0].TorrentPass != "abcdefghijklmnopqrstuvwxyz012345" || !snap.Users[0].CanLeech {
				t.Fatalf("%+v", snap)
			}
		}},
		{"bump torrent_pass_version", []string{"UPDATE xbt_users SET torrent_pass_version = torrent_pass_version + 1 WHERE uid = 2"}, func(t *testing.T, snap *Snapshot) {
			if len(snap.Users) != 1 || snap.Users[0] != (tracker.User{UID: 2, TorrentPassVersion: 1, CanLeech: true}) {
				t.Fatalf("%+v", snap)
			}
		}},
		{"ban and limits", []string{"UPDATE xbt_users SET can_leech = 0, wait_time = 60, peers_limit = 2, torrents_limit = 3 WHERE uid = 3"}, func(t *testing.T, snap *Snapshot) {
			if len(snap.Users) != 1 || snap.Users[0] != (tracker.User{UID: 3, WaitTime: 60, PeersLimit: 2, TorrentsLimit: 3}) {
				t.Fatalf("%+v", snap)
			}
		}},
		{"passkey case change", []string{"UPDATE xbt_users SET torrent_pass = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ012345' WHERE uid = 4"}, func(t *testing.T, snap *Snapshot) {
			if len(snap.Users) != 1 || snap.Users[0].TorrentPass != "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345" {
				t.Fatalf("%+v", snap)
			}
		}},
		{"delete user", []string{"DELETE FROM xbt_users WHERE uid = 1"}, func(t *testing.T, snap *Snapshot) {
			if len(snap.Users) != 0 || !slices.Equal(snap.RemovedUsers, []uint32{1}) {
				t.Fatalf("%+v", snap)
			}
		}},
		{"insert file", []string{"INSERT INTO xbt_files (info_hash, mtime, ctime) VALUES ('new-torrent-hash-001', 5, 77)"}, func(t *testing.T, snap *Snapshot) {
			if len(snap.Torrents) != 1 || string(snap.Torrents[0].InfoHash[:]) != "new-torrent-hash-001" || snap.Torrents[0].Ctime != 77 || snap.Torrents[0].Fid != 14 {
				t.Fatalf("%+v", snap)
			}
		}},
		{"flag file deleted", []string{"UPDATE xbt_files SET flags = 1 WHERE fid = 10"}, func(t *testing.T, snap *Snapshot) {
			if len(snap.Torrents) != 0 || !slices.Equal(snap.RemovedTorrents, []tracker.InfoHash{hashOf(10)}) || !slices.Equal(snap.DeletedFids, []uint32{10}) {
				t.Fatalf("%+v", snap)
			}
		}},
		{"un-flag before the tracker deleted it", []string{"UPDATE xbt_files SET flags = 0 WHERE fid = 10"}, func(t *testing.T, snap *Snapshot) {
			if len(snap.Torrents) != 1 || snap.Torrents[0] != (tracker.Torrent{Fid: 10, InfoHash: hashOf(10), Ctime: 1}) || len(snap.DeletedFids) != 0 {
				t.Fatalf("%+v", snap)
			}
		}},
		{"hard delete file", []string{"DELETE FROM xbt_files WHERE fid = 12"}, func(t *testing.T, snap *Snapshot) {
			if len(snap.Torrents) != 0 || !slices.Equal(snap.RemovedTorrents, []tracker.InfoHash{hashOf(12)}) || len(snap.DeletedFids) != 0 {
				t.Fatalf("%+v", snap)
			}
		}},
		{"columns the tracker does not read", []string{"UPDATE xbt_users SET downloaded = 5 WHERE uid = 2", "UPDATE xbt_files SET seeders = 3, leechers = 4, completed = 9, mtime = 1234 WHERE fid = 11"}, func(t *testing.T, snap *Snapshot) {
			wantEmpty(t, snap, "catalog updated only columns the tracker writes")
		}},
		{"an UPDATE that changes nothing", []string{"UPDATE xbt_users SET can_leech = can_leech"}, func(t *testing.T, snap *Snapshot) {
			wantEmpty(t, snap, "no value changed")
		}},
	}
	for _, st := range steps {
		for _, q := range st.sql {
			mustExec(t, db, q)
		}
		snap, err := l.Load(ctx)
		if err != nil {
			t.Fatalf("%s: Load: %v", st.name, err)
		}
		if snap.Full {
			t.Fatalf("%s: Load was Full, want incremental", st.name)
		}
		t.Run(st.name, func(t *testing.T) { st.check(t, snap) })
		wantNoNews(t, mustLoad(t, l), st.name+": the change must be delivered once")
	}

	// Edits of an existing torrent's ctime or info_hash have no trigger (see
	// migration 00004): they arrive with the next full Load.
	mustExec(t, db, "UPDATE xbt_files SET ctime = 999 WHERE fid = 11")
	mustExec(t, db, "UPDATE xbt_files SET info_hash = 'replaced-hash-000013' WHERE fid = 13")
	wantEmpty(t, mustLoad(t, l), "ctime/info_hash edits are not tracked incrementally")
	l.fullEvery = 0
	snap := mustLoad(t, l)
	if !snap.Full {
		t.Fatal("want a full Load")
	}
	got := map[uint32]tracker.Torrent{}
	for _, tr := range snap.Torrents {
		got[tr.Fid] = tr
	}
	if h := got[13].InfoHash; got[11].Ctime != 999 || string(h[:]) != "replaced-hash-000013" {
		t.Fatalf("full Load: fid 11 = %+v, fid 13 = %+v", got[11], got[13])
	}
}

// The tracker's own stat writes do not mark users or torrents as changed.
func TestLoaderIgnoresTrackerWrites(t *testing.T) {
	ctx := context.Background()
	db, s, _ := writerDB(t, "")
	seedUsers(t, db, 1, 2)
	seedFiles(t, db, 10)
	l := NewLoader(db, s)
	mustLoad(t, l)
	w := NewWriter(db, s, WriterOptions{})
	b := newBatch()
	b.Users[1] = tracker.UserDelta{Uploaded: 100, Downloaded: 50}
	b.Users[2] = tracker.UserDelta{Uploaded: 1}
	b.Files[10] = tracker.FileDelta{Completed: 1, Seeders: 3, Leechers: 2, Mtime: 99}
	b.FileUsers[tracker.FileUserKey{Fid: 10, UID: 1}] = tracker.FileUserDelta{Active: true, Uploaded: 100, Mtime: 99}
	if un, err := w.Write(ctx, b); err != nil || un != nil {
		t.Fatalf("Write: %v %+v", err, un)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM xbt_tracker_changes WHERE tbl > 0"); n != 3 {
		t.Fatalf("changelog rows %d, want 3 (only the seeded inserts)", n)
	}
	wantEmpty(t, mustLoad(t, l), "after the tracker's own writes")

	// An auto-registered torrent's row is news: the tracker learns its fid.
	b = newBatch()
	b.NewFiles[hashOf(50)] = 1000
	if un, err := w.Write(ctx, b); err != nil || un != nil {
		t.Fatalf("Write: %v %+v", err, un)
	}
	snap := mustLoad(t, l)
	if len(snap.Torrents) != 1 || snap.Torrents[0].InfoHash != hashOf(50) || snap.Torrents[0].Fid == 0 {
		t.Fatalf("after auto-register: %+v", snap)
	}
	// DeleteFiles of a flagged row: it goes; the next Load repeats its
	// removal (harmless) but not the delete.
	mustExec(t, db, "UPDATE xbt_files SET flags = 1 WHERE fid = 10")
	snap = mustLoad(t, l)
	if !slices.Equal(snap.DeletedFids, []uint32{10}) {
		t.Fatalf("flagged: %+v", snap)
	}
	if err := w.DeleteFiles(ctx, snap.DeletedFids); err != nil {
		t.Fatal(err)
	}
	snap = mustLoad(t, l)
	if len(snap.DeletedFids) != 0 || !slices.Equal(snap.RemovedTorrents, []tracker.InfoHash{hashOf(10)}) {
		t.Fatalf("after DeleteFiles: %+v", snap)
	}
}

// A catalog transaction that commits after a Load started is picked up by the
// next Load, although its changelog timestamp is older than that Load.
func TestLoaderLateCommit(t *testing.T) {
	ctx := context.Background()
	db, s, _ := writerDB(t, "")
	seedUsers(t, db, 1)
	l := NewLoader(db, s)
	mustLoad(t, l)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("UPDATE xbt_users SET can_leech = 0 WHERE uid = 1"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	wantEmpty(t, mustLoad(t, l), "uncommitted")
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	snap := mustLoad(t, l)
	if len(snap.Users) != 1 || snap.Users[0].CanLeech {
		t.Fatalf("after the late commit: %+v", snap)
	}
}

// The full Load comes back by time (fullEvery after the previous full one,
// server time), not by count: frequent Polls and Loads do not make it come
// sooner, and a Poll is never full.
func TestLoaderFullEvery(t *testing.T) {
	ctx := context.Background()
	db, s, _ := writerDB(t, "")
	seedUsers(t, db, 1)
	l := NewLoader(db, s)
	var fulls []bool
	step := func(poll, due bool) {
		if due {
			l.lastFull = l.lastFull.Add(-l.fullEvery) // as if an hour had passed
		}
		var snap *Snapshot
		var err error
		if poll {
			snap, err = l.Poll(ctx)
		} else {
			snap, err = l.Load(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		fulls = append(fulls, snap.Full)
	}
	step(false, false) // first: full
	for range 70 {
		step(true, false)
	}
	step(false, false)
	step(true, true) // due, but a Poll is never full
	step(false, false)
	step(false, false)
	want := append([]bool{true}, make([]bool, 71)...)
	want = append(want, false, true, false)
	if !slices.Equal(fulls, want) {
		t.Fatalf("Full pattern %v, want %v", fulls, want)
	}
}

// Without the changelog every Load is full, and ChangeTracking says why in
// one line.
func TestLoaderWithoutChangeTracking(t *testing.T) {
	ctx := context.Background()
	db, s, _ := writerDB(t, "")
	seedUsers(t, db, 1)
	for _, name := range slices.Concat(userTriggers, fileTriggers) {
		mustExec(t, db, "DROP TRIGGER "+name)
	}
	l := NewLoader(db, s)
	err := l.ChangeTracking(ctx)
	if !errors.Is(err, ErrNoChangeTracking) || !strings.Contains(err.Error(), "xbt_tracker_users_ai") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("ChangeTracking with the triggers dropped: %v", err)
	}
	mustExec(t, db, "DROP TABLE xbt_tracker_changes")
	err = l.ChangeTracking(ctx)
	if !errors.Is(err, ErrNoChangeTracking) || !strings.Contains(err.Error(), "migration 00004") || !strings.Contains(err.Error(), "docs/ADOPTING.md") {
		t.Fatalf("ChangeTracking without the changelog: %v", err)
	}
	for i := 0; i < 3; i++ {
		if snap := mustLoad(t, l); !snap.Full || len(snap.Users) != 1 {
			t.Fatalf("Load %d = %+v, want Full", i, snap)
		}
	}
	other := s
	other.Files = "xbt_torrents"
	if err := NewLoader(db, other).ChangeTracking(ctx); !errors.Is(err, ErrNoChangeTracking) || !strings.Contains(err.Error(), "xbt_torrents") {
		t.Fatalf("ChangeTracking with HEAD names: %v", err)
	}
}

func TestLoaderLookups(t *testing.T) {
	ctx := context.Background()
	db, s, _ := writerDB(t, "")
	seedUsers(t, db, 5)
	seedFiles(t, db, 7, 8)
	mustExec(t, db, "UPDATE xbt_files SET flags = 1, completed = 3 WHERE fid = 8")
	l := NewLoader(db, s)
	if u, err := l.LookupUser(ctx, 5); err != nil || u != (tracker.User{UID: 5, CanLeech: true}) {
		t.Fatalf("LookupUser = %+v, %v", u, err)
	}
	if _, err := l.LookupUser(ctx, 6); !errors.Is(err, gosql.ErrNoRows) {
		t.Fatalf("LookupUser(absent) = %v", err)
	}
	if tr, err := l.LookupTorrent(ctx, hashOf(7)); err != nil || tr != (tracker.Torrent{Fid: 7, InfoHash: hashOf(7), Ctime: 1}) {
		t.Fatalf("LookupTorrent = %+v, %v", tr, err)
	}
	if _, err := l.LookupTorrent(ctx, hashOf(8)); !errors.Is(err, gosql.ErrNoRows) {
		t.Fatalf("LookupTorrent(flags&1) = %v", err)
	}
	if _, err := l.LookupTorrent(ctx, hashOf(9)); !errors.Is(err, gosql.ErrNoRows) {
		t.Fatalf("LookupTorrent(absent) = %v", err)
	}
}

func TestLoaderDenyList(t *testing.T) {
	ctx := context.Background()
	db, s, _ := writerDB(t, "")
	mustExec(t, db, "INSERT INTO xbt_deny_from_hosts (`begin`, `end`) VALUES (3221225984, 3221226239), (1, 1)")
	mustExec(t, db, "INSERT INTO xbt_deny_from_hosts6 (`begin`, `end`) VALUES (UNHEX('20010db8000000000000000000000000'), UNHEX('20010db8ffffffffffffffffffffffff')), (UNHEX('c6336401'), UNHEX('c63364ff')), ('x', 'y')")
	l := NewLoader(db, s)
	v4, v6, err := l.DenyList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(v4, [][2]uint32{{3221225984, 3221226239}, {1, 1}}) {
		t.Fatalf("v4 = %v", v4)
	}
	if len(v6) != 2 || v6[0][0][0] != 0x20 || v6[1][0] != [16]byte{10: 0xff, 11: 0xff, 12: 198, 13: 51, 14: 100, 15: 1} {
		t.Fatalf("v6 = %x", v6)
	}
	// XBT's own schema declares begin/end as signed int: 192.0.2.0 is then
	// stored as a negative number.
	mustExec(t, db, "DROP TABLE xbt_deny_from_hosts")
	mustExec(t, db, "CREATE TABLE xbt_deny_from_hosts (`begin` int NOT NULL, `end` int NOT NULL)")
	mustExec(t, db, "INSERT INTO xbt_deny_from_hosts VALUES (-1073741312, -1073741057)")
	v4, _, err = l.DenyList(ctx)
	if err != nil || !slices.Equal(v4, [][2]uint32{{3221225984, 3221226239}}) {
		t.Fatalf("signed v4 = %v, %v", v4, err)
	}
}

// LoadUsers and LoadTorrents skip rows nothing could use instead of failing
// every load.
func TestLoadSkipsUnusableRows(t *testing.T) {
	ctx := context.Background()
	db, s, _ := writerDB(t, "")
	seedUsers(t, db, 1)
	mustExec(t, db, "INSERT INTO xbt_users (uid) VALUES (-5)")
	mustExec(t, db, "INSERT INTO xbt_files (fid, info_hash, mtime, ctime) VALUES (-3, 'negative-fid-hash-xx', 1, 1)")
	seedFiles(t, db, 2)
	users, err := LoadUsers(ctx, db, s)
	if err != nil || len(users) != 1 || users[0].UID != 1 {
		t.Fatalf("LoadUsers = %+v, %v", users, err)
	}
	torrents, err := LoadTorrents(ctx, db, s)
	if err != nil || len(torrents) != 1 || torrents[0].Fid != 2 {
		t.Fatalf("LoadTorrents = %+v, %v", torrents, err)
	}
}
