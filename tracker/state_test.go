package tracker

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"testing"
)

// savedSwarm is one torrent as ForEachSwarm hands it out.
type savedSwarm struct {
	ih    InfoHash
	fid   uint32
	peers []PeerState
}

// saveAll reads every swarm out of tr, as a clean stop does.
func saveAll(tb testing.TB, tr *Tracker) []savedSwarm {
	tb.Helper()
	var out []savedSwarm
	err := tr.ForEachSwarm(func(ih InfoHash, fid uint32, peers []PeerState) error {
		out = append(out, savedSwarm{ih, fid, append([]PeerState(nil), peers...)})
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	// A canonical order, to compare two trackers.
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i].ih[:], out[j].ih[:]) < 0 })
	for _, s := range out {
		slices.SortFunc(s.peers, func(a, b PeerState) int {
			if a.UID != b.UID {
				return int(a.UID) - int(b.UID)
			}
			return bytes.Compare(a.ID[:], b.ID[:])
		})
	}
	return out
}

// restoreAll puts saved swarms into tr, as a start does.
func restoreAll(tr *Tracker, saved []savedSwarm) RestoreResult {
	var sum RestoreResult
	for _, s := range saved {
		r := tr.RestoreSwarm(s.ih, s.fid, s.peers)
		sum.Restored += r.Restored
		sum.Skipped += r.Skipped
	}
	return sum
}

// stateFixture is a tracker with varied swarms: seeders and leechers,
// IPv4 and IPv6, completions counted, a swarm big enough for an index, a
// user with several peers on one torrent, anonymous peers. It returns the
// users and torrents it loaded, for the tracker a restart starts.
func stateFixture(t *testing.T) (*Tracker, *fakeClock, []User, []Torrent) {
	t.Helper()
	tr, clk := newTest(t, func(s *Settings) { s.AnonymousAnnounce = true })
	var users []User
	for uid := uint32(1); uid <= 60; uid++ {
		u := user(uid)
		if uid == 7 {
			u.TorrentsLimit = 3
		}
		if uid == 8 {
			u.PeersLimit = 2
		}
		users = append(users, u)
		tr.UpsertUser(u)
	}
	var torrents []Torrent
	for i := range 6 {
		tt := torrent(uint32(100+i), hashN(i), t0-3600)
		torrents = append(torrents, tt)
		tr.UpsertTorrent(tt)
	}
	r := rand.New(rand.NewPCG(1, 2))
	n := 0
	peer := func(uid uint32, ti int, left uint64, v6 bool) *Announce {
		n++
		a := ann(uid, hashN(ti), n, left)
		if v6 {
			a.Addr = addr6(n)
		}
		a.Uploaded, a.Downloaded = r.Uint64N(1<<40), r.Uint64N(1<<40)
		return a
	}
	// Torrent 0: big (60 peers, an index), every user once, mixed.
	for uid := uint32(1); uid <= 60; uid++ {
		left := uint64(0)
		if uid%3 == 0 {
			left = 1000 * uint64(uid)
		}
		mustOK(t, tr, peer(uid, 0, left, uid%4 == 0))
	}
	// User 7 leeches torrents 1 and 2 (limit 3); user 8 has two leeching
	// peers on torrent 1 (peers limit 2) and seeds torrent 3.
	mustOK(t, tr, peer(7, 1, 500, false))
	mustOK(t, tr, peer(7, 2, 500, true))
	mustOK(t, tr, peer(8, 1, 500, false))
	mustOK(t, tr, peer(8, 1, 700, true))
	mustOK(t, tr, peer(8, 3, 0, false))
	// A leecher that completed (counted) on torrent 4, then a leecher.
	done := peer(9, 4, 100, false)
	mustOK(t, tr, done)
	done.Left, done.Event = 0, EventCompleted
	mustOK(t, tr, done)
	mustOK(t, tr, peer(10, 4, 100, false))
	// Anonymous peers on torrent 5.
	mustOK(t, tr, peer(0, 5, 0, false))
	mustOK(t, tr, peer(0, 5, 10, true))
	clk.Add(60)
	tr.Drain() // the final flush wrote all this
	return tr, clk, users, torrents
}

