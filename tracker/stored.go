package tracker

// What the instances of a cluster learn from each other through the
// database (cluster only).
//
// Stored counts. HAProxy routes a scrape by its first
// info_hash, so an instance is asked about torrents other instances hold.
// It answers them with the counts their owners wrote to the database, which
// the Syncer copies into memory in passes over the rows claiming peers.

// StoreCounts records the database's seeders and leechers of the torrent
// ih (fid), read in refresh pass pass (numbered from 1). A torrent that is
// not loaded, or loaded under another fid, is ignored, and so is every
// call on an engine not in a cluster.
func (t *Tracker) StoreCounts(ih InfoHash, fid uint32, seeders, leechers int, pass uint32) {
	if !t.cluster {
		return // alone, a torrent without peers here has none
	}
	s := t.shardFor(&ih).find(&ih)
	if s == nil {
		return
	}
	s.mu.Lock()
	if !s.removed && s.fid == fid {
		if s.stored == nil {
			s.stored = &storedCounts{}
		}
		*s.stored = storedCounts{seeders: uint32(max(seeders, 0)), leechers: uint32(max(leechers, 0)), pass: pass}
	}
	s.mu.Unlock()
}

// storedCounts is a torrent's counts in the database and the refresh pass
// that read them.
type storedCounts struct {
	seeders, leechers, pass uint32
}

// CompleteStoredPass ends refresh pass pass: from now on a torrent's stored
// counts are valid only if that pass or a later one read them, so a torrent
// whose row no longer claims peers (it is not read any more) scrapes as
// empty.
func (t *Tracker) CompleteStoredPass(pass uint32) { t.storedPass.Store(pass) }

// LeechingCounts returns, for every user with a torrents_limit who leeches
// here, the number of torrents they leech on this instance: what a cluster
// instance publishes for the others (SetRemoteLeeching).
func (t *Tracker) LeechingCounts() map[uint32]int32 {
	out := map[uint32]int32{}
	for i := range t.users.shards {
		sh := &t.users.shards[i]
		sh.mu.RLock()
		for uid, e := range sh.m {
			if n := e.leeching.Load(); n > 0 {
				if u := e.user.Load(); u != nil && u.TorrentsLimit > 0 {
					out[uid] = n
				}
			}
		}
		sh.mu.RUnlock()
	}
	return out
}

// SetRemoteLeeching sets, for every loaded user, the number of torrents the
// other instances of a cluster say the user leeches there (0 when remote
// has no entry). The torrents_limit check adds it to the count here, so the
// limit holds across instances up to the time between two publications.
func (t *Tracker) SetRemoteLeeching(remote map[uint32]int32) {
	for i := range t.users.shards {
		sh := &t.users.shards[i]
		sh.mu.RLock()
		for uid, e := range sh.m {
			e.remote.Store(max(remote[uid], 0))
		}
		sh.mu.RUnlock()
	}
}
