package tracker

// Resolver looks up, on demand, a user or torrent the engine does not hold,
// so that a user who registered or a torrent uploaded since the last reload
// works on its first announce instead of after read_db_interval.
//
// The engine calls it only on a miss: a derived passkey whose uid is not
// loaded, or whose uid is loaded but which does not verify with the loaded
// torrent_pass_version (the catalog may have bumped it since the last
// reload), or an info_hash that is not loaded; never on the warm path. It is
// called from the announcing goroutine with no engine lock held, so it may
// block, but every announce that misses waits for it: implementations must
// bound their time (the sync package's answers within a per-lookup timeout,
// rate-limits database queries and remembers misses).
//
// On a hit the engine upserts the result (UpsertUser / UpsertTorrent), so
// the next announce finds it in memory; unless a reload changed that record
// while the lookup was in flight (the reload's answer is the newer one).
type Resolver interface {
	// ResolveUser returns the user with this uid, or false if there is none
	// (or it could not be looked up in time).
	ResolveUser(uid uint32) (User, bool)
	// ResolveUserVersion returns the user with this uid if the database's
	// torrent_pass_version differs from loaded, the version in memory; false
	// if it does not (or there is no such user, or it could not be looked up
	// in time). A flood of wrong passkeys for a real uid calls it for every
	// one: implementations must bound what that costs the database, as for
	// ResolveUser.
	ResolveUserVersion(uid uint32, loaded int) (User, bool)
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
	removals := t.users.removals.Load()
	u, ok := b.r.ResolveUser(uid)
	if !ok || u.UID != uid {
		return nil
	}
	return t.installResolved(u, nil, removals)
}

// recheckUser is for a passkey that names loaded user u but verifies
// neither with its loaded torrent_pass_version nor as its legacy
// torrent_pass. If the Resolver says the database has another version, that
// record is installed (the catalog bumped it: the old passkeys stop working
// now) and the passkey is checked against it. So a user's new passkey works
// on its first announce, and from then on the old one is refused.
func (t *Tracker) recheckUser(c *config, u *User, pk []byte, hashes []InfoHash) *User {
	b := t.resolver.Load()
	if b == nil {
		return nil
	}
	nu, ok := b.r.ResolveUserVersion(u.UID, u.TorrentPassVersion)
	if !ok || nu.UID != u.UID || nu.TorrentPassVersion == u.TorrentPassVersion {
		return nil
	}
	if cur := t.installResolved(nu, u, 0); cur != nil && verifyAny(c.s.Secret, cur, pk, hashes) {
		return cur
	}
	return nil
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