// newStarted is the tracker of the next start: the same users and torrents
// loaded (the completed counts from the database), no peers.
func newStarted(t *testing.T, clk *fakeClock, users []User, torrents []Torrent, from *Tracker) *Tracker {
	t.Helper()
	tr := New(from.Settings(), Options{Now: clk.Now})
	tr.ReplaceUsers(users)
	for i := range torrents {
		if got, ok := from.Torrent(torrents[i].InfoHash); ok {
			torrents[i].Completed = got.Completed
		}
	}
	tr.ReplaceTorrents(torrents)
	return tr
}

// TestRestoreIsLikeNoRestart: the swarms, every count, the users'
// leeching-torrent counts and the next announce's credit of a restored
// tracker are those of the tracker that stopped; the ledger stays empty.
func TestRestoreIsLikeNoRestart(t *testing.T) {
	old, clk, users, torrents := stateFixture(t)
	saved := saveAll(t, old)
	if len(saved) != 6 {
		t.Fatalf("%d swarms saved, want 6", len(saved))
	}
	clk.Add(5) // the restart
	nu := newStarted(t, clk, users, torrents, old)
	res := restoreAll(nu, saved)
	if res.Skipped != 0 || res.Restored != old.Stats().Peers {
		t.Fatalf("restore %+v, want all %d peers", res, old.Stats().Peers)
	}
	checkInvariants(t, nu)
	if n := nu.LedgerLen(); n != 0 {
		t.Fatalf("ledger has %d rows after a restore, want 0", n)
	}
	if got, want := saveAll(t, nu), saved; !reflect.DeepEqual(got, want) {
		t.Fatalf("restored swarms differ from the saved ones")
	}
	so, sn := old.Stats(), nu.Stats()
	if so.Seeders != sn.Seeders || so.Leechers != sn.Leechers || so.TorrentsWithPeers != sn.TorrentsWithPeers {
		t.Fatalf("stats: stopped %+v, restored %+v", so, sn)
	}
	for uid := uint32(1); uid <= 60; uid++ {
		if a, b := old.users.leechingTorrents(uid), nu.users.leechingTorrents(uid); a != b {
			t.Errorf("uid %d leeches %d torrents, %d after the restore", uid, b, a)
		}
	}

	// The same announces on both: the same answers, the same ledger. The
	// counters grew during the restart: credited once, from the saved ones.
	for _, s := range saved {
		for i, p := range s.peers {
			if i%3 != 0 {
				continue
			}
			a := &Announce{InfoHash: s.ih, PeerID: p.ID, Addr: p.Addr, Port: p.Port, NumWant: 200,
				Uploaded: p.Uploaded + 1000, Downloaded: p.Downloaded + 2000, Left: p.Left}
			if p.UID != 0 {
				a.Passkey = pk(p.UID, s.ih)
			}
			if p.Left > 0 && i%2 == 0 {
				a.Left, a.Event = 0, EventCompleted // finishes during the restart
			}
			ro, rn := do(old, a), do(nu, a)
			if ro.Failure != rn.Failure || ro.Complete != rn.Complete || ro.Incomplete != rn.Incomplete ||
				len(ro.Peers4) != len(rn.Peers4) || len(ro.Peers6) != len(rn.Peers6) {
				t.Fatalf("uid %d on %x: answers differ: stopped %+v, restored %+v", p.UID, s.ih[:4], ro, rn)
			}
		}
	}
	bo, bn := old.Drain(), nu.Drain()
	for _, b := range []*Batch{bo, bn} {
		for k, f := range b.Files {
			f.Mtime = 0
			b.Files[k] = f
		}
		for k, f := range b.FileUsers {
			f.Mtime = 0
			b.FileUsers[k] = f
		}
	}
	if !reflect.DeepEqual(bo.Users, bn.Users) || !reflect.DeepEqual(bo.Files, bn.Files) || !reflect.DeepEqual(bo.FileUsers, bn.FileUsers) {
		t.Fatalf("ledgers differ:\nstopped  %+v\nrestored %+v", bo, bn)
	}
	if d := bn.Users[9]; d.Uploaded != 0 && d.Uploaded%1000 != 0 {
		t.Fatalf("uid 9 credited %+v", d)
	}
	// Each peer of uid 1..60 on torrent 0 moved 1000 up and 2000 down.
	var up uint64
	for _, d := range bn.Users {
		up += d.Uploaded
	}
	if want := uint64(1000 * countEvery3(saved)); up != want {
		t.Fatalf("credited %d bytes up, want %d (1000 per announcing peer, anonymous excluded)", up, want)
	}
	checkInvariants(t, nu)
}

