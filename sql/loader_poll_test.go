package sql

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

func mustPoll(t *testing.T, l *Loader) *Snapshot {
	t.Helper()
	snap, err := l.Poll(context.Background())
	if err != nil {
		t.Fatalf("Poll: %v", err)
	}
	if snap.Full {
		t.Fatal("a Poll returned a full snapshot")
	}
	return snap
}

// Every kind of catalog change is delivered by the next Poll, once: neither
// the Poll after it nor the next Load delivers it again.
func TestLoaderPoll(t *testing.T) {
	db, s, _ := writerDB(t, "")
	seedUsers(t, db, 1, 2, 3)
	seedFiles(t, db, 10, 11)
	l := NewLoader(db, s)
	if _, err := l.Poll(context.Background()); !errors.Is(err, ErrPollNeedsLoad) {
		t.Fatalf("Poll before any Load = %v, want ErrPollNeedsLoad", err)
	}
	if !mustLoad(t, l).Full {
		t.Fatal("first Load not full")
	}
	wantEmpty(t, mustPoll(t, l), "nothing changed")

	tests := []struct {
		name  string
		sql   string
		check func(snap *Snapshot) bool
	}{
		{"insert user", "INSERT INTO xbt_users (uid) VALUES (4)", func(snap *Snapshot) bool {
			return len(snap.Users) == 1 && snap.Users[0] == tracker.User{UID: 4, CanLeech: true}
		}},
		{"bump torrent_pass_version", "UPDATE xbt_users SET torrent_pass_version = 7 WHERE uid = 2", func(snap *Snapshot) bool {
			return len(snap.Users) == 1 && snap.Users[0] == tracker.User{UID: 2, TorrentPassVersion: 7, CanLeech: true}
		}},
		{"ban", "UPDATE xbt_users SET can_leech = 0 WHERE uid = 3", func(snap *Snapshot) bool {
			return len(snap.Users) == 1 && snap.Users[0] == tracker.User{UID: 3}
		}},
		{"delete user", "DELETE FROM xbt_users WHERE uid = 1", func(snap *Snapshot) bool {
			return len(snap.Users) == 0 && slices.Equal(snap.RemovedUsers, []uint32{1})
		}},
		{"insert torrent", "INSERT INTO xbt_files (fid, info_hash, mtime, ctime) VALUES (12, 'poll-inserted-hash-1', 1, 5)", func(snap *Snapshot) bool {
			return len(snap.Torrents) == 1 && snap.Torrents[0].Fid == 12 && string(snap.Torrents[0].InfoHash[:]) == "poll-inserted-hash-1"
		}},
		{"flag torrent deleted", "UPDATE xbt_files SET flags = 1 WHERE fid = 10", func(snap *Snapshot) bool {
			return slices.Equal(snap.RemovedTorrents, []tracker.InfoHash{hashOf(10)}) && slices.Equal(snap.DeletedFids, []uint32{10})
		}},
		{"hard delete torrent", "DELETE FROM xbt_files WHERE fid = 11", func(snap *Snapshot) bool {
			return slices.Equal(snap.RemovedTorrents, []tracker.InfoHash{hashOf(11)})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mustExec(t, db, tc.sql)
			if snap := mustPoll(t, l); !tc.check(snap) {
				t.Fatalf("Poll = %+v", snap)
			}
			wantNoNews(t, mustPoll(t, l), "the next Poll")
			wantNoNews(t, mustLoad(t, l), "the next Load")
		})
	}
}

// A Poll re-reads only pollWindow of the changelog: a change committed
// longer than that after it was made is missed by the Polls but delivered by
// the next Load (whose window is longer); and changes the Polls delivered
// before their window moved on are not delivered again by that Load.
func TestLoaderPollWindow(t *testing.T) {
	ctx := context.Background()
	db, s, _ := writerDB(t, "")
	seedUsers(t, db, 1, 2)
	l := NewLoader(db, s)
	l.pollWindow = 50 * time.Millisecond
	mustLoad(t, l)

	mustExec(t, db, "UPDATE xbt_users SET wait_time = 5 WHERE uid = 2")
	if snap := mustPoll(t, l); len(snap.Users) != 1 || snap.Users[0].UID != 2 {
		t.Fatalf("Poll = %+v, want uid 2", snap)
	}

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("UPDATE xbt_users SET can_leech = 0 WHERE uid = 1"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	wantEmpty(t, mustPoll(t, l), "uncommitted")
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // both changes are older than the Poll's window now
	wantEmpty(t, mustPoll(t, l), "committed later than the Poll's window")
	snap := mustLoad(t, l)
	if snap.Full || len(snap.Users) != 1 || snap.Users[0] != (tracker.User{UID: 1}) {
		t.Fatalf("Load = %+v, want only the late uid 1 (uid 2 was delivered by a Poll)", snap)
	}
	wantEmpty(t, mustPoll(t, l), "after the Load")
	wantEmpty(t, mustLoad(t, l), "after the Load")
}

// Without change tracking every Load is full and a Poll reads nothing.
func TestLoaderPollWithoutChangeTracking(t *testing.T) {
	db, s, _ := writerDB(t, "")
	seedUsers(t, db, 1)
	l := NewLoader(db, s)
	mustLoad(t, l)
	mustExec(t, db, "DROP TABLE xbt_tracker_changes")
	if !mustLoad(t, l).Full {
		t.Fatal("Load without the changelog not full")
	}
	if snap, err := l.Poll(context.Background()); !errors.Is(err, ErrPollNeedsLoad) || snap != nil {
		t.Fatalf("Poll without change tracking = %+v, %v; want ErrPollNeedsLoad", snap, err)
	}
}
