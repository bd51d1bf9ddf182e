package tracker

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"testing"
	"time"
)

// BenchmarkPeerMemory1M reports the heap bytes one peer costs in a
// realistic population: 1,000,000 peers of 100,000 users over 100,000
// torrents whose popularity follows Zipf's law (s = 1: the largest swarm
// has ~83,000 peers, half of the torrents fewer than 5), 60% seeders, IPv4.
// The users and torrents are loaded first and the ledger is drained before
// measuring, so the figure is what the peers add: records, indexes,
// per-user counts, slice growth and per-swarm structures they cause.
func BenchmarkPeerMemory1M(b *testing.B) { peerMemory(b, 1_000_000) }

// BenchmarkPeerMemory5M and BenchmarkPeerMemory10M are the same population
// at 5 and 10 times the peers (same users and torrents: bigger swarms), for
// the curve of memory and announce latency against size
// (docs/BENCHMARKS.md, "Memory per peer"). 10M needs about 2 GB.
func BenchmarkPeerMemory5M(b *testing.B)  { peerMemory(b, 5_000_000) }
func BenchmarkPeerMemory10M(b *testing.B) { peerMemory(b, 10_000_000) }

// latencySample is how many existing peers re-announce, timed one by one,
// once the population is in.
const latencySample = 200_000

func peerMemory(b *testing.B, nPeers int) {
	const (
		nUsers    = 100_000
		nTorrents = 100_000
	)
	for b.Loop() {
		tr, _ := newTest(b, nil)
		for uid := uint32(1); uid <= nUsers; uid++ {
			tr.UpsertUser(user(uid))
		}
		hashes := make([]InfoHash, nTorrents)
		for i := range hashes {
			hashes[i] = hashN(i)
			tr.UpsertTorrent(torrent(uint32(i+1), hashes[i], t0))
		}
		r := rand.New(rand.NewPCG(1, 2))
		pick := zipfPicker(r, hashes)
		// Allocated before the measurement: not peer memory.
		sample := make([]sampledPeer, 0, latencySample+1)
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		sample = announcePopulation(b, tr, r, nPeers, nUsers, pick, sample)
		// The pending write-back is not peer memory.
		tr.Drain()
		runtime.GC()
		runtime.ReadMemStats(&after)
		if st := tr.Stats(); st.Peers < nPeers*99/100 {
			b.Fatalf("%d peers", st.Peers)
		}
		b.ReportMetric(math.Round(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(nPeers)*10)/10, "bytes/peer")
		p50, p99 := reannounceLatency(b, tr, sample)
		b.ReportMetric(float64(p50.Nanoseconds()), "p50-ns/announce")
		b.ReportMetric(float64(p99.Nanoseconds()), "p99-ns/announce")
		runtime.KeepAlive(tr)
	}
}

// sampledPeer is what it takes to announce a peer of the population again.
type sampledPeer struct {
	n    int // the peer's number: its id, address and port
	uid  uint32
	ih   InfoHash
	left uint64
}

// reannounceLatency times a periodic announce (50 peers asked for) of each
// sampled peer and returns the median and the 99th percentile.
func reannounceLatency(b *testing.B, tr *Tracker, sample []sampledPeer) (p50, p99 time.Duration) {
	b.Helper()
	var out AnnounceResult
	d := make([]time.Duration, len(sample))
	for i, p := range sample {
		a := &Announce{InfoHash: p.ih, PeerID: peerN(p.n), Addr: addr4(p.n), Port: uint16(1024 + p.n%60000),
			Passkey: pk(p.uid, p.ih), Left: p.left, Uploaded: 1000, NumWant: 50}
		start := time.Now()
		tr.Announce(a, &out)
		d[i] = time.Since(start)
		if out.Failure != "" {
			b.Fatal(out.Failure)
		}
	}
	slices.Sort(d)
	return d[len(d)/2], d[len(d)*99/100]
}

// indexLen is the number of peers the swarm's index finds (all of them
// when it has no index: lookups scan).
func (s *swarm) indexLen() int {
	if s.big == nil {
		return s.len()
	}
	n := 0
	for _, e := range s.big.peers {
		if e != emptyEntry {
			n++
		}
	}
	if n != s.big.npeers {
		return -1
	}
	return n
}

// zipfPicker returns a function that draws one of hashes with Zipf's law
// (s = 1): the first is the most popular.
func zipfPicker(r *rand.Rand, hashes []InfoHash) func() InfoHash {
	cdf := make([]float64, len(hashes))
	sum := 0.0
	for i := range cdf {
		sum += 1 / float64(i+1)
		cdf[i] = sum
	}
	return func() InfoHash {
		return hashes[min(sort.SearchFloat64s(cdf, r.Float64()*sum), len(hashes)-1)]
	}
}

// announcePopulation announces nPeers peers of users 1..nUsers on torrents
// drawn by pick, 60% of them seeders, IPv4. It appends every
// (nPeers/latencySample)-th peer to sample, for announcing them again.
func announcePopulation(b *testing.B, tr *Tracker, r *rand.Rand, nPeers, nUsers int, pick func() InfoHash, sample []sampledPeer) []sampledPeer {
	b.Helper()
	a := &Announce{NumWant: 0}
	var out AnnounceResult
	every := max(nPeers/latencySample, 1)
	for i := range nPeers {
		uid := uint32(1 + r.IntN(nUsers))
		ih := pick()
		a.InfoHash, a.PeerID, a.Addr, a.Port = ih, peerN(i), addr4(i), uint16(1024+i%60000)
		a.Passkey = pk(uid, ih)
		a.Left = 0
		if r.Float64() >= 0.6 {
			a.Left = 1 << 30
		}
		tr.Announce(a, &out)
		if out.Failure != "" {
			b.Fatal(out.Failure)
		}
		if i%every == 0 && len(sample) < cap(sample) {
			sample = append(sample, sampledPeer{n: i, uid: uid, ih: ih, left: a.Left})
		}
	}
	return sample
}