// countEvery3 counts the registered peers TestRestoreIsLikeNoRestart
// announces again (every third of each swarm).
func countEvery3(saved []savedSwarm) int {
	n := 0
	for _, s := range saved {
		for i, p := range s.peers {
			if i%3 == 0 && p.UID != 0 {
				n++
			}
		}
	}
	return n
}

// TestRestoreLimits: torrents_limit and peers_limit hold after a restore
// exactly as before the stop.
func TestRestoreLimits(t *testing.T) {
	old, clk, users, torrents := stateFixture(t)
	nu := newStarted(t, clk, users, torrents, old)
	restoreAll(nu, saveAll(t, old))

	// uid 7 seeds torrent 0 and leeches torrents 1 and 2: two leeching
	// torrents, limit 3: one more is fine, then no more.
	if n := nu.users.leechingTorrents(7); n != 2 {
		t.Fatalf("uid 7 leeches %d torrents after the restore, want 2", n)
	}
	mustOK(t, nu, ann(7, hashN(3), 9001, 100))
	mustFail(t, nu, ann(7, hashN(4), 9002, 100), ErrTorrentsLimitReached)
	// A new leeching peer on a torrent already leeched does not count.
	mustOK(t, nu, ann(7, hashN(1), 9003, 100))
	// Stopping one leeching torrent frees a slot.
	a := ann(7, hashN(3), 9001, 100)
	a.Event = EventStopped
	mustOK(t, nu, a)
	mustOK(t, nu, ann(7, hashN(4), 9002, 100))

	// uid 8 has two leeching peers on torrent 1 (limit 2): a third is refused;
	// a restored one still announces.
	mustFail(t, nu, ann(8, hashN(1), 9004, 100), ErrPeersLimitReached)
	var restored8 *PeerState
	for _, s := range saveAll(t, nu) {
		if s.ih == hashN(1) {
			for i := range s.peers {
				if s.peers[i].UID == 8 {
					restored8 = &s.peers[i]
				}
			}
		}
	}
	if restored8 == nil {
		t.Fatal("uid 8's peer on torrent 1 not restored")
	}
	b := &Announce{InfoHash: hashN(1), PeerID: restored8.ID, Addr: restored8.Addr, Port: restored8.Port,
		Left: restored8.Left, Uploaded: restored8.Uploaded, Downloaded: restored8.Downloaded, NumWant: -1, Passkey: pk(8, hashN(1))}
	mustOK(t, nu, b)
	checkInvariants(t, nu)
	// Expiry after the restore: counts go back to zero.
	clk.Add(3 * testInterval)
	nu.Expire()
	checkInvariants(t, nu)
	for uid := uint32(1); uid <= 60; uid++ {
		if n := nu.users.leechingTorrents(uid); n != 0 {
			t.Fatalf("uid %d leeches %d torrents after every peer expired", uid, n)
		}
	}
}

// TestRestoreSkips: peers of torrents or users no longer loaded, of a
// torrent with another fid now, and peers already present are skipped; a
// swarm that lost peers records its new counts, nothing else is recorded.
func TestRestoreSkips(t *testing.T) {
	old, clk, users, torrents := stateFixture(t)
	saved := saveAll(t, old)
	users = slices.DeleteFunc(users, func(u User) bool { return u.UID == 9 }) // deleted while stopped
	var keep []Torrent
	for _, tt := range torrents {
		switch tt.InfoHash {
		case hashN(5): // deleted while stopped
			continue
		case hashN(3): // re-uploaded under the same hash: another fid
			tt.Fid = 999
		}
		keep = append(keep, tt)
	}
	nu := newStarted(t, clk, users, keep, old)
	// A peer that announced before the restore (not done in serve, but
	// the live one wins).
	live := ann(1, hashN(0), 1, 0) // peerN(1) is uid 1's peer on torrent 0
	mustOK(t, nu, live)
	nu.Drain()

	res := restoreAll(nu, saved)
	checkInvariants(t, nu)
	// uid 9's peer on torrent 0 and on torrent 4, torrent 5's two peers,
	// torrent 3's one peer, the live peer of uid 1.
	if res.Skipped != 6 {
		t.Fatalf("skipped %d peers, want 6 (%+v)", res.Skipped, res)
	}
	if s, l := counts(nu, hashN(3)); s+l != 0 {
		t.Fatalf("torrent with another fid got %d peers", s+l)
	}
	b := nu.Drain()
	if len(b.Users)+len(b.FileUsers)+len(b.NewFiles) != 0 {
		t.Fatalf("restore recorded %+v", b)
	}
	// Torrents 0 and 4 lost uid 9's peer: their counts are recorded.
	for _, i := range []int{0, 4} {
		s, l := counts(nu, hashN(i))
		f, ok := b.Files[uint32(100+i)]
		if !ok || f.Seeders != s || f.Leechers != l || f.Completed != 0 {
			t.Fatalf("torrent %d: recorded %+v (%v), counts %d/%d", i, f, ok, s, l)
		}
	}
	if len(b.Files) != 2 {
		t.Fatalf("files recorded %+v, want torrents 0 and 4 only", b.Files)
	}
}

