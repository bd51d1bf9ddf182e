package tracker

import (
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
)

// benchTracker returns a tracker with nTorrents torrents of nPeers peers
// each (half seeders), the peers of users 1..100, and the torrents' hashes.
func benchTracker(tb testing.TB, nTorrents, nPeers int) (*Tracker, []InfoHash) {
	tr, _ := newTest(tb, nil)
	for uid := uint32(1); uid <= 100; uid++ {
		tr.UpsertUser(user(uid))
	}
	hashes := make([]InfoHash, nTorrents)
	var out AnnounceResult
	for i := range hashes {
		hashes[i] = hashN(i)
		tr.UpsertTorrent(torrent(uint32(i+1), hashes[i], t0))
		for p := range nPeers {
			uid := uint32(1 + p%100)
			tr.Announce(ann(uid, hashes[i], 1000+p, uint64(p%2)*100), &out)
			if out.Failure != "" {
				tb.Fatal(out.Failure)
			}
		}
	}
	return tr, hashes
}

// BenchmarkAnnounceExistingPeer: the common case, a periodic announce of a
// known peer on a 200-peer swarm, 50 peers returned.
func BenchmarkAnnounceExistingPeer(b *testing.B) {
	tr, h := benchTracker(b, 1, 200)
	a := ann(1, h[0], 5, 10)
	var out AnnounceResult
	tr.Announce(a, &out)
	b.ReportAllocs()
	for b.Loop() {
		a.Uploaded += 1000
		tr.Announce(a, &out)
	}
	if out.Failure != "" || len(out.Peers4) != 50*6 {
		b.Fatalf("%q %d", out.Failure, len(out.Peers4))
	}
}

// multipliedTracker is benchTracker(tb, 1, nPeers) with credit factors in
// play: the torrent, the user and the site each have one (150 % × 200 % ×
// 110 % upload), and a token of another user is loaded, so every announce
// of user 1 looks them up and scales its credit through the carry. It
// returns that user's announce, made once.
func multipliedTracker(tb testing.TB, nPeers int) (*Tracker, *Announce) {
	tr, h := benchTracker(tb, 1, nPeers)
	s := tr.Settings()
	s.UpMulti = Percent(150)
	tr.SetSettings(s)
	tr.SetCreditRules(&CreditRules{
		Torrents: map[uint32]Factors{1: {Up: Percent(200), Down: Percent(50)}},
		Users:    map[uint32]Factors{1: {Up: Percent(110)}},
		Tokens:   map[FileUserKey]int64{{Fid: 1, UID: 2}: t0 + 3600},
	})
	a := ann(1, h[0], 5, 10)
	var out AnnounceResult
	tr.Announce(a, &out)
	return tr, a
}

// BenchmarkAnnounceExistingPeerMultiplied is BenchmarkAnnounceExistingPeer
// with credit factors in play (multipliedTracker).
func BenchmarkAnnounceExistingPeerMultiplied(b *testing.B) {
	tr, a := multipliedTracker(b, 200)
	var out AnnounceResult
	b.ReportAllocs()
	for b.Loop() {
		a.Uploaded += 1001
		a.Downloaded += 3
		tr.Announce(a, &out)
	}
	if out.Failure != "" || len(out.Peers4) != 50*6 {
		b.Fatalf("%q %d", out.Failure, len(out.Peers4))
	}
	// 150 % × 200 % × 110 % of every byte, the remainders carried.
	if d := tr.Drain().Users[1]; d.Uploaded != a.Uploaded*33/10 {
		b.Fatalf("credited %d of %d real bytes, want %d", d.Uploaded, a.Uploaded, a.Uploaded*33/10)
	}
}

