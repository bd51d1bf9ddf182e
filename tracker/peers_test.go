package tracker

import (
	"testing"
)

// TestAnnounceDeltas: credit only for the same peer (same uid and peer_id)
// announcing again with neither counter going down.
func TestAnnounceDeltas(t *testing.T) {
	h := hashN(1)
	type step struct {
		uid      uint32
		peer     int
		up, down uint64
		event    Event
	}
	cases := []struct {
		name   string
		steps  []step
		credit map[uint32]UserDelta // expected Users rows after all steps
		peers  int                  // live peers at the end
	}{
		{"normal credit", []step{{1, 1, 0, 0, EventStarted}, {1, 1, 1000, 500, EventNone}, {1, 1, 1500, 700, EventNone}},
			map[uint32]UserDelta{1: {1500, 700}}, 1},
		{"a new peer's counters are a baseline", []step{{1, 1, 5000, 4000, EventStarted}, {1, 1, 5100, 4000, EventNone}},
			map[uint32]UserDelta{1: {100, 0}}, 1},
		{"restart with counters reset", []step{{1, 1, 0, 0, EventStarted}, {1, 1, 1000, 500, EventNone},
			{1, 1, 10, 5, EventStarted}, {1, 1, 110, 55, EventNone}},
			map[uint32]UserDelta{1: {1100, 550}}, 1},
		{"uploaded going down", []step{{1, 1, 1000, 500, EventStarted}, {1, 1, 900, 600, EventNone}, {1, 1, 1000, 700, EventNone}},
			map[uint32]UserDelta{1: {100, 100}}, 1},
		{"downloaded going down", []step{{1, 1, 1000, 500, EventStarted}, {1, 1, 2000, 400, EventNone}, {1, 1, 2001, 401, EventNone}},
			map[uint32]UserDelta{1: {1, 1}}, 1},
		{"same peer_id by another user: no hijack, no credit", []step{
			{1, 1, 1000, 500, EventStarted},
			{2, 1, 2000, 1000, EventNone}, // a distinct peer: baseline
			{1, 1, 1100, 600, EventNone},  // user 1's peer is intact
			{2, 1, 2050, 1000, EventNone},
		}, map[uint32]UserDelta{1: {100, 100}, 2: {50, 0}}, 2},
		{"credit on stopped", []step{{1, 1, 1000, 500, EventStarted}, {1, 1, 1500, 700, EventStopped}},
			map[uint32]UserDelta{1: {500, 200}}, 0},
		{"stopped after a reset: no credit", []step{{1, 1, 1000, 500, EventStarted}, {1, 1, 10, 10, EventStopped}},
			map[uint32]UserDelta{}, 0},
		{"after stopped the peer is new again", []step{{1, 1, 1000, 500, EventStarted}, {1, 1, 1000, 500, EventStopped},
			{1, 1, 3000, 3000, EventStarted}, {1, 1, 3001, 3000, EventNone}},
			map[uint32]UserDelta{1: {1, 0}}, 1},
		{"zero delta writes no user row", []step{{1, 1, 10, 10, EventStarted}, {1, 1, 10, 10, EventNone}},
			map[uint32]UserDelta{}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr, _ := newTest(t, nil)
			tr.UpsertTorrent(torrent(9, h, t0))
			tr.UpsertUser(user(1))
			tr.UpsertUser(user(2))
			var fu = map[uint32]UserDelta{}
			for _, st := range c.steps {
				a := ann(st.uid, h, st.peer, 10)
				a.Uploaded, a.Downloaded, a.Event = st.up, st.down, st.event
				mustOK(t, tr, a)
			}
			b := tr.Drain()
			if len(b.Users) != len(c.credit) {
				t.Errorf("Users = %v, want %v", b.Users, c.credit)
			}
			for uid, want := range c.credit {
				if got := b.Users[uid]; got != want {
					t.Errorf("uid %d credited %+v, want %+v", uid, got, want)
				}
			}
			// files_users carries the same credit.
			for k, d := range b.FileUsers {
				if k.Fid != 9 {
					t.Errorf("files_users key %v", k)
				}
				fu[k.UID] = UserDelta{d.Uploaded, d.Downloaded}
			}
			for uid, want := range c.credit {
				if fu[uid] != want {
					t.Errorf("files_users uid %d: %+v, want %+v", uid, fu[uid], want)
				}
			}
			if s, l := counts(tr, h); s+l != c.peers {
				t.Errorf("%d peers, want %d", s+l, c.peers)
			}
			checkInvariants(t, tr)
		})
	}
}