// TestDropAllPeers undoes a restore completely.
func TestDropAllPeers(t *testing.T) {
	old, clk, users, torrents := stateFixture(t)
	nu := newStarted(t, clk, users, torrents, old)
	restoreAll(nu, saveAll(t, old))
	nu.DropAllPeers()
	checkInvariants(t, nu)
	if st := nu.Stats(); st.Peers != 0 || st.TorrentsWithPeers != 0 || st.Torrents != 6 {
		t.Fatalf("stats after DropAllPeers: %+v", st)
	}
	for uid := uint32(1); uid <= 60; uid++ {
		if n := nu.users.leechingTorrents(uid); n != 0 {
			t.Fatalf("uid %d leeches %d torrents", uid, n)
		}
	}
	if n := nu.LedgerLen(); n != 0 {
		t.Fatalf("ledger %d", n)
	}
}

// BenchmarkStateExportRestore1M: reading 1,000,000 peers out of a tracker
// (ForEachSwarm, what a stop saves) and putting them into a fresh one
// (RestoreSwarm, what a start loads), the population of
// BenchmarkPeerMemory1M. The file's encoding and decoding are measured in
// internal/statefile (BenchmarkSave1M, BenchmarkLoad1M).
func BenchmarkStateExportRestore1M(b *testing.B) {
	tr, users, torrents := population1M(b)
	saved := saveAll(b, tr)
	b.Run("export", func(b *testing.B) {
		for b.Loop() {
			n := 0
			_ = tr.ForEachSwarm(func(ih InfoHash, fid uint32, peers []PeerState) error {
				n += len(peers)
				return nil
			})
			if n != 1_000_000 {
				b.Fatal(n)
			}
		}
	})
	b.Run("restore", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			nu := New(tr.Settings(), Options{Now: tr.now})
			nu.ReplaceUsers(users)
			nu.ReplaceTorrents(torrents)
			b.StartTimer()
			r := restoreAll(nu, saved)
			if r.Restored != 1_000_000 {
				b.Fatalf("%+v", r)
			}
		}
	})
}

// population1M is BenchmarkPeerMemory1M's population: 1,000,000 peers of
// 100,000 users over 100,000 torrents of Zipf popularity, 60% seeders.
func population1M(b *testing.B) (*Tracker, []User, []Torrent) {
	const nUsers, nTorrents, nPeers = 100_000, 100_000, 1_000_000
	tr, _ := newTest(b, nil)
	users := make([]User, 0, nUsers)
	for uid := uint32(1); uid <= nUsers; uid++ {
		users = append(users, user(uid))
	}
	tr.ReplaceUsers(users)
	torrents := make([]Torrent, nTorrents)
	for i := range torrents {
		torrents[i] = torrent(uint32(i+1), hashN(i), t0)
	}
	tr.ReplaceTorrents(torrents)
	hashes := make([]InfoHash, nTorrents)
	for i := range torrents {
		hashes[i] = torrents[i].InfoHash
	}
	r := rand.New(rand.NewPCG(1, 2))
	announcePopulation(b, tr, r, nPeers, nUsers, zipfPicker(r, hashes), nil)
	tr.Drain()
	return tr, users, torrents
}
