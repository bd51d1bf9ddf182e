package tracker

import (
	"encoding/binary"
	"net/netip"
	"sync"
)

// peer is one peer of a swarm, stored by value in a slice: no pointer per
// peer (the garbage collector never scans peer memory) and 72 bytes each.
// Field order puts the 8-byte fields first so that no padding is wasted.
type peer struct {
	uploaded   uint64
	downloaded uint64
	left       uint64
	uid        uint32 // 0 = anonymous
	lastSeen   uint32 // unix seconds (good until 2106)
	id         PeerID
	// addr is the ready compact form: 4-byte IPv4 + 2-byte port in addr[:6],
	// or 16-byte IPv6 + 2-byte port in addr[:18] (flagV6), so handing a peer
	// out is a single copy.
	addr  [18]byte
	flags uint8
}

const (
	flagV6      uint8 = 1 << iota // addr holds an IPv6 entry
	flagCounted                   // this peer's completion was counted
)

func (p *peer) setAddr(a netip.Addr, port uint16) {
	a = a.Unmap()
	if a.Is6() {
		b := a.As16()
		copy(p.addr[:16], b[:])
		binary.BigEndian.PutUint16(p.addr[16:], port)
		p.flags |= flagV6
		return
	}
	var b [4]byte
	if a.Is4() {
		b = a.As4()
	} // an invalid address (never sent by a frontend) becomes 0.0.0.0
	p.addr = [18]byte{}
	copy(p.addr[:4], b[:])
	binary.BigEndian.PutUint16(p.addr[4:], port)
	p.flags &^= flagV6
}

// peerKey identifies a peer within a swarm. The uid is part of it so that a
// user announcing another user's peer_id creates a distinct peer instead of
// taking over (and being credited for) the other one.
type peerKey struct {
	uid uint32
	id  PeerID
}

// slot is a peer's place: bit 31 set = in the seeders slice; the low 31 bits
// are the position.
type slot uint32

const seederBit slot = 1 << 31

func (sl slot) seeder() bool { return sl&seederBit != 0 }
func (sl slot) pos() int     { return int(sl &^ seederBit) }

// userPeers counts one user's peers on one swarm: total for the files_users
// "active" flag, leeching for peers_limit and for the user's leeching-torrent
// count (torrents_limit).
type userPeers struct {
	total, leeching int32
}

// swarm is one torrent and its peers. mu guards every field except ih and
// sh, which never change. Seeders and leechers live in two slices so that a
// seeder's sample is drawn from the leechers alone and the counts are simply
// the lengths.
type swarm struct {
	mu        sync.Mutex
	removed   bool // deleted from its shard; an announce holding it retries
	fid       uint32
	ctime     int64
	completed uint64 // database count + completions seen since
	peak      int    // largest peer count since index was last rebuilt

	ih InfoHash
	sh *torrentShard

	seeders  []peer
	leechers []peer
	index    map[peerKey]slot
	users    map[uint32]userPeers // uid != 0 only
}

func newSwarm(sh *torrentShard, ih *InfoHash, fid uint32, ctime int64, completed uint64) *swarm {
	return &swarm{
		fid: fid, ctime: ctime, completed: completed,
		ih: *ih, sh: sh,
		index: make(map[peerKey]slot),
		users: make(map[uint32]userPeers),
	}
}

func (s *swarm) len() int { return len(s.seeders) + len(s.leechers) }

func (s *swarm) list(seeder bool) *[]peer {
	if seeder {
		return &s.seeders
	}
	return &s.leechers
}

func (s *swarm) at(sl slot) *peer { return &(*s.list(sl.seeder()))[sl.pos()] }

func (s *swarm) count(seeder bool, d int64) {
	if seeder {
		s.sh.seeders.Add(d)
	} else {
		s.sh.leechers.Add(d)
	}
}

// add appends p to the slice its left value calls for and indexes it.
func (s *swarm) add(p *peer) slot {
	seeder := p.left == 0
	l := s.list(seeder)
	sl := slot(len(*l))
	if seeder {
		sl |= seederBit
	}
	*l = append(*l, *p)
	s.index[peerKey{p.uid, p.id}] = sl
	s.count(seeder, 1)
	if n := s.len(); n == 1 {
		s.sh.withPeers.Add(1)
	} else if n > s.peak {
		s.peak = n
	}
	return sl
}

