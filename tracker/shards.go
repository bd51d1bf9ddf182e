package tracker

import (
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// torrentShards is the number of torrent shards. A shard's lock is held only
// to find (or insert) a swarm, never during the update itself, so 256 makes
// two announces colliding on one shard lock rare even on many cores.
const torrentShards = 256

// torrentShard is one slice of the torrent map plus the counters of the
// torrents living in it. Keeping the counters here rather than in a single
// global spreads the atomic increments over 256 cache lines: every announce
// bumps one, and a single shared counter would bounce between cores.
type torrentShard struct {
	mu sync.RWMutex
	m  map[InfoHash]*swarm

	torrents  atomic.Int64 // len(m)
	withPeers atomic.Int64 // swarms with at least one peer
	seeders   atomic.Int64
	leechers  atomic.Int64

	announceOK   atomic.Uint64
	announceFail atomic.Uint64
	scrapeOK     atomic.Uint64
	scrapeFail   atomic.Uint64
	expired      atomic.Uint64

	// seed keys the hash tables of this shard's large swarms (see
	// bigIndex); drawn at random on first use.
	seed atomic.Uint64

	_ [16]byte // pad to 128 bytes: no false sharing between neighbours
}

// hashSeed returns the shard's random hash seed, drawing it on first use.
func (sh *torrentShard) hashSeed() uint64 {
	if v := sh.seed.Load(); v != 0 {
		return v
	}
	sh.seed.CompareAndSwap(0, rand.Uint64()|1)
	return sh.seed.Load()
}

// shardFor returns the shard holding ih. Info hashes are SHA-1 values, but a
// client may send anything, so the bytes are mixed with a per-tracker secret
// seed (multiplicative hashing; the top byte is the best mixed).
func (t *Tracker) shardFor(ih *InfoHash) *torrentShard {
	return &t.shards[t.shardIndex(ih)]
}

func (t *Tracker) shardIndex(ih *InfoHash) int {
	h := binary.LittleEndian.Uint64(ih[:8]) ^ t.seed
	h *= 0x9e3779b97f4a7c15
	h ^= uint64(binary.LittleEndian.Uint32(ih[16:]))
	h *= 0x9e3779b97f4a7c15
	return int(h >> 56)
}

// find returns the swarm of ih or nil. The caller must lock the swarm and
// check swarm.removed: the torrent may be removed between the two steps.
func (sh *torrentShard) find(ih *InfoHash) *swarm {
	sh.mu.RLock()
	s := sh.m[*ih]
	sh.mu.RUnlock()
	return s
}

// appendSwarms appends the shard's swarms to dst, holding the shard's lock
// only for the copy: a walk over every swarm (expiry, the state file) then
// locks one swarm at a time while announces go on.
func (sh *torrentShard) appendSwarms(dst []*swarm) []*swarm {
	sh.mu.RLock()
	for _, s := range sh.m {
		dst = append(dst, s)
	}
	sh.mu.RUnlock()
	return dst
}

// register returns the swarm of ih, creating it (auto_register) with Fid 0
// and ctime now if it does not exist yet. A creation is recorded in the
// ledger's NewFiles so that the sync package inserts the xbt_files row.
func (t *Tracker) register(sh *torrentShard, ih *InfoHash, now int64) *swarm {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if s := sh.m[*ih]; s != nil {
		return s // another announce created it first
	}
	s := newSwarm(sh, ih, 0, now, 0)
	sh.m[*ih] = s
	sh.torrents.Add(1)
	t.ledger.newFile(ih, now)
	return s
}
