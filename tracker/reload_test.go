package tracker

import (
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func TestReplaceUsers(t *testing.T) {
	h := hashN(1)
	tr, _ := newTest(t, nil)
	tr.UpsertTorrent(torrent(1, h, t0))
	passA, passB := strings.Repeat("a", 32), strings.Repeat("b", 32)
	tr.ReplaceUsers([]User{
		{UID: 1, CanLeech: true},
		{UID: 2, CanLeech: true, TorrentPass: passA},
		{UID: 3, CanLeech: true, TorrentsLimit: 1},
		{UID: 0, CanLeech: true}, // reserved: ignored
	})
	if st := tr.Stats(); st.Users != 3 {
		t.Fatalf("%d users", st.Users)
	}
	mustOK(t, tr, ann(3, h, 3, 10)) // uid 3 leeches: its counter must survive
	tr.ReplaceUsers([]User{
		{UID: 1, CanLeech: false},                    // updated
		{UID: 4, CanLeech: true, TorrentPass: passB}, // added
		{UID: 5, CanLeech: true},                     // added
		{UID: 5, CanLeech: true, TorrentsLimit: 9},   // twice: last wins
	}) // 2 and 3 removed
	if st := tr.Stats(); st.Users != 3 {
		t.Fatalf("%d users", st.Users)
	}
	if u, ok := tr.User(1); !ok || u.CanLeech {
		t.Errorf("user 1 %+v %v", u, ok)
	}
	if u, _ := tr.User(5); u.TorrentsLimit != 9 {
		t.Errorf("user 5 %+v", u)
	}
	for _, uid := range []uint32{0, 2, 3} {
		if _, ok := tr.User(uid); ok {
			t.Errorf("user %d present", uid)
		}
	}
	legacyAnn := func(pass string) *Announce { a := ann(0, h, 9, 0); a.Passkey = []byte(pass); return a }
	mustFail(t, tr, legacyAnn(passA), ErrUnregisteredTorrentPass)
	mustOK(t, tr, legacyAnn(passB))
	mustFail(t, tr, ann(1, h, 1, 10), ErrCanNotLeech)
	mustFail(t, tr, ann(3, h, 3, 10), ErrUnregisteredTorrentPass)
	// uid 3's peer is still there (XBT keeps it until it expires), and so is
	// its leeching counter, as a tombstone.
	checkInvariants(t, tr)
	if n := tr.users.leechingTorrents(3); n != 1 {
		t.Fatalf("uid 3 leeching counter %d", n)
	}
	// Re-adding uid 3 keeps the count: the limit still applies.
	tr.UpsertUser(User{UID: 3, CanLeech: true, TorrentsLimit: 1})
	tr.UpsertTorrent(torrent(2, hashN(2), t0))
	mustFail(t, tr, ann(3, hashN(2), 4, 10), ErrTorrentsLimitReached)
	checkInvariants(t, tr)
}

func TestReplaceTorrents(t *testing.T) {
	h1, h2, h3, auto := hashN(1), hashN(2), hashN(3), hashN(4)
	tr, _ := newTest(t, func(s *Settings) { s.AutoRegister = true })
	tr.UpsertUser(User{UID: 1, CanLeech: true, TorrentsLimit: 2})
	tr.ReplaceTorrents([]Torrent{
		{Fid: 1, InfoHash: h1, Ctime: t0, Completed: 10},
		{Fid: 2, InfoHash: h2, Ctime: t0, Completed: 20},
	})
	for _, h := range []InfoHash{h1, h2, auto} {
		a := ann(1, h, 1, 10)
		if h == auto {
			a.Left = 0
		}
		mustOK(t, tr, a)
	}
	a := ann(1, h1, 2, 0)
	a.Event = EventCompleted
	mustOK(t, tr, a) // in-memory completed of h1: 11
	mustFail(t, tr, ann(1, h3, 3, 10), ErrTorrentsLimitReached)
	tr.Drain()

	tr.ReplaceTorrents([]Torrent{
		{Fid: 1, InfoHash: h1, Ctime: t0 + 5, Completed: 10}, // DB behind memory: memory kept
		{Fid: 3, InfoHash: h3, Ctime: t0, Completed: 30},     // new
	}) // h2 removed with its peer; auto (fid 0) kept
	if got, _ := tr.Torrent(h1); got != (Torrent{Fid: 1, InfoHash: h1, Ctime: t0 + 5, Completed: 11}) {
		t.Errorf("h1 %+v", got)
	}
	if _, ok := tr.Torrent(h2); ok {
		t.Error("h2 not removed")
	}
	if got, ok := tr.Torrent(auto); !ok || got.Fid != 0 {
		t.Errorf("auto-registered torrent %+v %v", got, ok)
	}
	if got, _ := tr.Torrent(h3); got.Completed != 30 {
		t.Errorf("h3 %+v", got)
	}
	if st := tr.Stats(); st.Torrents != 3 || st.Peers != 3 || st.Leechers != 1 {
		t.Errorf("stats %+v", st)
	}
	// h2's leeching peer is gone, so the torrents limit has room again.
	mustOK(t, tr, ann(1, h3, 3, 10))
	checkInvariants(t, tr)

	// DB ahead of memory: take it.
	tr.UpsertTorrent(Torrent{Fid: 1, InfoHash: h1, Ctime: t0, Completed: 50})
	if got, _ := tr.Torrent(h1); got.Completed != 50 {
		t.Errorf("h1 %+v", got)
	}
	// RemoveTorrent.
	if !tr.RemoveTorrent(h1) || tr.RemoveTorrent(h1) {
		t.Error("RemoveTorrent results")
	}
	if st := tr.Stats(); st.Torrents != 2 || st.Peers != 2 {
		t.Errorf("stats %+v", st)
	}
	checkInvariants(t, tr)
	// An announce for a removed torrent: auto_register brings it back as new.
	mustOK(t, tr, ann(1, h1, 1, 0))
	if got, _ := tr.Torrent(h1); got.Fid != 0 || got.Completed != 0 {
		t.Errorf("re-registered %+v", got)
	}
	checkInvariants(t, tr)
}

// TestReloadWhileAnnouncing runs reloads (users and torrents) against
// concurrent announces; run it with -race. Afterwards every counter must
// match the peers actually stored.
func TestReloadWhileAnnouncing(t *testing.T) {
	tr, clk := newTest(t, func(s *Settings) { s.AutoRegister = false })
	const nTorrents, nUsers = 8, 20
	hashes := make([]InfoHash, nTorrents)
	all := make([]Torrent, nTorrents)
	for i := range hashes {
		hashes[i] = hashN(i)
		all[i] = torrent(uint32(i+1), hashes[i], t0)
	}
	users := make([]User, nUsers)
	for i := range users {
		users[i] = User{UID: uint32(i + 1), CanLeech: true, TorrentsLimit: 5, PeersLimit: 3}
	}
	tr.ReplaceUsers(users)
	tr.ReplaceTorrents(all)

	var stop atomic.Bool
	var wg sync.WaitGroup
	var ok atomic.Int64
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out AnnounceResult
			for i := 0; !stop.Load() || i < 300; i++ {
				uid := uint32(1 + rand.IntN(nUsers))
				h := hashes[rand.IntN(nTorrents)]
				a := ann(uid, h, g*100+rand.IntN(10), uint64(rand.IntN(3)))
				a.Event = Event(rand.IntN(4))
				tr.Announce(a, &out)
				if out.Failure == "" {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 200 {
			// Half the users and torrents come and go.
			tr.ReplaceUsers(users[:nUsers/2+i%2*nUsers/2])
			tr.ReplaceTorrents(all[:nTorrents/2+i%2*nTorrents/2])
			if i%3 == 0 {
				tr.RemoveTorrent(hashes[0])
				tr.UpsertTorrent(all[0])
				tr.RemoveUser(1)
				tr.UpsertUser(users[0])
			}
			if i%50 == 0 {
				tr.Expire()
				tr.Drain()
			}
		}
		stop.Store(true)
	}()
	wg.Wait()
	if ok.Load() == 0 {
		t.Fatal("no announce succeeded")
	}
	checkInvariants(t, tr)
	clk.Add(10 * testInterval)
	tr.Expire()
	checkInvariants(t, tr)
	if st := tr.Stats(); st.Peers != 0 || st.TorrentsWithPeers != 0 {
		t.Fatalf("after full expiry %+v", st)
	}
	for _, u := range users {
		if n := tr.users.leechingTorrents(u.UID); n != 0 {
			t.Errorf("uid %d leeching counter %d with no peers", u.UID, n)
		}
	}
}