func TestAnnounceCompleted(t *testing.T) {
	h := hashN(1)
	type step struct {
		peer  int
		left  uint64
		event Event
	}
	cases := []struct {
		name  string
		steps []step
		want  uint64
	}{
		{"event=completed", []step{{1, 100, EventStarted}, {1, 0, EventCompleted}}, 1},
		{"event=completed twice counts once", []step{{1, 100, EventStarted}, {1, 0, EventCompleted}, {1, 0, EventCompleted}}, 1},
		{"left reaches 0 without event (Better)", []step{{1, 100, EventStarted}, {1, 50, EventNone}, {1, 0, EventNone}}, 1},
		{"then event=completed: no double count", []step{{1, 100, EventStarted}, {1, 0, EventNone}, {1, 0, EventCompleted}}, 1},
		{"aria2: stopped with left=0", []step{{1, 100, EventStarted}, {1, 0, EventStopped}}, 1},
		{"leech again and finish again: once per peer", []step{{1, 100, EventStarted}, {1, 0, EventNone}, {1, 10, EventNone}, {1, 0, EventCompleted}}, 1},
		{"a seeder from the start never completes", []step{{1, 0, EventStarted}, {1, 0, EventNone}, {1, 0, EventStopped}}, 0},
		{"a new peer sending completed counts", []step{{1, 0, EventCompleted}}, 1},
		{"completed with bytes left is no completion", []step{{1, 100, EventStarted}, {1, 40, EventCompleted}}, 0},
		{"a new peer's completed with bytes left is none", []step{{1, 40, EventCompleted}}, 0},
		{"completed with bytes left, then the real finish", []step{{1, 100, EventStarted}, {1, 40, EventCompleted}, {1, 0, EventCompleted}}, 1},
		{"two peers", []step{{1, 100, EventStarted}, {2, 100, EventStarted}, {1, 0, EventCompleted}, {2, 0, EventNone}}, 2},
		{"a new peer after stop counts again", []step{{1, 100, EventStarted}, {1, 0, EventCompleted}, {1, 0, EventStopped},
			{1, 100, EventStarted}, {1, 0, EventCompleted}}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr, _ := newTest(t, nil)
			tr.UpsertTorrent(Torrent{Fid: 4, InfoHash: h, Ctime: t0, Completed: 10})
			tr.UpsertUser(user(1))
			for _, st := range c.steps {
				a := ann(1, h, st.peer, st.left)
				a.Event = st.event
				mustOK(t, tr, a)
			}
			b := tr.Drain()
			if got := b.Files[4].Completed; got != c.want {
				t.Errorf("files completed delta %d, want %d", got, c.want)
			}
			if got := b.FileUsers[FileUserKey{4, 1}].Completed; got != c.want {
				t.Errorf("files_users completed %d, want %d", got, c.want)
			}
			if got, _ := tr.Torrent(h); got.Completed != 10+c.want {
				t.Errorf("in-memory completed %d, want %d", got.Completed, 10+c.want)
			}
			var out ScrapeResult
			tr.SetSettings(func() Settings { s := tr.Settings(); s.AnonymousScrape = true; return s }())
			tr.Scrape(&ScrapeRequest{InfoHashes: []InfoHash{h}}, &out)
			if len(out.Files) != 1 || out.Files[0].Downloaded != int(10+c.want) {
				t.Errorf("scrape %+v", out)
			}
		})
	}
}

func TestAnnounceActive(t *testing.T) {
	h := hashN(1)
	tr, _ := newTest(t, nil)
	tr.UpsertTorrent(torrent(3, h, t0))
	tr.UpsertUser(user(1))
	k := FileUserKey{3, 1}
	mustOK(t, tr, ann(1, h, 1, 10))
	mustOK(t, tr, ann(1, h, 2, 20))
	if d := tr.Drain().FileUsers[k]; !d.Active || d.Announced != 2 || d.Left != 20 || d.Mtime != t0 {
		t.Fatalf("two peers: %+v", d)
	}
	a := ann(1, h, 1, 7)
	a.Event = EventStopped
	mustOK(t, tr, a)
	if d := tr.Drain().FileUsers[k]; !d.Active || d.Left != 7 {
		t.Fatalf("one of two stopped: %+v", d)
	}
	a = ann(1, h, 2, 0)
	a.Event = EventStopped
	mustOK(t, tr, a)
	if d := tr.Drain().FileUsers[k]; d.Active || d.Announced != 1 {
		t.Fatalf("both stopped: %+v", d)
	}
	checkInvariants(t, tr)
}

