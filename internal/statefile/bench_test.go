package statefile

import (
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/xbt-tracker/xbt-tracker/passkey"
	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// The state file at 1,000,000 peers: the population of
// tracker.BenchmarkPeerMemory1M (100,000 users, 100,000 torrents of Zipf
// popularity, 60% seeders, IPv4). Save is what a stop does after the final
// flush (read the swarms out, encode, write, fsync, rename); Load what a
// start does (open and verify the whole file, decode, restore the swarms
// into a tracker that has loaded its users and torrents).
//
//	go test -run '^$' -bench 1M -benchtime 5x ./internal/statefile

const (
	benchUsers    = 100_000
	benchTorrents = 100_000
	benchPeers    = 1_000_000
	benchSecret   = "benchsecret"
)

func benchPopulation(b *testing.B) (*tracker.Tracker, []tracker.User, []tracker.Torrent) {
	b.Helper()
	now := time.Unix(1_700_000_000, 0)
	tr := tracker.New(tracker.Settings{Secret: benchSecret}, tracker.Options{Now: func() time.Time { return now }})
	users := make([]tracker.User, benchUsers)
	for i := range users {
		users[i] = tracker.User{UID: uint32(i + 1), CanLeech: true}
	}
	tr.ReplaceUsers(users)
	torrents := make([]tracker.Torrent, benchTorrents)
	for i := range torrents {
		torrents[i] = tracker.Torrent{Fid: uint32(i + 1), InfoHash: sha1.Sum(fmt.Append(nil, "torrent ", i)), Ctime: now.Unix()}
	}
	tr.ReplaceTorrents(torrents)
	cdf := make([]float64, benchTorrents)
	sum := 0.0
	for i := range cdf {
		sum += 1 / float64(i+1)
		cdf[i] = sum
	}
	r := rand.New(rand.NewPCG(1, 2))
	a := &tracker.Announce{NumWant: 0}
	var out tracker.AnnounceResult
	for i := range benchPeers {
		uid := uint32(1 + r.IntN(benchUsers))
		ih := torrents[min(sort.SearchFloat64s(cdf, r.Float64()*sum), benchTorrents-1)].InfoHash
		a.InfoHash, a.Port = ih, uint16(1024+i%60000)
		copy(a.PeerID[:], "-TT0001-")
		binary.BigEndian.PutUint64(a.PeerID[12:], uint64(i))
		a.Addr = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		a.Passkey = []byte(passkey.Derive(benchSecret, 0, uid, ih))
		a.Uploaded, a.Downloaded = r.Uint64N(1<<36), r.Uint64N(1<<34)
		a.Left = 0
		if r.Float64() >= 0.6 {
			a.Left = r.Uint64N(1 << 32)
		}
		tr.Announce(a, &out)
		if out.Failure != "" {
			b.Fatal(out.Failure)
		}
	}
	tr.Drain()
	return tr, users, torrents
}

func save(b *testing.B, tr *tracker.Tracker, path string) int64 {
	w, err := Create(path, Header{SavedAt: time.Unix(1_700_000_000, 0), SecretHash: SecretHash(benchSecret), Database: "xbt", Server: "db:3306"})
	if err != nil {
		b.Fatal(err)
	}
	if err := tr.ForEachSwarm(func(ih tracker.InfoHash, fid uint32, peers []tracker.PeerState) error {
		return w.Torrent(ih, fid, peers)
	}); err != nil {
		b.Fatal(err)
	}
	size, err := w.Commit()
	if err != nil {
		b.Fatal(err)
	}
	return size
}

func load(b *testing.B, tr *tracker.Tracker, path string) int {
	r, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	var buf []tracker.PeerState
	n := 0
	for {
		ih, fid, peers, ok, err := r.Next(buf)
		if err != nil {
			b.Fatal(err)
		}
		if !ok {
			return n
		}
		buf = peers[:0]
		n += tr.RestoreSwarm(ih, fid, peers).Restored
	}
}

func BenchmarkSave1M(b *testing.B) {
	tr, _, _ := benchPopulation(b)
	path := filepath.Join(b.TempDir(), "xbt-tracker.state")
	var size int64
	for b.Loop() {
		size = save(b, tr, path)
	}
	b.ReportMetric(float64(size), "file-bytes")
	b.ReportMetric(float64(size)/benchPeers, "bytes/peer")
}

func BenchmarkLoad1M(b *testing.B) {
	tr, users, torrents := benchPopulation(b)
	path := filepath.Join(b.TempDir(), "xbt-tracker.state")
	save(b, tr, path)
	settings := tr.Settings()
	for b.Loop() {
		b.StopTimer()
		nu := tracker.New(settings, tracker.Options{})
		nu.ReplaceUsers(users)
		nu.ReplaceTorrents(torrents)
		b.StartTimer()
		if n := load(b, nu, path); n != benchPeers {
			b.Fatalf("restored %d peers", n)
		}
	}
	st, _ := os.Stat(path)
	b.ReportMetric(float64(st.Size()), "file-bytes")
}

// BenchmarkDecode1M is Load1M without the restore: the file's two passes
// (Open's checksum and structure check, then the decoding).
func BenchmarkDecode1M(b *testing.B) {
	tr, _, _ := benchPopulation(b)
	path := filepath.Join(b.TempDir(), "xbt-tracker.state")
	save(b, tr, path)
	for b.Loop() {
		r, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		var buf []tracker.PeerState
		n := 0
		for {
			_, _, peers, ok, err := r.Next(buf)
			if err != nil {
				b.Fatal(err)
			}
			if !ok {
				break
			}
			n += len(peers)
			buf = peers[:0]
		}
		r.Close()
		if n != benchPeers {
			b.Fatal(n)
		}
	}
}
