package tracker

import "math/rand/v2"

// sample appends up to n peers of s (locked) to out. The pool is the
// leechers, plus the seeders unless the requester is a seeder (a seeder has
// nothing to gain from another seeder). The requester, at slot self when
// present, is never handed out.
//
// The sample walks the pool from a random start with a random stride
// coprime with the pool size: every peer has the same chance to be picked,
// the walk visits distinct peers, it costs O(n) whatever the swarm size and
// it needs no scratch memory (math/rand/v2's global functions neither
// allocate nor lock).
func (s *swarm) sample(out *AnnounceResult, self slot, present, seeder bool, n int, wantID bool) {
	nl := len(s.leechers)
	size := nl
	if !seeder {
		size += len(s.seeders)
	}
	// The requester's position in the pool, or -1. A seeder is not in its
	// own pool (the leechers).
	selfIdx := -1
	if present {
		switch {
		case !self.seeder():
			selfIdx = self.pos()
		case !seeder:
			selfIdx = nl + self.pos()
		}
	}
	avail := size
	if selfIdx >= 0 {
		avail--
	}
	if n > avail {
		n = avail
	}
	if n <= 0 {
		return
	}
	start, stride := 0, 1
	if n < avail {
		start = rand.IntN(size)
		stride = coprimeStride(size)
	}
	for i, got := start, 0; got < n; i += stride {
		if i >= size {
			i -= size
		}
		if i == selfIdx {
			continue
		}
		var p *peer
		if i < nl {
			p = &s.leechers[i]
		} else {
			p = &s.seeders[i-nl]
		}
		if p.flags&flagV6 != 0 {
			out.Peers6 = s.appendCompact6(out.Peers6, p)
			if wantID {
				out.PeerIDs6 = append(out.PeerIDs6, p.id)
			}
		} else {
			// A fixed-size copy instead of append(..., p.addr[:6]...): the
			// compiler emits two moves rather than a memmove call, which
			// shows in profiles since nearly every peer is IPv4.
			if n := len(out.Peers4); n+6 <= cap(out.Peers4) {
				out.Peers4 = out.Peers4[:n+6]
				*(*[6]byte)(out.Peers4[n:]) = *(*[6]byte)(p.addr[:6])
			} else {
				out.Peers4 = append(out.Peers4, p.addr[:6]...)
			}
			if wantID {
				out.PeerIDs4 = append(out.PeerIDs4, p.id)
			}
		}
		got++
	}
}

// coprimeStride returns a random stride in [1, size) coprime with size
// (size >= 2), so that stepping by it modulo size visits every index once.
func coprimeStride(size int) int {
	for range 8 {
		st := 1 + rand.IntN(size-1)
		if gcd(st, size) == 1 {
			return st
		}
	}
	return 1 // unlucky draws (probability < 1%): a plain window
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
