package tracker

// Reconciling the catalog's view with memory.
//
// A site shows the seeders and leechers of xbt_files and the "active" flag
// of xbt_files_users. The tracker keeps them right while it runs, but rows
// can be left stale by whatever the tracker did not see: a crash, another
// tracker that served the database before (XBT), a write lost before this
// tracker's time. These methods compare one database row with memory and,
// when they disagree, record memory's value in the ledger, so that the
// next flush corrects the row. They take the swarm's lock, like an
// announce, so that "latest wins" still holds between a correction and an
// announce on the same torrent.

// ReconcileTorrent compares the database's seeders and leechers of the
// torrent ih (fid) with memory. When they differ it records memory's counts
// for the next flush and returns true. A torrent that is not loaded, or
// loaded under another fid, is left alone (false): the next reload decides
// about it.
func (t *Tracker) ReconcileTorrent(ih InfoHash, fid uint32, dbSeeders, dbLeechers int) bool {
	s := t.shardFor(&ih).find(&ih)
	if s == nil || fid == 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed || s.fid != fid {
		return false
	}
	seeders, leechers := len(s.seeders), len(s.leechers)
	if seeders == dbSeeders && leechers == dbLeechers {
		return false
	}
	t.ledger.fileCounts(fid, 0, seeders, leechers, t.countsMtime(s, t.now().Unix()))
	return true
}

// ReconcileFileUser checks a database row of (fid, uid) that says
// active = 1 against memory. loaded reports whether the torrent ih is in
// memory under that fid. When it is and uid has no live peer on it, the
// row is a ghost: active = 0 is recorded for the next flush (keeping the
// row's left and mtime unless an announce recorded newer ones) and
// deactivated is true. Two peers of one user, one stopped: the other keeps
// the row active.
func (t *Tracker) ReconcileFileUser(ih InfoHash, fid, uid uint32, left uint64, mtime int64) (deactivated, loaded bool) {
	s := t.shardFor(&ih).find(&ih)
	if s == nil || fid == 0 {
		return false, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed || s.fid != fid {
		return false, false
	}
	if s.active(uid) {
		return false, true
	}
	t.ledger.deactivate(fid, uid, left, mtime)
	return true, true
}

// DeactivateFileUser records active = 0 for (fid, uid) for the next flush,
// for a row whose torrent is not in memory at all (deleted, or left by
// another tracker); the caller has checked that the row is stale. left and
// mtime are the row's own, unless an announce recorded newer ones.
func (t *Tracker) DeactivateFileUser(fid, uid uint32, left uint64, mtime int64) {
	t.ledger.deactivate(fid, uid, left, mtime)
}

// TorrentLive reports whether the torrent ih (fid) is loaded and how many
// seeders and leechers it has in memory.
func (t *Tracker) TorrentLive(ih InfoHash, fid uint32) (seeders, leechers int, loaded bool) {
	s := t.shardFor(&ih).find(&ih)
	if s == nil {
		return 0, 0, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed || s.fid != fid {
		return 0, 0, false
	}
	return len(s.seeders), len(s.leechers), true
}

// UserLive reports whether uid has a live peer on the torrent ih (fid).
func (t *Tracker) UserLive(ih InfoHash, fid, uid uint32) bool {
	s := t.shardFor(&ih).find(&ih)
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.removed && s.fid == fid && s.active(uid)
}
