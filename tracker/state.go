package tracker

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// This file is the engine's side of a warm restart (sync/state.go,
// internal/statefile): the swarms are read out at a clean stop and put back
// at the next start, so that no peer list is emptied and every peer's next
// announce is credited from its last counters, as if no restart happened.

// PeerState is one peer as a state file keeps it: everything a swarm knows
// of it.
type PeerState struct {
	Uploaded, Downloaded, Left uint64 // the counters of its last announce
	UID                        uint32 // 0 = anonymous
	LastSeen                   uint32 // its last announce, unix seconds
	ID                         PeerID
	Addr                       netip.Addr // IPv4 (unmapped) or IPv6
	Port                       uint16
	Counted                    bool // its completion was counted already
}

// PeerExpiry is how long a silent peer lives: 1.5 × the announce interval
// of the current settings. A state file older than that holds only peers
// that would have expired.
func (t *Tracker) PeerExpiry() time.Duration {
	return time.Duration(t.cfg.Load().expireAfter) * time.Second
}

// ForEachSwarm calls f for every torrent that has peers, with its info hash,
// fid and peers. The peers are copied out under the swarm's lock into a
// slice reused between calls (f must not keep it); f runs without any lock.
// It stops at f's first error and returns it.
//
// It is meant for a quiescent tracker (the listeners and the sync loops
// stopped): a swarm is read consistently, but announces running meanwhile
// would make the set as a whole a blend of moments.
func (t *Tracker) ForEachSwarm(f func(ih InfoHash, fid uint32, peers []PeerState) error) error {
	var swarms []*swarm
	var buf []PeerState
	for si := range t.shards {
		sh := &t.shards[si]
		swarms = sh.appendSwarms(swarms[:0])
		for _, s := range swarms {
			s.mu.Lock()
			if s.removed || s.len() == 0 {
				s.mu.Unlock()
				continue
			}
			if n := s.len(); cap(buf) < n {
				buf = make([]PeerState, 0, n+n/4)
			}
			buf = s.export(buf[:0])
			ih, fid := s.ih, s.fid
			s.mu.Unlock()
			if err := f(ih, fid, buf); err != nil {
				return err
			}
		}
		clear(swarms)
	}
	return nil
}

// export appends s's peers (s locked) to dst.
func (s *swarm) export(dst []PeerState) []PeerState {
	for _, l := range [2][]peer{s.seeders, s.leechers} {
		for i := range l {
			p := &l[i]
			ps := PeerState{
				Uploaded: p.uploaded, Downloaded: p.downloaded, Left: p.left,
				UID: p.uid, LastSeen: p.lastSeen, ID: p.id,
				Port:    binary.BigEndian.Uint16(p.addr[4:6]),
				Counted: p.flags&flagCounted != 0,
			}
			if p.flags&flagV6 != 0 {
				ps.Addr = netip.AddrFrom16(s.v6.addrs[p.v6pos()])
			} else {
				ps.Addr = netip.AddrFrom4([4]byte(p.addr[:4]))
			}
			dst = append(dst, ps)
		}
	}
	return dst
}

// RestoreResult counts what RestoreSwarm did.
type RestoreResult struct {
	Restored int // peers put back
	// Skipped peers: their torrent is not loaded (or has another fid now),
	// their user is not loaded, or the same peer is already there.
	Skipped int
}

// RestoreSwarm puts saved peers back into the swarm of ih, which must be
// loaded (the start-up load ran) with fid (0: any fid; a torrent
// auto-registered before the stop got its fid since). Every peer comes back
// with its counters, last-seen time, completion flag, address and port, so
// its next announce is credited from the counters it last announced, and
// every count the engine keeps comes out as if the peers had announced
// again: the swarm's seeders and leechers, the shard counters, each user's
// leeching peers on the torrent (peers_limit) and number of leeching
// torrents (torrents_limit). The limits themselves are not checked: the
// peers were admitted before the stop, and a running tracker keeps an
// admitted peer when a limit is lowered.
//
// Skipped: every peer when the torrent is not loaded or has another fid (the
// catalog deleted it, or replaced it under the same info hash); a peer of a
// user not loaded (deleted meanwhile: its passkey would be refused); a peer
// already in the swarm (the live one wins); a user's peers beyond
// maxUserPeers. A restore that skips nothing records nothing in the ledger
// (the final flush before the stop wrote these very counts); one that
// skipped some peers of a loaded torrent records its new counts.
func (t *Tracker) RestoreSwarm(ih InfoHash, fid uint32, peers []PeerState) RestoreResult {
	s := t.shardFor(&ih).find(&ih)
	if s == nil {
		return RestoreResult{Skipped: len(peers)}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed || (fid != 0 && s.fid != fid) {
		return RestoreResult{Skipped: len(peers)}
	}
	var seeders, leechers int
	for i := range peers {
		if peers[i].Left == 0 {
			seeders++
		} else {
			leechers++
		}
	}
	// One allocation per slice, at its final size.
	s.seeders = reserve(s.seeders, seeders)
	s.leechers = reserve(s.leechers, leechers)

	var r RestoreResult
	for i := range peers {
		ps := &peers[i]
		uid := ps.UID
		if uid != 0 && t.users.get(uid) == nil {
			r.Skipped++
			continue
		}
		if _, found := s.lookup(peerKey{uid, ps.ID}); found {
			r.Skipped++
			continue
		}
		var uc userPeers
		if uid != 0 {
			uc = s.userCount(uid)
			if uc.total >= maxUserPeers {
				r.Skipped++
				continue
			}
		}
		p := peer{
			uploaded: ps.Uploaded, downloaded: ps.Downloaded, left: ps.Left,
			uid: uid, lastSeen: ps.LastSeen, id: ps.ID,
		}
		if ps.Counted {
			p.flags |= flagCounted
		}
		s.setAddr(&p, ps.Addr, ps.Port)
		s.add(&p)
		s.lastAnnounce = max(s.lastAnnounce, ps.LastSeen)
		// The user's first leeching peer here: one more leeching torrent
		// (as update counts a new peer).
		if uid != 0 && ps.Left > 0 && uc.leeching == 0 {
			t.users.addLeeching(uid, 1)
		}
		r.Restored++
	}
	if r.Skipped > 0 && s.fid != 0 {
		t.ledger.fileCounts(s.fid, 0, len(s.seeders), len(s.leechers), t.countsMtime(s, t.now().Unix()))
	}
	return r
}

// reserve returns l with room for n more records, allocated once at the
// exact size (appendPeer then never grows it).
func reserve(l []peer, n int) []peer {
	if cap(l)-len(l) >= n {
		return l
	}
	m := make([]peer, len(l), len(l)+n)
	copy(m, l)
	return m
}

// DropAllPeers removes every peer of every swarm, fixing every count (the
// shard counters, the users' leeching-torrent counts), and records nothing
// in the ledger. It undoes a restore that failed half-way, before the
// listeners start.
func (t *Tracker) DropAllPeers() {
	for si := range t.shards {
		sh := &t.shards[si]
		sh.mu.RLock()
		for _, s := range sh.m {
			s.mu.Lock()
			t.dropAll(s)
			s.mu.Unlock()
		}
		sh.mu.RUnlock()
	}
}
