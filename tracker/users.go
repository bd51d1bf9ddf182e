package tracker

import (
	"sync"
	"sync/atomic"

	"github.com/xbt-tracker/xbt-tracker/passkey"
)

// userShards spreads the user map over several RW locks. Announces only
// read it (one RLock per announce), so contention is low anyway; sharding
// keeps a reload from stalling every announce at once.
const userShards = 64

// userEntry is the engine's record of a uid. user is an immutable snapshot
// replaced as a whole by UpsertUser, so readers need no lock once they hold
// it. An entry whose user was removed stays as a tombstone (user == nil) as
// long as the uid still leeches somewhere: the leeching counter must survive
// until those peers stop or expire, or it would go negative.
type userEntry struct {
	user atomic.Pointer[User]
	// leeching is the number of torrents where this uid has at least one
	// leeching peer (torrents_limit). Changed only on 0<->1 transitions of a
	// swarm's per-user leeching count, always while the shard's lock is held
	// (read or write), so a tombstone is never deleted under an increment.
	leeching atomic.Int32
	// remote is the number of torrents this uid leeches on the other
	// instances of a cluster, as they last published it (SetRemoteLeeching);
	// torrents_limit counts both.
	remote atomic.Int32
	gen    uint64 // ReplaceUsers generation; guarded by the shard lock
}

type userShard struct {
	mu sync.RWMutex
	m  map[uint32]*userEntry
}

type userStore struct {
	shards [userShards]userShard
	count  atomic.Int64 // entries with a user (tombstones excluded)

	// writeMu serialises the mutators, which are rare (reloads), so that
	// the legacy index and the shards cannot be updated out of order.
	writeMu sync.Mutex
	gen     uint64
	// removals counts the mutators that removed a user (changed under
	// writeMu), so that an on-demand lookup can tell whether a reload
	// removed a user while it was asking the database (installResolved).
	removals atomic.Uint64

	// legacy maps xbt_users.torrent_pass to uid. It only narrows the search:
	// the match is always re-checked against the user's current record.
	legacyMu sync.RWMutex
	legacy   map[string]uint32
}

func (us *userStore) init() {
	for i := range us.shards {
		us.shards[i].m = make(map[uint32]*userEntry)
	}
	us.legacy = make(map[string]uint32)
}

func (us *userStore) shard(uid uint32) *userShard { return &us.shards[uid%userShards] }

// get returns uid's current record or nil.
func (us *userStore) get(uid uint32) *User {
	sh := us.shard(uid)
	sh.mu.RLock()
	e := sh.m[uid]
	sh.mu.RUnlock()
	if e == nil {
		return nil
	}
	return e.user.Load()
}

// legacyUser returns the user whose torrent_pass is exactly pk, or nil.
func (us *userStore) legacyUser(pk []byte) *User {
	us.legacyMu.RLock()
	uid, ok := us.legacy[string(pk)] // no allocation: the compiler converts in place
	us.legacyMu.RUnlock()
	if !ok {
		return nil
	}
	if u := us.get(uid); u != nil && passkey.MatchLegacy(u.TorrentPass, pk) {
		return u
	}
	return nil
}

// leechingTorrents returns the number of torrents uid leeches.
func (us *userStore) leechingTorrents(uid uint32) int {
	sh := us.shard(uid)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if e := sh.m[uid]; e != nil {
		return int(e.leeching.Load())
	}
	return 0
}

// limitLeeching returns the number of torrents uid leeches here and, in a
// cluster, on the other instances: what torrents_limit is checked against.
func (us *userStore) limitLeeching(uid uint32) int {
	sh := us.shard(uid)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if e := sh.m[uid]; e != nil {
		return int(e.leeching.Load()) + int(e.remote.Load())
	}
	return 0
}

// addLeeching adds d to uid's leeching-torrent count.
func (us *userStore) addLeeching(uid uint32, d int32) {
	sh := us.shard(uid)
	sh.mu.RLock()
	if e := sh.m[uid]; e != nil {
		e.leeching.Add(d)
		sh.mu.RUnlock()
		return
	}
	sh.mu.RUnlock()
	// The uid has no entry (removed while it had no leeching torrent, and
	// its peers are still there): create a tombstone to hold the count.
	sh.mu.Lock()
	e := sh.m[uid]
	if e == nil {
		e = &userEntry{}
		sh.m[uid] = e
	}
	if e.leeching.Add(d) == 0 && e.user.Load() == nil {
		delete(sh.m, uid)
	}
	sh.mu.Unlock()
}

