package tracker

// Stored counts (cluster only). HAProxy routes a scrape by its first
// info_hash, so an instance is asked about torrents other instances hold.
// It answers them with the counts their owners wrote to the database, which
// the Syncer copies into memory in passes over the rows claiming peers.

// StoreCounts records the database's seeders and leechers of the torrent
// ih (fid), read in refresh pass pass (numbered from 1). A torrent that is
// not loaded, or loaded under another fid, is ignored.
func (t *Tracker) StoreCounts(ih InfoHash, fid uint32, seeders, leechers int, pass uint32) {
	s := t.shardFor(&ih).find(&ih)
	if s == nil {
		return
	}
	s.mu.Lock()
	if !s.removed && s.fid == fid {
		s.storedSeeders, s.storedLeechers, s.storedPass = uint32(max(seeders, 0)), uint32(max(leechers, 0)), pass
	}
	s.mu.Unlock()
}

// CompleteStoredPass ends refresh pass pass: from now on a torrent's stored
// counts are valid only if that pass or a later one read them, so a torrent
// whose row no longer claims peers (it is not read any more) scrapes as
// empty.
func (t *Tracker) CompleteStoredPass(pass uint32) { t.storedPass.Store(pass) }
