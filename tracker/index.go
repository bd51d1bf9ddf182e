package tracker

import (
	"encoding/binary"
	"math/bits"
)

// bigIndex is the index of a swarm with more than smallSwarm peers: a hash
// table with linear probing, sized to a power of two and kept at most 3/4
// full, deleting by backward shift (no tombstones).
//
// It maps (uid, peer_id) to a slot. An entry is the slot alone (4 bytes):
// the key is read from the record it points to, which is where the key
// already lives. A registered user's peers are placed by the hash of the
// uid alone, so all of them lie in the run of entries that starts at that
// hash (linear probing keeps an entry between its home and the next empty
// entry): counting a user's peers walks that run, and there is no
// per-user table (it cost 11 bytes a peer). Anonymous peers (uid 0) are
// placed by the hash of the peer_id. The hash is keyed with the shard's
// random seed, so clients cannot choose uids or peer_ids that collide;
// maxUserPeers bounds the run one user can make.
type bigIndex struct {
	seed   uint64
	peers  []uint32 // slot, or emptyEntry
	npeers int
}

const emptyEntry = ^uint32(0)

// buildIndex indexes every peer of s.
func buildIndex(s *swarm) *bigIndex {
	n := s.len()
	b := &bigIndex{seed: s.sh.hashSeed()}
	b.peers = make([]uint32, tableSize(n))
	for i := range b.peers {
		b.peers[i] = emptyEntry
	}
	for _, seeder := range [2]bool{false, true} {
		l := *s.list(seeder)
		for i := range l {
			sl := slot(i)
			if seeder {
				sl |= seederBit
			}
			b.insertPeer(s, &l[i], sl)
		}
	}
	return b
}

// tableSize is the smallest power of two, at least 16, that holds n entries
// at most 3/4 full.
func tableSize(n int) int {
	size := 16
	for size*3 < n*4 {
		size *= 2
	}
	return size
}

func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// peerHash hashes a peer key (wyhash's construction over its 24 bytes).
func peerHash(seed uint64, uid uint32, id *PeerID) uint64 {
	const k0, k1, k2 = 0xa0761d6478bd642f, 0xe7037ed1a0b428db, 0x8ebc6af09c88c6e3
	a := binary.LittleEndian.Uint64(id[0:8])
	b := binary.LittleEndian.Uint64(id[8:16])
	c := uint64(binary.LittleEndian.Uint32(id[16:20]))<<32 | uint64(uid)
	h := mix(a^k0, b^seed)
	h = mix(c^k1, h^k2)
	return mix(h^k0, 24^k1)
}

func userHash(seed uint64, uid uint32) uint64 {
	const k0, k1 = 0xa0761d6478bd642f, 0xe7037ed1a0b428db
	return mix(uint64(uid)^seed^k0, k1)
}

// home is where the entry of key (uid, id) starts its probe.
func (b *bigIndex) home(uid uint32, id *PeerID) int {
	if uid != 0 {
		return int(userHash(b.seed, uid)) & (len(b.peers) - 1)
	}
	return int(peerHash(b.seed, 0, id)) & (len(b.peers) - 1)
}

// find returns the position of key k in b.peers, or where it would go.
func (b *bigIndex) find(s *swarm, k *peerKey) (int, bool) {
	mask := len(b.peers) - 1
	i := b.home(k.uid, &k.id)
	for {
		e := b.peers[i]
		if e == emptyEntry {
			return i, false
		}
		if p := s.at(slot(e)); p.uid == k.uid && p.id == k.id {
			return i, true
		}
		i = (i + 1) & mask
	}
}

// insertPeer indexes p (not indexed yet) at sl.
func (b *bigIndex) insertPeer(s *swarm, p *peer, sl slot) {
	if (b.npeers+1)*4 > len(b.peers)*3 {
		b.growPeers(s)
	}
	i, _ := b.find(s, &peerKey{p.uid, p.id})
	b.peers[i] = uint32(sl)
	b.npeers++
}

func (b *bigIndex) growPeers(s *swarm) {
	old := b.peers
	b.peers = make([]uint32, len(old)*2)
	for i := range b.peers {
		b.peers[i] = emptyEntry
	}
	mask := len(b.peers) - 1
	for _, e := range old {
		if e == emptyEntry {
			continue
		}
		p := s.at(slot(e))
		i := b.home(p.uid, &p.id)
		for b.peers[i] != emptyEntry {
			i = (i + 1) & mask
		}
		b.peers[i] = e
	}
}

// repoint makes the entry of p (indexed, and now also a copy at sl) point
// at sl.
func (b *bigIndex) repoint(s *swarm, p *peer, sl slot) {
	mask := len(b.peers) - 1
	i := b.home(p.uid, &p.id)
	for {
		e := b.peers[i]
		if e == emptyEntry {
			panic("tracker: peer index lost an entry")
		}
		if q := s.at(slot(e)); q.uid == p.uid && q.id == p.id {
			b.peers[i] = uint32(sl)
			return
		}
		i = (i + 1) & mask
	}
}

// deletePeer removes p's entry, shifting back the entries after it that
// would otherwise no longer be found.
func (b *bigIndex) deletePeer(s *swarm, p *peer) {
	i, ok := b.find(s, &peerKey{p.uid, p.id})
	if !ok {
		panic("tracker: peer index lost an entry")
	}
	mask := len(b.peers) - 1
	for j := (i + 1) & mask; ; j = (j + 1) & mask {
		e := b.peers[j]
		if e == emptyEntry {
			break
		}
		q := s.at(slot(e))
		home := b.home(q.uid, &q.id)
		// Move e into the hole at i unless its home lies cyclically in (i, j].
		if (j-home)&mask >= (j-i)&mask {
			b.peers[i] = e
			i = j
		}
	}
	b.peers[i] = emptyEntry
	b.npeers--
}

// user counts uid's peers (uid != 0): they all lie in the run of entries
// from uid's home to the next empty entry.
func (b *bigIndex) user(s *swarm, uid uint32) userPeers {
	var c userPeers
	mask := len(b.peers) - 1
	for i := int(userHash(b.seed, uid)) & mask; b.peers[i] != emptyEntry; i = (i + 1) & mask {
		sl := slot(b.peers[i])
		if s.at(sl).uid == uid {
			c.total++
			if !sl.seeder() {
				c.leeching++
			}
		}
	}
	return c
}
