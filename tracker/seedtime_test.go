package tracker

import "testing"

// TestSeedLeechTime: the interval since a peer's previous announce is
// credited to (fid, uid) as seed or leech time, by what the peer was during
// it, when it is not longer than the expiry (1.5 × interval = 2700 s here).
func TestSeedLeechTime(t *testing.T) {
	const expiry = testInterval * 3 / 2
	type step struct {
		wait  int64 // seconds before the announce
		peer  int
		left  uint64
		event Event
	}
	cases := []struct {
		name        string
		steps       []step
		expire      bool // run Expire after the steps
		seed, leech uint64
	}{
		{"first announce adds nothing", []step{{0, 1, 0, EventStarted}}, false, 0, 0},
		{"seeding intervals", []step{{0, 1, 0, EventStarted}, {100, 1, 0, EventNone}, {200, 1, 0, EventNone}}, false, 300, 0},
		{"leeching intervals", []step{{0, 1, 50, EventStarted}, {100, 1, 40, EventNone}, {200, 1, 30, EventNone}}, false, 0, 300},
		{"leech then seed: the interval is what it was", []step{
			{0, 1, 50, EventStarted}, {100, 1, 0, EventCompleted}, {200, 1, 0, EventNone}}, false, 200, 100},
		{"seed then leech (re-check)", []step{{0, 1, 0, EventStarted}, {70, 1, 10, EventNone}, {30, 1, 5, EventNone}}, false, 70, 30},
		{"gap of exactly the expiry counts", []step{{0, 1, 0, EventStarted}, {expiry, 1, 0, EventNone}}, false, expiry, 0},
		{"too-long gap adds nothing", []step{{0, 1, 0, EventStarted}, {expiry + 1, 1, 0, EventNone}, {10, 1, 0, EventNone}}, false, 10, 0},
		{"stop counts", []step{{0, 1, 0, EventStarted}, {100, 1, 0, EventStopped}}, false, 100, 0},
		{"after a stop the next announce is a first one", []step{
			{0, 1, 5, EventStarted}, {100, 1, 5, EventStopped}, {50, 1, 5, EventStarted}}, false, 0, 100},
		{"two peers of one user add both", []step{
			{0, 1, 0, EventStarted}, {0, 2, 50, EventStarted}, {100, 1, 0, EventNone}, {0, 2, 50, EventNone}}, false, 100, 100},
		{"expiry adds nothing", []step{{0, 1, 0, EventStarted}, {100, 1, 0, EventNone}, {expiry + 1, 0, 0, EventNone}}, true, 100, 0},
	}
	h := hashN(1)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr, clk := newTest(t, nil)
			tr.UpsertTorrent(torrent(1, h, t0))
			tr.UpsertUser(user(1))
			for _, s := range tc.steps {
				clk.Add(s.wait)
				if s.peer == 0 {
					continue
				}
				a := ann(1, h, s.peer, s.left)
				a.Event = s.event
				mustOK(t, tr, a)
			}
			if tc.expire {
				if n := tr.Expire(); n != 1 {
					t.Fatalf("Expire removed %d peers, want 1", n)
				}
			}
			fu := tr.Drain().FileUsers[FileUserKey{1, 1}]
			if fu.SeedTime != tc.seed || fu.LeechTime != tc.leech {
				t.Errorf("seed %d leech %d, want %d %d", fu.SeedTime, fu.LeechTime, tc.seed, tc.leech)
			}
		})
	}
}

// TestSeedTimeNotForAnonymousOrUnregistered: no user or no fid, no row, no
// time.
func TestSeedTimeNotForAnonymousOrUnregistered(t *testing.T) {
	h, h2 := hashN(1), hashN(2)
	tr, clk := newTest(t, func(s *Settings) { s.AnonymousAnnounce, s.AutoRegister = true, true })
	tr.UpsertTorrent(torrent(1, h, t0))
	tr.UpsertUser(user(1))
	mustOK(t, tr, ann(0, h, 1, 0))
	mustOK(t, tr, ann(1, h2, 2, 0)) // auto-registered: fid 0
	clk.Add(100)
	mustOK(t, tr, ann(0, h, 1, 0))
	mustOK(t, tr, ann(1, h2, 2, 0))
	for k, fu := range tr.Drain().FileUsers {
		if fu.SeedTime|fu.LeechTime != 0 {
			t.Errorf("%+v: %+v", k, fu)
		}
	}
}

// TestSeedTimeAcrossDrainRestore: a window that failed to be written keeps
// its time, added to the next window's.
func TestSeedTimeAcrossDrainRestore(t *testing.T) {
	h := hashN(1)
	tr, clk := newTest(t, nil)
	tr.UpsertTorrent(torrent(1, h, t0))
	tr.UpsertUser(user(1))
	a := ann(1, h, 1, 0)
	mustOK(t, tr, a)
	clk.Add(100)
	mustOK(t, tr, a)
	b1 := tr.Drain()
	clk.Add(50)
	a.Left = 9
	mustOK(t, tr, a) // 50 more seconds seeding, now leeching
	clk.Add(25)
	mustOK(t, tr, a)
	tr.Restore(b1)
	fu := tr.Drain().FileUsers[FileUserKey{1, 1}]
	if fu.SeedTime != 150 || fu.LeechTime != 25 {
		t.Errorf("seed %d leech %d, want 150 25", fu.SeedTime, fu.LeechTime)
	}
}

// TestSeedTimeMerge: SeedTime and LeechTime are summed fields: added by
// MergeBatches and Restore, saturating, never overwritten.
func TestSeedTimeMerge(t *testing.T) {
	const maxU = ^uint64(0)
	k := FileUserKey{1, 1}
	older := &Batch{FileUsers: map[FileUserKey]FileUserDelta{k: {SeedTime: 10, LeechTime: maxU - 1, Left: 5, Mtime: 100}}}
	newer := &Batch{FileUsers: map[FileUserKey]FileUserDelta{k: {SeedTime: 7, LeechTime: 5, Left: 0, Mtime: 200}}}
	got := MergeBatches(older, newer).FileUsers[k]
	want := FileUserDelta{SeedTime: 17, LeechTime: maxU, Left: 0, Mtime: 200}
	if got != want {
		t.Errorf("MergeBatches %+v, want %+v", got, want)
	}

	tr, _ := newTest(t, nil)
	tr.Restore(newer)
	tr.Restore(older) // older goes behind what the ledger holds
	if got := tr.Drain().FileUsers[k]; got != want {
		t.Errorf("Restore %+v, want %+v", got, want)
	}
}

// TestSeedTimeAcrossWarmRestart: a restored peer keeps its lastSeen, so
// its next announce credits the whole interval, the restart included.
func TestSeedTimeAcrossWarmRestart(t *testing.T) {
	h := hashN(1)
	old, clk := newTest(t, nil)
	users, torrents := []User{user(1)}, []Torrent{torrent(1, h, t0)}
	old.ReplaceUsers(users)
	old.ReplaceTorrents(torrents)
	mustOK(t, old, ann(1, h, 1, 0))
	old.Drain()
	saved := saveAll(t, old)
	clk.Add(40) // the restart
	nu := newStarted(t, clk, users, torrents, old)
	restoreAll(nu, saved)
	clk.Add(60)
	mustOK(t, nu, ann(1, h, 1, 0))
	if fu := nu.Drain().FileUsers[FileUserKey{1, 1}]; fu.SeedTime != 100 || fu.LeechTime != 0 {
		t.Errorf("seed %d leech %d after a warm restart, want 100 0", fu.SeedTime, fu.LeechTime)
	}
}
