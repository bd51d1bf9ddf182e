package tracker

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// fillSwarm announces nSeeders seeders (peers 0..) and nLeechers leechers
// (peers 1000..) anonymously on h.
func fillSwarm(t *testing.T, tr *Tracker, h InfoHash, nSeeders, nLeechers int) {
	t.Helper()
	for i := range nSeeders {
		mustOK(t, tr, ann(0, h, i, 0))
	}
	for i := range nLeechers {
		mustOK(t, tr, ann(0, h, 1000+i, 10))
	}
}

func anonTracker(t *testing.T, mod func(*Settings)) (*Tracker, InfoHash) {
	tr, _ := newTest(t, func(s *Settings) {
		s.AnonymousAnnounce = true
		if mod != nil {
			mod(s)
		}
	})
	h := hashN(1)
	tr.UpsertTorrent(torrent(1, h, t0))
	return tr, h
}

func TestNumWant(t *testing.T) {
	cases := []struct {
		name              string
		mod               func(*Settings)
		seeders, leechers int
		numWant           int
		left              uint64
		want              int
	}{
		{"default", nil, 50, 100, -1, 10, 50},
		{"asked for fewer", nil, 50, 100, 10, 10, 10},
		{"zero", nil, 50, 100, 0, 10, 0},
		{"capped at the maximum", nil, 50, 100, 1000, 10, 80},
		{"exactly the maximum", nil, 50, 100, 80, 10, 80},
		{"one above the maximum", nil, 50, 100, 81, 10, 80},
		{"small swarm: all but self", nil, 3, 3, -1, 10, 5},
		{"seeder: leechers only", nil, 50, 7, -1, 0, 7},
		{"alone", nil, 0, 1, -1, 10, 0},
		{"unset settings: XBT's 50", func(s *Settings) { s.DefaultNumWant, s.MaxNumWant = 0, 0 }, 50, 100, 1000, 10, 50},
		{"default above the maximum", func(s *Settings) { s.DefaultNumWant, s.MaxNumWant = 100, 30 }, 50, 100, -1, 10, 30},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr, h := anonTracker(t, c.mod)
			fillSwarm(t, tr, h, c.seeders, c.leechers)
			// The requester is one of the existing peers.
			p := 1000
			if c.left == 0 {
				p = 0
			}
			a := ann(0, h, p, c.left)
			a.NumWant = c.numWant
			out := mustOK(t, tr, a)
			if got := len(out.Peers4) / 6; got != c.want {
				t.Fatalf("%d peers, want %d", got, c.want)
			}
		})
	}
}

// TestSample checks on many random swarms that a sample never contains the
// requester, has no duplicates, only live peers, and no seeders for a seeder.
func TestSample(t *testing.T) {
	for iter := range 300 {
		tr, h := anonTracker(t, nil)
		ns, nl := rand.IntN(40), rand.IntN(40)
		fillSwarm(t, tr, h, ns, nl)
		seeders := map[netip.AddrPort]bool{}
		for i := range ns {
			seeders[netip.AddrPortFrom(addr4(i), uint16(6881+i%1000))] = true
		}
		var self int
		var left uint64
		switch r := rand.IntN(3); {
		case r == 0 && ns > 0:
			self = rand.IntN(ns) // an existing seeder
		case r == 1 && nl > 0:
			self, left = 1000+rand.IntN(nl), 10 // an existing leecher
		default:
			self, left = 5000, uint64(rand.IntN(2)) // a new peer
		}
		a := ann(0, h, self, left)
		a.NumWant = rand.IntN(50)
		out := mustOK(t, tr, a)
		selfAP := netip.AddrPortFrom(addr4(self), uint16(6881+self%1000))
		seen := map[netip.AddrPort]bool{}
		for i := 0; i < len(out.Peers4); i += 6 {
			ap := addrOf(out.Peers4[i : i+6])
			if ap == selfAP {
				t.Fatalf("iter %d: requester %v in its own sample", iter, ap)
			}
			if seen[ap] {
				t.Fatalf("iter %d: %v twice", iter, ap)
			}
			seen[ap] = true
			if left == 0 && seeders[ap] {
				t.Fatalf("iter %d: seeder got seeder %v", iter, ap)
			}
		}
		// Everybody it may get: the leechers, plus the seeders for a
		// leecher, minus itself (a seeder is not among the leechers).
		pool := nl
		if left > 0 {
			pool += ns
			if self != 5000 {
				pool-- // an existing leecher
			}
		}
		if want := min(a.NumWant, pool); len(seen) != want {
			t.Fatalf("iter %d: %d peers, want %d (ns %d nl %d self %d left %d)", iter, len(seen), want, ns, nl, self, left)
		}
	}
}

