package tracker

// This file holds the torrent mutators the sync package calls on reload.
// They take t.torrentsMu (one at a time), then a shard's write lock, then a
// swarm's lock: the same order as announces (shard, then swarm), so no
// deadlock; announces on other shards never wait.

// UpsertTorrent adds a torrent or updates a known one's fid and ctime,
// keeping its peers. The completed count takes the database's value only if
// it is larger than the in-memory one (which already includes completions
// not yet written back).
//
// When an auto-registered torrent (Fid 0) gets its fid, the completions and
// counts it collected while it had none are recorded in the ledger, since
// nothing could be written for it before.
func (t *Tracker) UpsertTorrent(tr Torrent) {
	t.torrentsMu.Lock()
	defer t.torrentsMu.Unlock()
	sh := t.shardFor(&tr.InfoHash)
	sh.mu.Lock()
	t.upsertLocked(sh, &tr, t.now().Unix())
	sh.mu.Unlock()
}

func (t *Tracker) upsertLocked(sh *torrentShard, tr *Torrent, now int64) {
	s := sh.m[tr.InfoHash]
	if s == nil {
		sh.m[tr.InfoHash] = newSwarm(sh, &tr.InfoHash, tr.Fid, tr.Ctime, tr.Completed)
		sh.torrents.Add(1)
		return
	}
	s.mu.Lock()
	oldFid := s.fid
	s.fid, s.ctime = tr.Fid, tr.Ctime
	var catchUp uint64
	if tr.Completed > s.completed {
		s.completed = tr.Completed
	} else if oldFid == 0 && tr.Fid != 0 {
		catchUp = s.completed - tr.Completed
	}
	if oldFid == 0 && tr.Fid != 0 && (catchUp != 0 || s.len() != 0) {
		t.ledger.fileCounts(tr.Fid, catchUp, len(s.seeders), len(s.leechers), t.countsMtime(s, now))
	}
	s.mu.Unlock()
}

// removeLocked deletes s from sh (locked) with all its peers. An announce
// already holding s sees removed and looks the torrent up again.
func (t *Tracker) removeLocked(sh *torrentShard, s *swarm) {
	delete(sh.m, s.ih)
	sh.torrents.Add(-1)
	s.mu.Lock()
	s.removed = true
	t.dropAll(s)
	s.mu.Unlock()
}

// RemoveTorrent forgets a torrent and its peers (the catalog deleted it:
// flags & 1). It reports whether the torrent was known. Pending ledger
// entries for its fid are left alone; the writer decides what to do with
// rows of a deleted file.
func (t *Tracker) RemoveTorrent(ih InfoHash) bool {
	t.torrentsMu.Lock()
	defer t.torrentsMu.Unlock()
	sh := t.shardFor(&ih)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	s := sh.m[ih]
	if s == nil {
		return false
	}
	t.removeLocked(sh, s)
	return true
}

// Torrent returns a torrent's current record; Completed includes the
// completions counted in memory.
func (t *Tracker) Torrent(ih InfoHash) (Torrent, bool) {
	s := t.shardFor(&ih).find(&ih)
	if s == nil {
		return Torrent{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed {
		return Torrent{}, false
	}
	return Torrent{Fid: s.fid, InfoHash: ih, Ctime: s.ctime, Completed: s.completed}, true
}

// ReplaceTorrents makes torrents the complete set of database torrents:
// new ones are added, known ones updated like UpsertTorrent, and those
// absent removed with their peers, except torrents with Fid 0, which were
// auto-registered in memory and whose row may not have been inserted yet.
// It works one shard at a time, so announces keep running.
func (t *Tracker) ReplaceTorrents(torrents []Torrent) {
	t.torrentsMu.Lock()
	defer t.torrentsMu.Unlock()
	now := t.now().Unix()

	// Bucket the list by shard (counting sort of positions).
	shardOf := make([]uint8, len(torrents))
	var counts [torrentShards + 1]int
	for i := range torrents {
		b := uint8(t.shardIndex(&torrents[i].InfoHash))
		shardOf[i] = b
		counts[int(b)+1]++
	}
	for i := 1; i <= torrentShards; i++ {
		counts[i] += counts[i-1]
	}
	order := make([]int32, len(torrents))
	next := counts
	for i, b := range shardOf {
		order[next[b]] = int32(i)
		next[b]++
	}

	keep := make(map[InfoHash]struct{})
	for si := range t.shards {
		sh := &t.shards[si]
		bucket := order[counts[si]:counts[si+1]]
		clear(keep)
		for _, i := range bucket {
			keep[torrents[i].InfoHash] = struct{}{}
		}
		sh.mu.Lock()
		for ih, s := range sh.m {
			if _, ok := keep[ih]; ok {
				continue
			}
			s.mu.Lock()
			fid := s.fid
			s.mu.Unlock()
			if fid != 0 {
				t.removeLocked(sh, s)
			}
		}
		for _, i := range bucket {
			t.upsertLocked(sh, &torrents[i], now)
		}
		sh.mu.Unlock()
	}
}
