package tracker

// Expire removes the peers not heard from in more than 1.5 ×
// AnnounceInterval (XBT's rule: mtime < now - 1.5 × interval) and returns
// how many it removed. The caller runs it every clean_up_interval.
//
// It walks one shard at a time: the shard's read lock is held only to copy
// its swarm pointers, then each swarm is locked on its own, so announces
// are delayed by at most one swarm's sweep. For every swarm that lost peers
// it records the new counts in the ledger (if it has a fid), and Active=false
// for each user left with no peer on it.
func (t *Tracker) Expire() int {
	c := t.cfg.Load()
	now := t.now().Unix()
	cutoff := now - c.expireAfter
	removed := 0
	var swarms []*swarm
	for si := range t.shards {
		sh := &t.shards[si]
		swarms = sh.appendSwarms(swarms[:0])
		n := 0
		for _, s := range swarms {
			s.mu.Lock()
			if !s.removed {
				n += t.expireSwarm(s, cutoff, now)
			}
			s.mu.Unlock()
		}
		clear(swarms) // drop the pointers: removed swarms can be collected
		if n > 0 {
			sh.expired.Add(uint64(n))
			removed += n
		}
	}
	return removed
}

// expireSwarm sweeps one swarm (locked).
func (t *Tracker) expireSwarm(s *swarm, cutoff, now int64) int {
	n := t.expireList(s, true, cutoff, now) + t.expireList(s, false, cutoff, now)
	if n == 0 {
		return 0
	}
	if s.fid != 0 {
		t.ledger.fileCounts(s.fid, 0, len(s.seeders), len(s.leechers), t.countsMtime(s, now))
	}
	s.shrink()
	return n
}

// expireList removes the expired peers of one slice. It walks backwards so
// that the entry a swap-delete moves into place has been looked at already.
func (t *Tracker) expireList(s *swarm, seeders bool, cutoff, now int64) int {
	l := s.list(seeders)
	n := 0
	for i := len(*l) - 1; i >= 0; i-- {
		p := &(*l)[i]
		if int64(p.lastSeen) >= cutoff {
			continue
		}
		left := p.left
		sl := slot(i)
		if seeders {
			sl |= seederBit
		}
		uid, active := t.removePeer(s, sl)
		if uid != 0 && !active && s.fid != 0 {
			t.ledger.inactive(s.fid, uid, left, t.countsMtime(s, now))
		}
		n++
	}
	return n
}

// countsMtime is the mtime recorded with a swarm's counts, or a user's
// active = 0, when no announce changed them (s locked). Alone on the
// database that is now. In a cluster it is the swarm's newest announce
// here, and never older than the expiry cutoff (every peer of an emptied
// swarm was silent since before it), so it is not older than anything this
// instance wrote for the torrent; a torrent that moved to another instance
// has newer announces there, and the database keeps that instance's values
// (sql.WriterOptions.Cluster).
func (t *Tracker) countsMtime(s *swarm, now int64) int64 {
	if !t.cluster {
		return now
	}
	return max(now-t.cfg.Load().expireAfter, int64(s.lastAnnounce))
}