// reserveLeeching increments uid's leeching-torrent count unless it has
// reached limit already; a compare-and-swap loop makes torrents_limit exact
// even when the user starts leeching two torrents on two cores at once.
func (us *userStore) reserveLeeching(uid uint32, limit int) bool {
	sh := us.shard(uid)
	sh.mu.RLock()
	e := sh.m[uid]
	if e == nil {
		sh.mu.RUnlock()
		us.addLeeching(uid, 1) // removed meanwhile: it was valid when checked
		return true
	}
	defer sh.mu.RUnlock()
	for {
		c := e.leeching.Load()
		if int(c)+int(e.remote.Load()) >= limit {
			return false
		}
		if e.leeching.CompareAndSwap(c, c+1) {
			return true
		}
	}
}

// setLocked installs u in sh (locked) and returns the previous record.
func (us *userStore) setLocked(sh *userShard, u *User) *User {
	e := sh.m[u.UID]
	if e == nil {
		e = &userEntry{}
		sh.m[u.UID] = e
	}
	e.gen = us.gen
	old := e.user.Swap(u)
	if old == nil {
		us.count.Add(1)
	}
	return old
}

// unsetLocked removes uid's record from sh (locked), keeping a tombstone
// while its leeching count is not zero, and returns the previous record.
func (us *userStore) unsetLocked(sh *userShard, uid uint32, e *userEntry) *User {
	old := e.user.Swap(nil)
	if old != nil {
		us.count.Add(-1)
	}
	if e.leeching.Load() == 0 {
		delete(sh.m, uid)
	}
	return old
}

// relinkLegacyLocked updates the legacy index for a user going from old to nu
// (either may be nil). Caller holds legacyMu.
func (us *userStore) relinkLegacyLocked(uid uint32, old, nu *User) {
	if old != nil && old.TorrentPass != "" && (nu == nil || nu.TorrentPass != old.TorrentPass) {
		if us.legacy[old.TorrentPass] == uid {
			delete(us.legacy, old.TorrentPass)
		}
	}
	if nu != nil && len(nu.TorrentPass) == passkey.Len {
		us.legacy[nu.TorrentPass] = uid
	}
}

// UpsertUser adds or updates one user. The new values apply to the next
// announce; a bumped TorrentPassVersion revokes the user's old passkeys at
// once. UID 0 is reserved for anonymous peers and is ignored.
func (t *Tracker) UpsertUser(u User) {
	if u.UID == 0 {
		return
	}
	us := &t.users
	us.writeMu.Lock()
	defer us.writeMu.Unlock()
	nu := new(User)
	*nu = u
	sh := us.shard(u.UID)
	sh.mu.Lock()
	old := us.setLocked(sh, nu)
	sh.mu.Unlock()
	us.legacyMu.Lock()
	us.relinkLegacyLocked(u.UID, old, nu)
	us.legacyMu.Unlock()
}

// RemoveUser forgets uid: its passkeys stop working at once. Its peers stay
// until they stop or expire (as in XBT), but can no longer be refreshed
// under that uid.
func (t *Tracker) RemoveUser(uid uint32) {
	us := &t.users
	us.writeMu.Lock()
	defer us.writeMu.Unlock()
	sh := us.shard(uid)
	sh.mu.Lock()
	var old *User
	if e := sh.m[uid]; e != nil {
		old = us.unsetLocked(sh, uid, e)
	}
	sh.mu.Unlock()
	us.removals.Add(1) // even if uid was not loaded: a lookup of it may be in flight
	if old != nil {
		us.legacyMu.Lock()
		us.relinkLegacyLocked(uid, old, nil)
		us.legacyMu.Unlock()
	}
}

// User returns uid's record.
func (t *Tracker) User(uid uint32) (User, bool) {
	if u := t.users.get(uid); u != nil {
		return *u, true
	}
	return User{}, false
}