func TestExpire(t *testing.T) {
	h, h2 := hashN(1), hashN(2)
	tr, clk := newTest(t, nil)
	tr.UpsertTorrent(torrent(1, h, t0))
	tr.UpsertTorrent(torrent(2, h2, t0))
	tr.UpsertUser(User{UID: 1, CanLeech: true, TorrentsLimit: 1})
	tr.UpsertUser(user(2))
	mustOK(t, tr, ann(1, h, 1, 10)) // user 1 leeches h: expires
	mustOK(t, tr, ann(2, h, 2, 0))  // user 2 seeds h: expires
	mustOK(t, tr, ann(2, h, 3, 10)) // user 2 leeches h: refreshed below
	clk.Add(1000)
	mustOK(t, tr, ann(2, h, 3, 5))
	mustFail(t, tr, ann(1, h2, 5, 10), ErrTorrentsLimitReached)
	tr.Drain()

	clk.Add(testInterval*3/2 - 1000) // exactly 1.5 intervals after t0: not yet
	if n := tr.Expire(); n != 0 {
		t.Fatalf("expired %d peers at exactly 1.5 intervals", n)
	}
	if tr.Drain().Len() != 0 {
		t.Fatal("Expire with nothing to do wrote to the ledger")
	}
	clk.Add(1)
	if n := tr.Expire(); n != 2 {
		t.Fatalf("expired %d, want 2", n)
	}
	if s, l := counts(tr, h); s != 0 || l != 1 {
		t.Fatalf("counts after expiry %d/%d", s, l)
	}
	b := tr.Drain()
	if f := b.Files[1]; f.Seeders != 0 || f.Leechers != 1 || f.Mtime != clk.Unix() {
		t.Errorf("files row %+v", f)
	}
	if d, ok := b.FileUsers[FileUserKey{1, 1}]; !ok || d.Active || d.Left != 10 || d.Mtime != clk.Unix() || d.Announced != 0 {
		t.Errorf("user 1 row %+v, %v", d, ok)
	}
	if d, ok := b.FileUsers[FileUserKey{1, 2}]; ok {
		t.Errorf("user 2 still has a peer, but got row %+v", d)
	}
	if st := tr.Stats(); st.Expired != 2 || st.Peers != 1 {
		t.Errorf("stats %+v", st)
	}
	// User 1's leeching torrent is gone: the limit lets it leech h2 now.
	mustOK(t, tr, ann(1, h2, 5, 10))
	checkInvariants(t, tr)

	// Everything goes eventually.
	clk.Add(10 * testInterval)
	if n := tr.Expire(); n != 2 {
		t.Fatalf("expired %d, want 2", n)
	}
	if st := tr.Stats(); st.Peers != 0 || st.TorrentsWithPeers != 0 {
		t.Errorf("stats %+v", st)
	}
	checkInvariants(t, tr)
}

func TestExpireShrinks(t *testing.T) {
	h := hashN(1)
	tr, clk := newTest(t, func(s *Settings) { s.AnonymousAnnounce = true })
	tr.UpsertTorrent(torrent(1, h, t0))
	for i := range 2000 {
		mustOK(t, tr, ann(0, h, i, uint64(i%2)))
	}
	clk.Add(testInterval)
	for i := range 10 {
		mustOK(t, tr, ann(0, h, i, uint64(i%2)))
	}
	clk.Add(testInterval)
	if n := tr.Expire(); n != 1990 {
		t.Fatalf("expired %d", n)
	}
	s := swarmOf(tr, h)
	if cap(s.seeders) > 64 || cap(s.leechers) > 64 {
		t.Errorf("slices not shrunk: caps %d %d", cap(s.seeders), cap(s.leechers))
	}
	checkInvariants(t, tr)
	for i := range 10 {
		mustOK(t, tr, ann(0, h, i, 0))
	}
	checkInvariants(t, tr)
}

// In a cluster, what the engine records without an announce carries the
// time of the swarm's newest announce (never older than the expiry
// cutoff), so that another instance's newer announces win in the database.
func TestExpireClusterMtime(t *testing.T) {
	h := hashN(1)
	s := testSettings()
	clk := &fakeClock{}
	clk.unix.Store(t0)
	tr := New(s, Options{Now: clk.Now, Cluster: true})
	tr.UpsertTorrent(torrent(1, h, t0))
	tr.UpsertUser(user(1))
	tr.UpsertUser(user(2))
	mustOK(t, tr, ann(1, h, 1, 10)) // t0: expires below
	clk.Add(1000)
	mustOK(t, tr, ann(2, h, 2, 0)) // t0+1000: stays
	stopped := ann(2, h, 3, 0)
	mustOK(t, tr, stopped)
	clk.Add(100)
	stopped.Event = EventStopped
	mustOK(t, tr, stopped) // t0+1100: the swarm's newest announce
	tr.Drain()

	clk.Add(testInterval*3/2 - 1100 + 1) // past t0's expiry
	if n := tr.Expire(); n != 1 {
		t.Fatalf("expired %d, want 1", n)
	}
	b := tr.Drain()
	if f := b.Files[1]; f.Seeders != 1 || f.Leechers != 0 || f.Mtime != t0+1100 {
		t.Errorf("files row %+v, want mtime %d (the newest announce)", f, t0+1100)
	}
	if d := b.FileUsers[FileUserKey{1, 1}]; d.Active || d.Mtime != t0+1100 {
		t.Errorf("user 1 row %+v, want inactive at %d", d, t0+1100)
	}

	// All gone: the cutoff, newer than anything this instance wrote.
	clk.Add(10 * testInterval)
	if n := tr.Expire(); n != 1 {
		t.Fatalf("expired %d, want 1", n)
	}
	cutoff := clk.Unix() - int64(testInterval)*3/2
	if f := tr.Drain().Files[1]; f.Seeders != 0 || f.Mtime != cutoff {
		t.Errorf("files row %+v, want mtime %d (the cutoff)", f, cutoff)
	}
	checkInvariants(t, tr)
}
