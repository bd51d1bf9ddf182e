package tracker

import (
	"sync"
	"testing"
)

// mapResolver answers from maps and counts its calls.
type mapResolver struct {
	mu                      sync.Mutex
	users                   map[uint32]User
	torrents                map[InfoHash]Torrent
	userCalls, torrentCalls int
	versionCalls            int
}

func newMapResolver() *mapResolver {
	return &mapResolver{users: map[uint32]User{}, torrents: map[InfoHash]Torrent{}}
}

func (r *mapResolver) ResolveUser(uid uint32) (User, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.userCalls++
	u, ok := r.users[uid]
	return u, ok
}

func (r *mapResolver) ResolveUserVersion(uid uint32, loaded int) (User, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.versionCalls++
	u, ok := r.users[uid]
	if !ok || u.TorrentPassVersion == loaded {
		return User{}, false
	}
	return u, true
}

func (r *mapResolver) ResolveTorrent(ih InfoHash) (Torrent, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.torrentCalls++
	t, ok := r.torrents[ih]
	return t, ok
}

func (r *mapResolver) calls() (users, torrents int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.userCalls, r.torrentCalls
}

func TestResolverFirstAnnounceOfNewUserAndTorrent(t *testing.T) {
	tr, _ := newTest(t, nil)
	r := newMapResolver()
	tr.SetResolver(r)
	ih := hashN(1)
	r.users[7] = user(7)
	r.torrents[ih] = torrent(3, ih, t0-3600)

	out := mustOK(t, tr, ann(7, ih, 1, 0))
	if out.Complete != 1 {
		t.Fatalf("complete = %d, want 1 (the announcing seeder)", out.Complete)
	}
	if u, tc := r.calls(); u != 1 || tc != 1 {
		t.Fatalf("resolver calls users=%d torrents=%d, want 1 and 1", u, tc)
	}
	if _, ok := tr.User(7); !ok {
		t.Fatal("resolved user was not installed")
	}
	if got, ok := tr.Torrent(ih); !ok || got.Fid != 3 {
		t.Fatalf("resolved torrent = %+v %v, want fid 3", got, ok)
	}
	// Warm now: no more calls, and the ledger carries the fid.
	for i := 0; i < 5; i++ {
		mustOK(t, tr, ann(7, ih, 1, 0))
	}
	if u, tc := r.calls(); u != 1 || tc != 1 {
		t.Fatalf("warm announces called the resolver: users=%d torrents=%d", u, tc)
	}
	b := tr.Drain()
	if _, ok := b.FileUsers[FileUserKey{3, 7}]; !ok {
		t.Fatalf("ledger has no (fid 3, uid 7) row: %+v", b.FileUsers)
	}
}

func TestResolverMissKeepsXBTFailures(t *testing.T) {
	tr, _ := newTest(t, nil)
	r := newMapResolver()
	tr.SetResolver(r)
	ih := hashN(1)

	mustFail(t, tr, ann(9, ih, 1, 0), ErrUnregisteredTorrentPass)
	if u, tc := r.calls(); u != 1 || tc != 0 {
		t.Fatalf("calls users=%d torrents=%d, want 1 and 0", u, tc)
	}
	tr.UpsertUser(user(9))
	mustFail(t, tr, ann(9, ih, 1, 0), ErrUnregisteredTorrent)
	if u, tc := r.calls(); u != 1 || tc != 1 {
		t.Fatalf("calls users=%d torrents=%d, want 1 and 1", u, tc)
	}
	// A resolved user with another passkey version does not verify.
	r.users[10] = User{UID: 10, CanLeech: true, TorrentPassVersion: 1}
	mustFail(t, tr, ann(10, ih, 1, 0), ErrUnregisteredTorrentPass)
}

func TestResolverIgnoresMismatchedAnswers(t *testing.T) {
	tr, _ := newTest(t, nil)
	r := newMapResolver()
	tr.SetResolver(r)
	tr.UpsertUser(user(1))
	a, b := hashN(1), hashN(2)
	r.torrents[a] = torrent(5, b, t0) // wrong hash
	mustFail(t, tr, ann(1, a, 1, 0), ErrUnregisteredTorrent)
	r.torrents[a] = torrent(0, a, t0) // no fid
	mustFail(t, tr, ann(1, a, 1, 0), ErrUnregisteredTorrent)
	r.users[2] = user(3) // wrong uid
	mustFail(t, tr, ann(2, a, 1, 0), ErrUnregisteredTorrentPass)
	if _, ok := tr.User(3); ok {
		t.Fatal("a mismatched user answer was installed")
	}
}

func TestResolverBeforeAutoRegister(t *testing.T) {
	tr, _ := newTest(t, func(s *Settings) { s.AutoRegister = true })
	r := newMapResolver()
	tr.SetResolver(r)
	tr.UpsertUser(user(1))
	known, unknown := hashN(1), hashN(2)
	r.torrents[known] = torrent(4, known, t0)
	mustOK(t, tr, ann(1, known, 1, 0))
	mustOK(t, tr, ann(1, unknown, 1, 0))
	b := tr.Drain()
	if _, ok := b.NewFiles[known]; ok {
		t.Fatal("a torrent the database has was auto-registered")
	}
	if _, ok := b.NewFiles[unknown]; !ok {
		t.Fatal("an unknown torrent was not auto-registered")
	}
	if got, _ := tr.Torrent(known); got.Fid != 4 {
		t.Fatalf("fid %d, want 4", got.Fid)
	}
}

func TestResolverScrape(t *testing.T) {
	tr, _ := newTest(t, nil)
	r := newMapResolver()
	tr.SetResolver(r)
	var hashes []InfoHash
	for i := range 10 {
		ih := hashN(100 + i)
		hashes = append(hashes, ih)
		r.torrents[ih] = torrent(uint32(100+i), ih, t0)
	}
	r.users[1] = user(1)
	var out ScrapeResult
	tr.Scrape(&ScrapeRequest{Passkey: pk(1, hashes[0]), InfoHashes: hashes}, &out)
	if out.Failure != "" {
		t.Fatal(out.Failure)
	}
	if len(out.Files) != maxResolvesPerScrape {
		t.Fatalf("%d files, want the %d a scrape may resolve", len(out.Files), maxResolvesPerScrape)
	}
	if _, tc := r.calls(); tc != maxResolvesPerScrape {
		t.Fatalf("%d torrent lookups for one scrape, want %d", tc, maxResolvesPerScrape)
	}
	tr.Scrape(&ScrapeRequest{Passkey: pk(1, hashes[0]), InfoHashes: hashes}, &out)
	if len(out.Files) != 2*maxResolvesPerScrape {
		t.Fatalf("second scrape: %d files, want %d", len(out.Files), 2*maxResolvesPerScrape)
	}
}

func TestResolverNotOnWarmPath(t *testing.T) {
	tr, h := benchTracker(t, 1, 50)
	r := newMapResolver()
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
	if u, tc := r.calls(); u != 0 || tc != 0 {
		t.Fatalf("warm announces called the resolver: users=%d torrents=%d", u, tc)
	}
	if allocs != 0 && !raceEnabled {
		t.Fatalf("warm announce with a resolver set: %v allocs, want 0", allocs)
	}
	tr.SetResolver(nil)
	mustFail(t, tr, ann(1, hashN(999), 1, 0), ErrUnregisteredTorrent)
}
