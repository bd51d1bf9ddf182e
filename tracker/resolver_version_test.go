package tracker

import (
	"testing"
)

// hookResolver is a mapResolver that runs a hook inside each user lookup,
// as if a reload applied a change while the lookup was in flight.
type hookResolver struct {
	*mapResolver
	during func()
}

func (r *hookResolver) ResolveUser(uid uint32) (User, bool) {
	u, ok := r.mapResolver.ResolveUser(uid)
	if r.during != nil {
		r.during()
	}
	return u, ok
}

func (r *hookResolver) ResolveUserVersion(uid uint32, loaded int) (User, bool) {
	u, ok := r.mapResolver.ResolveUserVersion(uid, loaded)
	if r.during != nil {
		r.during()
	}
	return u, ok
}

func (r *mapResolver) versionLookups() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.versionCalls
}

// annV is ann with the passkey of torrent_pass_version ver.
func annV(uid uint32, ver int, ih InfoHash, p int) *Announce {
	a := ann(uid, ih, p, 0)
	a.Passkey = pkv(uid, ver, ih)
	return a
}

// The catalog bumped torrent_pass_version and the tracker has not reloaded
// the user yet: the new passkey works on its first announce (one lookup),
// and from that moment the old one is refused.
func TestVersionBumpNewPasskeyWorksAtOnce(t *testing.T) {
	tr, _ := newTest(t, nil)
	r := newMapResolver()
	tr.SetResolver(r)
	ih := hashN(1)
	tr.UpsertTorrent(torrent(1, ih, t0-3600))
	tr.UpsertUser(user(7))
	mustOK(t, tr, annV(7, 0, ih, 1)) // the old passkey works before the bump

	r.users[7] = User{UID: 7, CanLeech: true, TorrentPassVersion: 1} // the catalog's UPDATE
	mustOK(t, tr, annV(7, 1, ih, 2))
	if n := r.versionLookups(); n != 1 {
		t.Fatalf("%d version lookups, want 1", n)
	}
	if u, _ := tr.User(7); u.TorrentPassVersion != 1 {
		t.Fatalf("installed version %d, want 1", u.TorrentPassVersion)
	}
	mustFail(t, tr, annV(7, 0, ih, 1), ErrUnregisteredTorrentPass)
	mustFail(t, tr, annV(7, 0, ih, 3), ErrUnregisteredTorrentPass)
	// The new passkey is warm now: no lookup.
	before := r.versionLookups()
	for range 3 {
		mustOK(t, tr, annV(7, 1, ih, 2))
	}
	if n := r.versionLookups(); n != before {
		t.Fatalf("warm announces with the new passkey made %d version lookups", n-before)
	}
	// A scrape with the next version's passkey works the same way.
	r.users[7] = User{UID: 7, CanLeech: true, TorrentPassVersion: 2}
	var out ScrapeResult
	tr.Scrape(&ScrapeRequest{Passkey: pkv(7, 2, ih), InfoHashes: []InfoHash{ih}}, &out)
	if out.Failure != "" {
		t.Fatalf("scrape with the new version's passkey: %q", out.Failure)
	}
}

func TestVersionMismatchRefusals(t *testing.T) {
	ih := hashN(1)
	tests := []struct {
		name        string
		db          map[uint32]User // the database's users
		noResolver  bool
		a           *Announce
		wantLookups int
		wantVersion int // of uid 7 in memory afterwards
	}{
		{name: "wrong passkey, database has the same version", db: map[uint32]User{7: user(7)},
			a: annV(7, 5, ih, 1), wantLookups: 1, wantVersion: 0},
		{name: "wrong passkey, database has a newer version: installed, still refused",
			db: map[uint32]User{7: {UID: 7, CanLeech: true, TorrentPassVersion: 3}},
			a:  annV(7, 5, ih, 1), wantLookups: 1, wantVersion: 3},
		{name: "user deleted from the database", db: map[uint32]User{},
			a: annV(7, 1, ih, 1), wantLookups: 1, wantVersion: 0},
		{name: "answer for another uid is ignored", db: map[uint32]User{7: {UID: 8, CanLeech: true, TorrentPassVersion: 1}},
			a: annV(7, 1, ih, 1), wantLookups: 1, wantVersion: 0},
		{name: "no resolver", noResolver: true, db: map[uint32]User{7: {UID: 7, CanLeech: true, TorrentPassVersion: 1}},
			a: annV(7, 1, ih, 1), wantVersion: 0},
		{name: "legacy torrent_pass of a loaded user: no lookup",
			db: map[uint32]User{7: {UID: 7, CanLeech: true, TorrentPassVersion: 1}},
			a: func() *Announce {
				a := ann(0, ih, 1, 0)
				a.Passkey = []byte("00000007abcdefabcdefabcdefabcdef") // uid prefix 7, not derived
				return a
			}(), wantVersion: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, _ := newTest(t, nil)
			tr.UpsertTorrent(torrent(1, ih, t0-3600))
			u := user(7)
			u.TorrentPass = "00000007abcdefabcdefabcdefabcdef"
			tr.UpsertUser(u)
			r := newMapResolver()
			r.users = tc.db
			if !tc.noResolver {
				tr.SetResolver(r)
			}
			out := do(tr, tc.a)
			legacy := string(tc.a.Passkey) == u.TorrentPass
			if legacy && out.Failure != "" || !legacy && out.Failure != ErrUnregisteredTorrentPass {
				t.Fatalf("failure %q", out.Failure)
			}
			if n := r.versionLookups(); n != tc.wantLookups {
				t.Fatalf("%d version lookups, want %d", n, tc.wantLookups)
			}
			if got, _ := tr.User(7); got.TorrentPassVersion != tc.wantVersion {
				t.Fatalf("version in memory %d, want %d", got.TorrentPassVersion, tc.wantVersion)
			}
			if users, _ := r.calls(); users != 0 {
				t.Fatalf("%d lookups of an unknown uid for a loaded one", users)
			}
		})
	}
}