// BenchmarkAnnounceExistingPeerTimed is BenchmarkAnnounceExistingPeer with
// the clock moving one second per announce, so that every announce credits
// seed or leech time (the fixed clock of the others credits none).
func BenchmarkAnnounceExistingPeerTimed(b *testing.B) {
	tr, h := benchTracker(b, 1, 200)
	clk := &fakeClock{}
	clk.unix.Store(t0)
	tr.now = clk.Now // set before any announce reads it
	a := ann(1, h[0], 5, 10)
	var out AnnounceResult
	tr.Announce(a, &out)
	b.ReportAllocs()
	for b.Loop() {
		clk.Add(1)
		a.Uploaded += 1000
		tr.Announce(a, &out)
	}
	if fu := tr.Drain().FileUsers[FileUserKey{1, 1}]; fu.LeechTime == 0 {
		b.Fatalf("no leech time credited: %+v", fu)
	}
	if out.Failure != "" || len(out.Peers4) != 50*6 {
		b.Fatalf("%q %d", out.Failure, len(out.Peers4))
	}
}

// BenchmarkAnnounceParallel: announces of known peers over 1000 torrents
// from every core, each goroutine driving its own peers.
func BenchmarkAnnounceParallel(b *testing.B) {
	const nTorrents = 1000
	tr, h := benchTracker(b, nTorrents, 20)
	var next atomic.Int32
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		g := int(next.Add(1))
		anns := make([]*Announce, nTorrents)
		var out AnnounceResult
		for i := range anns {
			uid := uint32(1 + (g+i)%100)
			anns[i] = ann(uid, h[i], g*100_000+i, uint64(i%2)*100)
			tr.Announce(anns[i], &out)
		}
		i := rand.IntN(nTorrents) // goroutines must not walk in step
		for pb.Next() {
			a := anns[i]
			a.Uploaded += 1000
			tr.Announce(a, &out)
			if i++; i == nTorrents {
				i = 0
			}
		}
	})
}

// BenchmarkScrape: a single-hash scrape with a derived passkey.
func BenchmarkScrape(b *testing.B) {
	tr, h := benchTracker(b, 10, 20)
	req := &ScrapeRequest{Passkey: pk(1, h[3]), InfoHashes: []InfoHash{h[3]}}
	var out ScrapeResult
	b.ReportAllocs()
	for b.Loop() {
		tr.Scrape(req, &out)
	}
	if out.Failure != "" || len(out.Files) != 1 {
		b.Fatal(out)
	}
}

// BenchmarkScrapeMany: 20 hashes, the passkey verifying against the last.
func BenchmarkScrapeMany(b *testing.B) {
	tr, h := benchTracker(b, 20, 5)
	req := &ScrapeRequest{Passkey: pk(1, h[19]), InfoHashes: h}
	var out ScrapeResult
	b.ReportAllocs()
	for b.Loop() {
		tr.Scrape(req, &out)
	}
	if out.Failure != "" || len(out.Files) != 20 {
		b.Fatal(out)
	}
}

// BenchmarkExpire: a sweep of 1000 torrents × 100 peers with nothing to
// expire (the usual case).
func BenchmarkExpire(b *testing.B) {
	tr, _ := benchTracker(b, 1000, 100)
	b.ReportAllocs()
	for b.Loop() {
		tr.Expire()
	}
}

// BenchmarkPeerMemory reports the heap bytes one peer costs (record, index
// entry, share of slice growth) in a swarm of 100,000 peers.
func BenchmarkPeerMemory(b *testing.B) {
	const n = 100_000
	for b.Loop() {
		tr, _ := newTest(b, func(s *Settings) { s.AnonymousAnnounce = true })
		h := hashN(1)
		tr.UpsertTorrent(torrent(1, h, t0))
		var out AnnounceResult
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := range n {
			a := ann(0, h, i, uint64(i%2))
			a.NumWant = 0
			tr.Announce(a, &out)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/peer")
		runtime.KeepAlive(tr)
	}
}

// BenchmarkDrain: handing over a window of 100k (fid, uid) rows of 20k
// users on 10k torrents, as a flush does every write_db_interval.
func BenchmarkDrain(b *testing.B) {
	tr, _ := newTest(b, nil)
	fill := func() {
		for i := range 100_000 {
			tr.ledger.recordAnnounce(&announceRecord{
				uid: uint32(1 + i%20_000), user: true, fid: uint32(1 + i/10),
				up: 1, down: 1, creditUp: 1, creditDown: 1, active: true, mtime: t0,
			})
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		fill()
		b.StartTimer()
		if n := len(tr.Drain().FileUsers); n != 100_000 {
			b.Fatalf("%d file-user rows", n)
		}
	}
}