// ReplaceUsers makes users the complete set of users: new ones are added,
// known ones updated, and those absent removed. It works one shard at a
// time, so announces keep running; an announce racing with it sees a user
// either before or after its update. If a uid appears twice the last wins.
func (t *Tracker) ReplaceUsers(users []User) {
	us := &t.users
	us.writeMu.Lock()
	defer us.writeMu.Unlock()
	us.gen++

	// Bucket the list by shard (a counting sort of positions) so that each
	// shard is locked once and only for its own users.
	var counts [userShards + 1]int
	for i := range users {
		counts[users[i].UID%userShards+1]++
	}
	for i := 1; i <= userShards; i++ {
		counts[i] += counts[i-1]
	}
	order := make([]int32, len(users))
	next := counts
	for i := range users {
		b := users[i].UID % userShards
		order[next[b]] = int32(i)
		next[b]++
	}

	legacy := make(map[string]uint32, len(us.legacy))
	removed := false
	recs := make([]User, len(users)) // one allocation for all snapshots
	copy(recs, users)
	for si := range us.shards {
		sh := &us.shards[si]
		sh.mu.Lock()
		for _, i := range order[counts[si]:counts[si+1]] {
			u := &recs[i]
			if u.UID == 0 {
				continue
			}
			us.setLocked(sh, u)
		}
		for uid, e := range sh.m {
			if e.gen != us.gen && us.unsetLocked(sh, uid, e) != nil {
				removed = true
			}
		}
		for _, e := range sh.m {
			if u := e.user.Load(); u != nil && len(u.TorrentPass) == passkey.Len {
				legacy[u.TorrentPass] = u.UID
			}
		}
		sh.mu.Unlock()
	}
	us.legacyMu.Lock()
	us.legacy = legacy
	us.legacyMu.Unlock()
	if removed {
		us.removals.Add(1)
	}
}

// installResolved installs u, an on-demand lookup's answer, unless uid's
// record changed since the caller read old before asking (or, old being
// nil, a reload removed any user meanwhile): the lookup read the database
// before that reload did, and must not undo its newer answer (a bumped
// torrent_pass_version, a deletion). It returns uid's record now in place.
func (t *Tracker) installResolved(u User, old *User, removals uint64) *User {
	us := &t.users
	us.writeMu.Lock()
	defer us.writeMu.Unlock()
	sh := us.shard(u.UID)
	sh.mu.Lock()
	var cur *User
	if e := sh.m[u.UID]; e != nil {
		cur = e.user.Load()
	}
	if cur != old || (old == nil && us.removals.Load() != removals) {
		sh.mu.Unlock()
		return cur
	}
	nu := new(User)
	*nu = u
	prev := us.setLocked(sh, nu)
	sh.mu.Unlock()
	us.legacyMu.Lock()
	us.relinkLegacyLocked(u.UID, prev, nu)
	us.legacyMu.Unlock()
	return nu
}

// resolveUser finds the user an announce or scrape passkey belongs to, XBT
// style: a derived passkey (uid prefix + digest over the secret, the user's
// torrent_pass_version, uid and info hash) first, then an exact match against
// a legacy xbt_users.torrent_pass. hashes are the info hashes the derived
// passkey may be bound to: it is accepted if it verifies against any of them
// (announce passes one). Derived passkeys are refused while the secret is
// empty: anybody could compute them.
//
// Cold paths, through the Resolver: a uid that is not loaded is looked up
// (missUser); a loaded uid whose passkey verifies neither with the loaded
// version nor as a legacy torrent_pass is checked for a newer
// torrent_pass_version (recheckUser).
func (t *Tracker) resolveUser(c *config, pk []byte, hashes []InfoHash) *User {
	if len(pk) != passkey.Len {
		return nil
	}
	if uid, ok := passkey.UID(pk); ok && uid != 0 && c.s.Secret != "" {
		u := t.users.get(uid)
		if u == nil {
			u = t.missUser(uid) // not loaded: ask the Resolver (cold path only)
			if u != nil && verifyAny(c.s.Secret, u, pk, hashes) {
				return u
			}
		} else {
			if verifyAny(c.s.Secret, u, pk, hashes) {
				return u
			}
			if lu := t.users.legacyUser(pk); lu != nil {
				return lu
			}
			return t.recheckUser(c, u, pk, hashes) // cold path only
		}
	}
	return t.users.legacyUser(pk)
}

// verifyAny reports whether pk is u's derived passkey for one of hashes.
func verifyAny(secret string, u *User, pk []byte, hashes []InfoHash) bool {
	for i := range hashes {
		if passkey.Verify(secret, u.TorrentPassVersion, u.UID, (*[20]byte)(&hashes[i]), pk) {
			return true
		}
	}
	return false
}