// An on-demand answer read before a reload applied a newer one must not
// undo it: a lookup of a bumped version that races with a second bump, and
// a lookup of a new user that races with its deletion.
func TestResolvedUserDoesNotUndoReload(t *testing.T) {
	ih := hashN(1)
	t.Run("version", func(t *testing.T) {
		tr, _ := newTest(t, nil)
		tr.UpsertTorrent(torrent(1, ih, t0-3600))
		tr.UpsertUser(user(7))
		r := &hookResolver{mapResolver: newMapResolver()}
		r.users[7] = User{UID: 7, CanLeech: true, TorrentPassVersion: 1}
		r.during = func() { tr.UpsertUser(User{UID: 7, CanLeech: true, TorrentPassVersion: 2}) }
		tr.SetResolver(r)
		mustFail(t, tr, annV(7, 1, ih, 1), ErrUnregisteredTorrentPass)
		if u, _ := tr.User(7); u.TorrentPassVersion != 2 {
			t.Fatalf("version %d in memory, want the reload's 2", u.TorrentPassVersion)
		}
		r.during = nil
		mustOK(t, tr, annV(7, 2, ih, 1))
	})
	t.Run("deleted while looked up", func(t *testing.T) {
		tr, _ := newTest(t, nil)
		tr.UpsertTorrent(torrent(1, ih, t0-3600))
		r := &hookResolver{mapResolver: newMapResolver()}
		r.users[9] = user(9)
		r.during = func() { tr.RemoveUser(9) }
		tr.SetResolver(r)
		mustFail(t, tr, annV(9, 0, ih, 1), ErrUnregisteredTorrentPass)
		if _, ok := tr.User(9); ok {
			t.Fatal("a user deleted while it was looked up was installed")
		}
	})
	t.Run("installed by a reload while looked up", func(t *testing.T) {
		tr, _ := newTest(t, nil)
		tr.UpsertTorrent(torrent(1, ih, t0-3600))
		r := &hookResolver{mapResolver: newMapResolver()}
		r.users[9] = user(9)
		r.during = func() { tr.UpsertUser(User{UID: 9, CanLeech: false}) }
		tr.SetResolver(r)
		mustOK(t, tr, annV(9, 0, ih, 1)) // seeding: can_leech does not matter
		if u, _ := tr.User(9); u.CanLeech {
			t.Fatal("the lookup's older record replaced the reload's")
		}
	})
}

// The version lookup is a cold path only: a warm announce with a resolver
// set allocates nothing and asks nothing, while a bumped version's passkey
// still costs exactly one lookup.
func TestVersionLookupColdPathOnly(t *testing.T) {
	tr, h := benchTracker(t, 1, 50)
	r := newMapResolver()
	r.users[1] = User{UID: 1, CanLeech: true, TorrentPassVersion: 9}
	tr.SetResolver(r)
	a := ann(1, h[0], 5, 10)
	var out AnnounceResult
	tr.Announce(a, &out)
	allocs := testing.AllocsPerRun(200, func() {
		a.Uploaded += 1000
		tr.Announce(a, &out)
	})
	if out.Failure != "" {
		t.Fatal(out.Failure)
	}
	if n := r.versionLookups(); n != 0 {
		t.Fatalf("warm announces made %d version lookups", n)
	}
	if allocs != 0 && !raceEnabled {
		t.Fatalf("warm announce: %v allocs, want 0", allocs)
	}
	mustOK(t, tr, annV(1, 9, h[0], 6))
	if n := r.versionLookups(); n != 1 {
		t.Fatalf("%d version lookups for a bumped passkey, want 1", n)
	}
}
