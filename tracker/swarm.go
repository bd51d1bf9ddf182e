package tracker

import (
	"encoding/binary"
	"net/netip"
	"sync"
)

// peer is one peer of a swarm, stored by value in a slice: no pointer per
// peer (the garbage collector never scans peer memory) and 64 bytes each
// (59 used). Field order puts the 8-byte fields first so that no padding is
// wasted between fields.
type peer struct {
	uploaded   uint64
	downloaded uint64
	left       uint64
	uid        uint32 // 0 = anonymous
	lastSeen   uint32 // unix seconds (good until 2106)
	id         PeerID
	// addr is the ready compact IPv4 form, 4-byte address + 2-byte port,
	// so handing a peer out is a single 6-byte copy. An IPv6 peer (flagV6)
	// keeps its port in addr[4:6] and in addr[:4] the position of its
	// address in the swarm's v6 table: IPv6 peers are the minority, and
	// 12 more bytes in every record would cost more than the table.
	addr  [6]byte
	flags uint8
}

const (
	flagV6      uint8 = 1 << iota // addr holds an IPv6 entry's port and v6 table position
	flagCounted                   // this peer's completion was counted
)

func (p *peer) v6pos() uint32 { return binary.LittleEndian.Uint32(p.addr[:4]) }

// setAddr stores a peer's address and port, keeping the v6 table in step.
// p is a record of s or a new record about to be added to s.
func (s *swarm) setAddr(p *peer, a netip.Addr, port uint16) {
	a = a.Unmap()
	if a.Is6() {
		b := a.As16()
		if p.flags&flagV6 != 0 {
			s.v6.addrs[p.v6pos()] = b
		} else {
			binary.LittleEndian.PutUint32(p.addr[:4], s.v6put(&b))
			p.flags |= flagV6
		}
		binary.BigEndian.PutUint16(p.addr[4:], port)
		return
	}
	if p.flags&flagV6 != 0 {
		s.v6del(p.v6pos())
		p.flags &^= flagV6
	}
	var b [4]byte
	if a.Is4() {
		b = a.As4()
	} // an invalid address (never sent by a frontend) becomes 0.0.0.0
	copy(p.addr[:4], b[:])
	binary.BigEndian.PutUint16(p.addr[4:], port)
}

// appendCompact6 appends p's 18-byte compact IPv6 entry (p has flagV6).
func (s *swarm) appendCompact6(dst []byte, p *peer) []byte {
	dst = append(dst, s.v6.addrs[p.v6pos()][:]...)
	return append(dst, p.addr[4:6]...)
}

// v6table holds the IPv6 addresses of a swarm's IPv6 peers; free lists
// the positions of removed ones for reuse.
type v6table struct {
	addrs [][16]byte
	free  []uint32
}

func (s *swarm) v6put(a *[16]byte) uint32 {
	if s.v6 == nil {
		s.v6 = &v6table{}
	}
	t := s.v6
	if n := len(t.free); n > 0 {
		i := t.free[n-1]
		t.free = t.free[:n-1]
		t.addrs[i] = *a
		return i
	}
	t.addrs = append(t.addrs, *a)
	return uint32(len(t.addrs) - 1)
}

func (s *swarm) v6del(i uint32) {
	t := s.v6
	t.addrs[i] = [16]byte{}
	t.free = append(t.free, i)
	if len(t.free) == len(t.addrs) {
		s.v6 = nil // no IPv6 peer left
	}
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
// count (torrents_limit). They are not stored: a small swarm scans its
// records, a big one walks the run of its index where that user's peers
// are (see bigIndex).
type userPeers struct {
	total, leeching int
}

// maxUserPeers is the most peers one user may have on one swarm (a new one
// beyond it gets "peers limit reached"). No client comes near it; it bounds
// the index run a big swarm walks to count one user's peers.
const maxUserPeers = 1024

// smallSwarm is the peer count up to which a swarm has no index: finding a
// peer or counting a user's peers scans the records (at most 2 KB, a few
// dozen nanoseconds), and the swarm spends no memory on hash tables. Most
// torrents of a private tracker have fewer peers than this. A swarm that
// grows past it gets a bigIndex; one that shrinks below half of it (in
// expiry) drops it again.
const smallSwarm = 32

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
	peak      int    // largest peer count since the last shrink

	ih InfoHash
	// lastAnnounce is the time of the newest announce recorded for this
	// swarm (unix seconds), the mtime of the counts it wrote: in a cluster
	// the counts recorded without an announce carry it (countsMtime). It
	// fills what would be padding after ih.
	lastAnnounce uint32
	sh           *torrentShard
	// stored is, in a cluster, the torrent's counts as the database holds
	// them (StoreCounts); nil until a refresh read them, and always alone,
	// so a lone instance's swarms stay in the same size class.
	stored *storedCounts

	seeders  []peer
	leechers []peer
	big      *bigIndex // nil while the swarm is small (see smallSwarm)
	v6       *v6table  // nil while the swarm has no IPv6 peer
}