// cut swap-deletes the entry at sl from its slice, re-indexing the entry
// that moved into its place, without touching the index entry of the peer
// removed (the caller deletes or rewrites it).
func (s *swarm) cut(sl slot) {
	l := s.list(sl.seeder())
	i, last := sl.pos(), len(*l)-1
	if i != last {
		(*l)[i] = (*l)[last]
		m := &(*l)[i]
		s.index[peerKey{m.uid, m.id}] = sl
	}
	*l = (*l)[:last]
}

// del removes the peer at sl.
func (s *swarm) del(sl slot) {
	p := s.at(sl)
	delete(s.index, peerKey{p.uid, p.id})
	s.cut(sl)
	s.count(sl.seeder(), -1)
	if s.len() == 0 {
		s.sh.withPeers.Add(-1)
	}
}

// move moves the peer at sl to the other slice (after its left value
// changed between zero and non-zero) and returns its new slot.
func (s *swarm) move(sl slot) slot {
	p := *s.at(sl)
	s.cut(sl)
	seeder := !sl.seeder()
	l := s.list(seeder)
	nsl := slot(len(*l))
	if seeder {
		nsl |= seederBit
	}
	*l = append(*l, p)
	s.index[peerKey{p.uid, p.id}] = nsl
	s.count(sl.seeder(), -1)
	s.count(seeder, 1)
	return nsl
}

// userAdd counts a new peer of uid; first reports that uid now has its first
// leeching peer here, i.e. this torrent became one of its leeching torrents.
func (s *swarm) userAdd(uid uint32, leech bool) (first bool) {
	if uid == 0 {
		return false
	}
	c := s.users[uid]
	c.total++
	if leech {
		c.leeching++
	}
	s.users[uid] = c
	return leech && c.leeching == 1
}

// userDel uncounts a removed peer of uid; last reports that uid's last
// leeching peer here is gone, active whether uid still has any peer here.
func (s *swarm) userDel(uid uint32, leech bool) (last, active bool) {
	if uid == 0 {
		return false, false
	}
	c := s.users[uid]
	c.total--
	if leech {
		c.leeching--
	}
	if c.total <= 0 {
		delete(s.users, uid)
	} else {
		s.users[uid] = c
	}
	return leech && c.leeching == 0, c.total > 0
}

// userMove records that one peer of uid turned leecher (toLeech) or seeder
// and reports whether uid's leeching count crossed between 0 and 1.
func (s *swarm) userMove(uid uint32, toLeech bool) (crossed bool) {
	if uid == 0 {
		return false
	}
	c := s.users[uid]
	if toLeech {
		c.leeching++
		crossed = c.leeching == 1
	} else {
		c.leeching--
		crossed = c.leeching == 0
	}
	s.users[uid] = c
	return crossed
}

// active reports whether uid has at least one live peer here.
func (s *swarm) active(uid uint32) bool { return s.users[uid].total > 0 }

// shrink gives memory back after a swarm lost most of its peers: Go slices
// and maps never shrink by themselves, and a flash crowd would otherwise
// pin its peak memory forever. Called from expiry, never from announce.
func (s *swarm) shrink() {
	n := s.len()
	if s.peak < 256 || n*4 > s.peak {
		return
	}
	s.seeders = shrinkPeers(s.seeders)
	s.leechers = shrinkPeers(s.leechers)
	idx := make(map[peerKey]slot, n)
	for k, v := range s.index {
		idx[k] = v
	}
	s.index = idx
	s.peak = n
}

func shrinkPeers(l []peer) []peer {
	if cap(l) < 64 || len(l)*4 > cap(l) {
		return l
	}
	return append(make([]peer, 0, len(l)*2), l...)
}

// dropAll removes every peer (the torrent is being deleted), fixing the shard
// counters and the users' leeching-torrent counts.
func (t *Tracker) dropAll(s *swarm) {
	if n := s.len(); n > 0 {
		s.sh.seeders.Add(-int64(len(s.seeders)))
		s.sh.leechers.Add(-int64(len(s.leechers)))
		s.sh.withPeers.Add(-1)
	}
	for uid, c := range s.users {
		if c.leeching > 0 {
			t.users.addLeeching(uid, -1)
		}
	}
	s.seeders, s.leechers = nil, nil
	s.index = make(map[peerKey]slot)
	s.users = make(map[uint32]userPeers)
	s.peak = 0
}

// removePeer removes the peer at sl with all bookkeeping and reports the
// peer's uid and whether that user still has a peer on this swarm.
func (t *Tracker) removePeer(s *swarm, sl slot) (uid uint32, active bool) {
	p := s.at(sl)
	uid, leech := p.uid, p.left > 0
	s.del(sl)
	last, active := s.userDel(uid, leech)
	if last {
		t.users.addLeeching(uid, -1)
	}
	return uid, active
}