// TestSampleCoverage: over many announces every other peer is handed out,
// i.e. the sample is not stuck on a window of the swarm.
func TestSampleCoverage(t *testing.T) {
	tr, h := anonTracker(t, nil)
	fillSwarm(t, tr, h, 0, 200)
	seen := map[netip.AddrPort]int{}
	for range 200 {
		a := ann(0, h, 1000, 10)
		a.NumWant = 10
		out := mustOK(t, tr, a)
		for i := 0; i < len(out.Peers4); i += 6 {
			seen[addrOf(out.Peers4[i:i+6])]++
		}
	}
	if len(seen) < 190 {
		t.Fatalf("only %d of 199 peers ever handed out", len(seen))
	}
}

func TestSeederGetsNoSeeders(t *testing.T) {
	tr, h := anonTracker(t, nil)
	fillSwarm(t, tr, h, 30, 0)
	out := mustOK(t, tr, ann(0, h, 0, 0))
	if len(out.Peers4) != 0 || out.Complete != 30 {
		t.Fatalf("seeder among seeders got %d bytes of peers (complete %d)", len(out.Peers4), out.Complete)
	}
	// A leecher gets them.
	out = mustOK(t, tr, ann(0, h, 1000, 10))
	if len(out.Peers4) != 30*6 {
		t.Fatalf("leecher got %d bytes", len(out.Peers4))
	}
}

func TestPeersIPv6AndPeerIDs(t *testing.T) {
	tr, h := anonTracker(t, nil)
	want := map[netip.AddrPort]PeerID{}
	for i := range 10 {
		a := ann(0, h, i, 10)
		switch i % 3 {
		case 0:
			a.Addr = addr6(i)
		case 1:
			a.Addr = netip.AddrFrom16(addr4(i).As16()) // IPv4-mapped: stored as IPv4
		}
		mustOK(t, tr, a)
		want[netip.AddrPortFrom(a.Addr.Unmap(), a.Port)] = a.PeerID
	}
	a := ann(0, h, 100, 10)
	a.WantPeerID = true
	out := mustOK(t, tr, a)
	if len(out.Peers6) != 4*18 || len(out.Peers4) != 6*6 {
		t.Fatalf("peers4 %d bytes, peers6 %d bytes", len(out.Peers4), len(out.Peers6))
	}
	if len(out.PeerIDs4) != 6 || len(out.PeerIDs6) != 4 {
		t.Fatalf("peer ids %d/%d", len(out.PeerIDs4), len(out.PeerIDs6))
	}
	check := func(b []byte, size int, ids []PeerID) {
		for i := 0; i < len(b); i += size {
			ap := addrOf(b[i : i+size])
			id, ok := want[ap]
			if !ok {
				t.Fatalf("unknown peer %v", ap)
			}
			if ids[i/size] != id {
				t.Fatalf("peer %v: id %x, want %x", ap, ids[i/size], id)
			}
		}
	}
	check(out.Peers4, 6, out.PeerIDs4)
	check(out.Peers6, 18, out.PeerIDs6)

	// Without WantPeerID, no ids.
	out = mustOK(t, tr, ann(0, h, 100, 10))
	if len(out.PeerIDs4)+len(out.PeerIDs6) != 0 {
		t.Fatal("peer ids without WantPeerID")
	}
	// A peer moving from IPv6 to IPv4 is handed out as IPv4 only.
	a = ann(0, h, 0, 10) // peer 0 was IPv6
	mustOK(t, tr, a)
	out = mustOK(t, tr, ann(0, h, 100, 10))
	if len(out.Peers6) != 3*18 || len(out.Peers4) != 7*6 {
		t.Fatalf("after the move: peers4 %d bytes, peers6 %d bytes", len(out.Peers4), len(out.Peers6))
	}
}
