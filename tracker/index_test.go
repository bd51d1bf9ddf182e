package tracker

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// TestSwarmIndexModel drives one swarm through random announces (new
// peers, periodic, left changes moving peers between seeders and leechers,
// stops, IPv4/IPv6 address changes, users sharing peer_ids) and expiry, so
// that it crosses the small/indexed boundary many times, and after every
// round compares the swarm with a model: the invariants, every peer's
// presence, and the exact set of addresses a full sample hands out.
func TestSwarmIndexModel(t *testing.T) {
	tr, clk := newTest(t, func(s *Settings) {
		s.AnonymousAnnounce = true
		s.MaxNumWant = 100_000
	})
	for uid := uint32(1); uid <= 20; uid++ {
		tr.UpsertUser(user(uid))
	}
	h := hashN(1)
	tr.UpsertTorrent(torrent(1, h, t0))
	type mpeer struct {
		addr     netip.Addr
		port     uint16
		left     uint64
		lastSeen int64
	}
	model := map[peerKey]*mpeer{}
	r := rand.New(rand.NewPCG(5, 6))
	var out AnnounceResult
	for round := range 60 {
		// Alternate growth and decline, so the swarm is sometimes large
		// (indexed) and sometimes small (scanned).
		target := 10 + r.IntN(3)*100
		for range 400 {
			uid := uint32(r.IntN(21)) // 0 = anonymous
			k := peerKey{uid, peerN(r.IntN(target + 1))}
			a := &Announce{InfoHash: h, PeerID: k.id, NumWant: 0, Port: uint16(1 + r.IntN(60000))}
			if uid != 0 {
				a.Passkey = pk(uid, h)
			}
			if r.IntN(3) == 0 {
				a.Addr = addr6(r.IntN(1000))
			} else {
				a.Addr = addr4(r.IntN(1000))
			}
			if r.IntN(2) == 0 {
				a.Left = uint64(r.IntN(3)) * 100
			}
			switch r.IntN(10) {
			case 0:
				a.Event = EventStopped
			case 1:
				a.Event = EventStarted
			case 2:
				a.Event = EventCompleted
			}
			if len(model) > target && a.Event != EventStopped && model[k] == nil {
				a.Event = EventStopped // shrink towards the target
			}
			tr.Announce(a, &out)
			if out.Failure != "" {
				t.Fatal(out.Failure)
			}
			if a.Event == EventStopped {
				delete(model, k)
			} else {
				model[k] = &mpeer{a.Addr, a.Port, a.Left, clk.Unix()}
			}
			if r.IntN(50) == 0 {
				clk.Add(testInterval / 2)
			}
		}
		if round%5 == 4 {
			clk.Add(testInterval)
			tr.Expire()
			cutoff := clk.Unix() - testInterval*3/2
			for k, p := range model {
				if p.lastSeen < cutoff {
					delete(model, k)
				}
			}
		}
		checkInvariants(t, tr)
		s := swarmOf(tr, h)
		s.mu.Lock()
		if s.len() != len(model) {
			t.Fatalf("round %d: swarm has %d peers, model %d", round, s.len(), len(model))
		}
		if (s.big != nil) != (s.len() > smallSwarm) && s.len() > smallSwarm {
			t.Fatalf("round %d: %d peers without an index", round, s.len())
		}
		var want4, want6 [][]byte
		for k, p := range model {
			sl, ok := s.lookup(k)
			if !ok {
				t.Fatalf("round %d: peer %v missing", round, k)
			}
			if got := s.at(sl); got.left != p.left || got.uid != k.uid || got.id != k.id {
				t.Fatalf("round %d: peer %v stored as %+v", round, k, got)
			}
			b := p.addr.AsSlice()
			b = binary.BigEndian.AppendUint16(b, p.port)
			if p.addr.Is4() {
				want4 = append(want4, b)
			} else {
				want6 = append(want6, b)
			}
		}
		if s.v6 != nil && len(s.v6.addrs)-len(s.v6.free) != len(want6) {
			t.Fatalf("round %d: v6 table holds %d, want %d", round, len(s.v6.addrs)-len(s.v6.free), len(want6))
		}
		// A leecher with no slot is handed every peer.
		out.Reset()
		s.sample(&out, 0, false, false, 1<<30, false)
		s.mu.Unlock()
		if !sameEntries(out.Peers4, 6, want4) || !sameEntries(out.Peers6, 18, want6) {
			t.Fatalf("round %d: sample hands out %d/%d entries, want %d/%d (or different ones)",
				round, len(out.Peers4)/6, len(out.Peers6)/18, len(want4), len(want6))
		}
	}
}

func sameEntries(flat []byte, size int, want [][]byte) bool {
	if len(flat) != size*len(want) {
		return false
	}
	var got []string
	for i := 0; i < len(flat); i += size {
		got = append(got, string(flat[i:i+size]))
	}
	var w []string
	for _, b := range want {
		w = append(w, string(b))
	}
	slices.Sort(got)
	slices.Sort(w)
	return slices.Equal(got, w)
}

// TestPeerIndexCollisions fills an indexed swarm with peers whose keys
// share a table position (same seed, searched for), then removes them in
// random order: lookups and backward-shift deletion must hold up.
func TestPeerIndexCollisions(t *testing.T) {
	tr, _ := newTest(t, func(s *Settings) { s.AnonymousAnnounce = true })
	h := hashN(1)
	tr.UpsertTorrent(torrent(1, h, t0))
	for i := range 100 { // indexed from the start of the test
		mustOK(t, tr, ann(0, h, i, uint64(i%2)))
	}
	s := swarmOf(tr, h)
	seed := s.sh.hashSeed()
	mask := uint64(255) // the table holds 256 entries at 100..192 peers
	var ids []int
	for n := 1_000_000; len(ids) < 40; n++ {
		id := peerN(n)
		if peerHash(seed, 0, &id)&mask == 7 {
			ids = append(ids, n)
		}
	}
	for _, n := range ids {
		mustOK(t, tr, ann(0, h, n, uint64(n%2)))
	}
	checkInvariants(t, tr)
	r := rand.New(rand.NewPCG(1, 1))
	r.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	for i, n := range ids {
		a := ann(0, h, n, 0)
		a.Event = EventStopped
		mustOK(t, tr, a)
		if i%5 == 0 {
			checkInvariants(t, tr)
		}
		s.mu.Lock()
		for _, m := range ids[i+1:] {
			if _, ok := s.lookup(peerKey{0, peerN(m)}); !ok {
				s.mu.Unlock()
				t.Fatalf("after removing %d of the colliding peers, peer %d is lost", i+1, m)
			}
		}
		s.mu.Unlock()
	}
	if st := tr.Stats(); st.Peers != 100 {
		t.Fatalf("%d peers", st.Peers)
	}
}