func newSwarm(sh *torrentShard, ih *InfoHash, fid uint32, ctime int64, completed uint64) *swarm {
	return &swarm{fid: fid, ctime: ctime, completed: completed, ih: *ih, sh: sh}
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

// appendPeer appends p to l, growing it by one record while it is small
// and by an eighth once it is larger, rather than append's doubling: most
// swarms are small and never grow again, and every record of slack costs
// as much as a peer. Growth stays geometric past the small sizes, so adding
// is amortised O(1); below them a copy is at most exactRecords records.
func appendPeer(l []peer, p *peer) []peer {
	if len(l) == cap(l) {
		c := len(l) + 1
		if len(l) >= exactRecords {
			c += len(l) / 8
		}
		n := make([]peer, len(l), c)
		copy(n, l)
		l = n
	}
	return append(l, *p)
}

// exactRecords is the slice length up to which appendPeer grows a slice
// one record at a time (12 records: 768 bytes, an exact size class).
const exactRecords = 12

// lookup finds the peer with key k.
func (s *swarm) lookup(k peerKey) (slot, bool) {
	if s.big != nil {
		i, ok := s.big.find(s, &k)
		if !ok {
			return 0, false
		}
		return slot(s.big.peers[i]), true
	}
	for i := range s.leechers {
		if p := &s.leechers[i]; p.uid == k.uid && p.id == k.id {
			return slot(i), true
		}
	}
	for i := range s.seeders {
		if p := &s.seeders[i]; p.uid == k.uid && p.id == k.id {
			return slot(i) | seederBit, true
		}
	}
	return 0, false
}

// add appends p to the slice its left value calls for and indexes it.
func (s *swarm) add(p *peer) slot {
	seeder := p.left == 0
	l := s.list(seeder)
	sl := slot(len(*l))
	if seeder {
		sl |= seederBit
	}
	*l = appendPeer(*l, p)
	s.count(seeder, 1)
	n := s.len()
	if n == 1 {
		s.sh.withPeers.Add(1)
	} else if n > s.peak {
		s.peak = n
	}
	switch {
	case s.big != nil:
		s.big.insertPeer(s, p, sl)
	case n > smallSwarm:
		s.big = buildIndex(s)
	}
	return sl
}

// cut swap-deletes the entry at sl from its slice, re-indexing the entry
// that moved into its place, without touching the index entry of the peer
// removed (the caller deletes or repoints it first).
func (s *swarm) cut(sl slot) {
	l := s.list(sl.seeder())
	i, last := sl.pos(), len(*l)-1
	if i != last {
		(*l)[i] = (*l)[last]
		if s.big != nil {
			m := &(*l)[i]
			s.big.repoint(s, m, sl)
		}
	}
	(*l)[last] = peer{}
	*l = (*l)[:last]
}

// del removes the peer at sl.
func (s *swarm) del(sl slot) {
	p := s.at(sl)
	if p.flags&flagV6 != 0 {
		s.v6del(p.v6pos())
	}
	if s.big != nil {
		s.big.deletePeer(s, p)
	}
	s.cut(sl)
	s.count(sl.seeder(), -1)
	if s.len() == 0 {
		s.sh.withPeers.Add(-1)
	}
}

// move moves the peer at sl to the other slice (after its left value
// changed between zero and non-zero) and returns its new slot.
func (s *swarm) move(sl slot) slot {
	p := s.at(sl)
	seeder := !sl.seeder()
	l := s.list(seeder)
	nsl := slot(len(*l))
	if seeder {
		nsl |= seederBit
	}
	// Copy first, repoint the index at the copy, then cut the original:
	// the index never holds a slot whose record is not the peer's.
	*l = appendPeer(*l, p)
	if s.big != nil {
		s.big.repoint(s, &(*l)[nsl.pos()], nsl)
	}
	s.cut(sl)
	s.count(sl.seeder(), -1)
	s.count(seeder, 1)
	return nsl
}

// userCount returns uid's peer counts here.
func (s *swarm) userCount(uid uint32) userPeers {
	if uid == 0 {
		return userPeers{}
	}
	if s.big != nil {
		return s.big.user(s, uid)
	}
	var c userPeers
	for i := range s.leechers {
		if s.leechers[i].uid == uid {
			c.leeching++
		}
	}
	c.total = c.leeching
	for i := range s.seeders {
		if s.seeders[i].uid == uid {
			c.total++
		}
	}
	return c
}

// userDel is called once a peer of uid has been removed; last reports that
// it was uid's last leeching peer here, active whether uid still has any
// peer here.
func (s *swarm) userDel(uid uint32, leech bool) (last, active bool) {
	if uid == 0 {
		return false, false
	}
	c := s.userCount(uid)
	return leech && c.leeching == 0, c.total > 0
}

// userMove is called once a peer of uid has turned leecher (toLeech) or
// seeder; it reports whether uid's leeching count crossed between 0 and 1.
func (s *swarm) userMove(uid uint32, toLeech bool) (crossed bool) {
	if uid == 0 {
		return false
	}
	c := s.userCount(uid)
	if toLeech {
		return c.leeching == 1
	}
	return c.leeching == 0
}

// active reports whether uid has at least one live peer here.
func (s *swarm) active(uid uint32) bool { return s.userCount(uid).total > 0 }

// shrink gives memory back after a swarm lost most of its peers: slices
// never shrink by themselves, and a flash crowd would otherwise pin its
// peak memory forever. Called from expiry, never from announce.
func (s *swarm) shrink() {
	n := s.len()
	if s.peak < 256 || n*4 > s.peak {
		if s.big != nil && n <= smallSwarm/2 {
			s.big = nil
		}
		return
	}
	s.seeders = shrinkPeers(s.seeders)
	s.leechers = shrinkPeers(s.leechers)
	s.compactV6()
	if n <= smallSwarm/2 {
		s.big = nil
	} else {
		s.big = buildIndex(s)
	}
	s.peak = n
}

func shrinkPeers(l []peer) []peer {
	if cap(l) < 64 || len(l)*4 > cap(l) {
		return l
	}
	return append(make([]peer, 0, len(l)+len(l)/4+1), l...)
}

// compactV6 renumbers the v6 table densely (after many IPv6 peers left).
func (s *swarm) compactV6() {
	if s.v6 == nil || len(s.v6.free) < 64 || len(s.v6.free)*2 < len(s.v6.addrs) {
		return
	}
	old := s.v6
	s.v6 = nil
	for _, l := range [][]peer{s.seeders, s.leechers} {
		for i := range l {
			if p := &l[i]; p.flags&flagV6 != 0 {
				binary.LittleEndian.PutUint32(p.addr[:4], s.v6put(&old.addrs[p.v6pos()]))
			}
		}
	}
}

// dropAll removes every peer (the torrent is being deleted), fixing the shard
// counters and the users' leeching-torrent counts.
func (t *Tracker) dropAll(s *swarm) {
	if n := s.len(); n > 0 {
		s.sh.seeders.Add(-int64(len(s.seeders)))
		s.sh.leechers.Add(-int64(len(s.leechers)))
		s.sh.withPeers.Add(-1)
	}
	// Each user with a leeching peer here leeches one torrent less.
	if s.big != nil {
		// Rare (a deleted torrent): a set is simpler than walking runs.
		seen := make(map[uint32]struct{})
		for i := range s.leechers {
			if uid := s.leechers[i].uid; uid != 0 {
				if _, ok := seen[uid]; !ok {
					seen[uid] = struct{}{}
					t.users.addLeeching(uid, -1)
				}
			}
		}
	} else {
	leechers:
		for i := range s.leechers {
			uid := s.leechers[i].uid
			if uid == 0 {
				continue
			}
			for j := range i {
				if s.leechers[j].uid == uid {
					continue leechers // counted already
				}
			}
			t.users.addLeeching(uid, -1)
		}
	}
	s.seeders, s.leechers, s.big, s.v6 = nil, nil, nil, nil
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
