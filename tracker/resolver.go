package tracker

// Resolver looks up, on demand, a user or torrent the engine does not hold,
// so that a user who registered or a torrent uploaded since the last reload
// works on its first announce instead of after read_db_interval.
//
// The engine calls it only on a miss: a derived passkey whose uid is not
// loaded, or an info_hash that is not loaded, never on the warm path. It is
// called from the announcing goroutine with no engine lock held, so it may
// block, but every announce that misses waits for it: implementations must
// bound their time (the sync package's answers within a per-lookup timeout,
// rate-limits database queries and remembers misses).
//
// On a hit the engine upserts the result (UpsertUser / UpsertTorrent), so
// the next announce finds it in memory.
type Resolver interface {
	// ResolveUser returns the user with this uid, or false if there is none
	// (or it could not be looked up in time).
	ResolveUser(uid uint32) (User, bool)
	// ResolveTorrent returns the torrent with this info hash, or false if
	// there is none the tracker should serve (deleted: flags & 1), or it
	// could not be looked up in time. A result with Fid 0 or another info
	// hash is ignored.
	ResolveTorrent(ih InfoHash) (Torrent, bool)
}

// maxResolvesPerScrape bounds the on-demand torrent lookups one scrape may
// cause: a scrape may name many hashes, and each lookup may wait for the
// database. Hashes beyond it are answered from memory only (omitted when
// unknown), as a scrape of an unknown torrent is.
const maxResolvesPerScrape = 4

// resolverBox holds a Resolver behind an atomic pointer.
type resolverBox struct{ r Resolver }

// SetResolver installs r (nil removes it); it applies to the next miss.
func (t *Tracker) SetResolver(r Resolver) {
	if r == nil {
		t.resolver.Store(nil)
		return
	}
	t.resolver.Store(&resolverBox{r})
}

// missUser asks the resolver for uid, which is not loaded; on a hit it
// installs the user and returns its record.
func (t *Tracker) missUser(uid uint32) *User {
	b := t.resolver.Load()
	if b == nil {
		return nil
	}
	u, ok := b.r.ResolveUser(uid)
	if !ok || u.UID != uid {
		return nil
	}
	t.UpsertUser(u)
	return t.users.get(uid)
}

// missTorrent asks the resolver for ih, which is not loaded; on a hit it
// installs the torrent and reports true.
func (t *Tracker) missTorrent(ih *InfoHash) bool {
	b := t.resolver.Load()
	if b == nil {
		return false
	}
	tr, ok := b.r.ResolveTorrent(*ih)
	if !ok || tr.InfoHash != *ih || tr.Fid == 0 {
		return false
	}
	t.UpsertTorrent(tr)
	return true
}
