package tracker

import (
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xbt-tracker/xbt-tracker/passkey"
)

const (
	testSecret   = "secretkey"
	testInterval = 1800
	t0           = 1_700_000_000 // the fake clock's start, unix seconds
)

// fakeClock is a goroutine-safe settable clock.
type fakeClock struct{ unix atomic.Int64 }

func (c *fakeClock) Now() time.Time { return time.Unix(c.unix.Load(), 0) }
func (c *fakeClock) Add(sec int64)  { c.unix.Add(sec) }
func (c *fakeClock) Unix() int64    { return c.unix.Load() }

func testSettings() Settings {
	return Settings{
		AnnounceInterval: testInterval,
		Secret:           testSecret,
		DefaultNumWant:   50,
		MaxNumWant:       80,
		ScrapeInterval:   900,
	}
}

// newTest returns a tracker with testSettings (modified by mod) on a fake
// clock at t0.
func newTest(tb testing.TB, mod func(*Settings)) (*Tracker, *fakeClock) {
	tb.Helper()
	s := testSettings()
	if mod != nil {
		mod(&s)
	}
	c := &fakeClock{}
	c.unix.Store(t0)
	return New(s, Options{Now: c.Now}), c
}

func hashN(n int) InfoHash { return sha1.Sum([]byte(fmt.Sprint("torrent ", n))) }

func peerN(n int) PeerID {
	var p PeerID
	copy(p[:], "-TT0001-")
	binary.BigEndian.PutUint64(p[12:], uint64(n))
	return p
}

// pk is the derived passkey of uid (torrent_pass_version 0) for ih.
func pk(uid uint32, ih InfoHash) []byte { return pkv(uid, 0, ih) }

func pkv(uid uint32, ver int, ih InfoHash) []byte {
	return []byte(passkey.Derive(testSecret, ver, uid, ih))
}

func user(uid uint32) User { return User{UID: uid, CanLeech: true} }

// addr4 returns 10.x.y.z for n.
func addr4(n int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)})
}

func addr6(n int) netip.Addr {
	b := [16]byte{0x20, 0x01, 0x0d, 0xb8}
	binary.BigEndian.PutUint32(b[12:], uint32(n))
	return netip.AddrFrom16(b)
}

// ann builds an announce of peer p of user uid (0: no passkey) on ih.
func ann(uid uint32, ih InfoHash, p int, left uint64) *Announce {
	a := &Announce{
		InfoHash: ih, PeerID: peerN(p), Addr: addr4(p), Port: uint16(6881 + p%1000),
		Left: left, NumWant: -1,
	}
	if uid != 0 {
		a.Passkey = pk(uid, ih)
	}
	return a
}

// do runs an announce and returns its result.
func do(tr *Tracker, a *Announce) *AnnounceResult {
	var out AnnounceResult
	tr.Announce(a, &out)
	return &out
}

// mustOK fails the test unless the announce is accepted.
func mustOK(tb testing.TB, tr *Tracker, a *Announce) *AnnounceResult {
	tb.Helper()
	out := do(tr, a)
	if out.Failure != "" {
		tb.Fatalf("announce refused: %q", out.Failure)
	}
	return out
}

func mustFail(tb testing.TB, tr *Tracker, a *Announce, want Failure) {
	tb.Helper()
	out := do(tr, a)
	if out.Failure != want {
		tb.Fatalf("announce failure = %q, want %q", out.Failure, want)
	}
}

func torrent(fid uint32, ih InfoHash, ctime int64) Torrent {
	return Torrent{Fid: fid, InfoHash: ih, Ctime: ctime}
}

// swarmOf returns the swarm of ih (nil if unknown).
func swarmOf(tr *Tracker, ih InfoHash) *swarm { return tr.shardFor(&ih).find(&ih) }

// counts returns the seeders and leechers of ih.
func counts(tr *Tracker, ih InfoHash) (seeders, leechers int) {
	s := swarmOf(tr, ih)
	if s == nil {
		return -1, -1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seeders), len(s.leechers)
}

// checkInvariants verifies, with the tracker quiescent, that every derived
// count matches the peers actually stored.
func checkInvariants(tb testing.TB, tr *Tracker) {
	tb.Helper()
	leechingTorrents := map[uint32]int32{} // recount of every user's counter
	for si := range tr.shards {
		sh := &tr.shards[si]
		sh.mu.RLock()
		var seeders, leechers, withPeers int64
		for ih, s := range sh.m {
			s.mu.Lock()
			if s.removed {
				tb.Errorf("removed swarm %x still in its shard", ih[:4])
			}
			if s.ih != ih {
				tb.Errorf("swarm keyed %x holds %x", ih[:4], s.ih[:4])
			}
			if n := s.indexLen(); n != s.len() {
				tb.Errorf("swarm %x: index has %d entries, slices %d+%d", ih[:4], n, len(s.seeders), len(s.leechers))
			}
			users := map[uint32]userPeers{}
			for _, seeder := range []bool{true, false} {
				for i, p := range *s.list(seeder) {
					if (p.left == 0) != seeder {
						tb.Errorf("swarm %x: peer with left %d in seeders=%v", ih[:4], p.left, seeder)
					}
					sl := slot(i)
					if seeder {
						sl |= seederBit
					}
					if got, ok := s.lookup(peerKey{p.uid, p.id}); !ok || got != sl {
						tb.Errorf("swarm %x: index of peer %d = %v,%v, want %v", ih[:4], i, got, ok, sl)
					}
					if p.uid != 0 {
						c := users[p.uid]
						c.total++
						if !seeder {
							c.leeching++
						}
						users[p.uid] = c
					}
				}
			}
			for uid, c := range users {
				if got := s.userCount(uid); got != c {
					tb.Errorf("swarm %x uid %d: counts %+v, recount %+v", ih[:4], uid, got, c)
				}
				if c.leeching > 0 {
					leechingTorrents[uid]++
				}
			}
			seeders += int64(len(s.seeders))
			leechers += int64(len(s.leechers))
			if s.len() > 0 {
				withPeers++
			}
			s.mu.Unlock()
		}
		if got := sh.torrents.Load(); got != int64(len(sh.m)) {
			tb.Errorf("shard %d: torrents counter %d, map %d", si, got, len(sh.m))
		}
		if sh.seeders.Load() != seeders || sh.leechers.Load() != leechers || sh.withPeers.Load() != withPeers {
			tb.Errorf("shard %d: counters s=%d l=%d w=%d, recount s=%d l=%d w=%d", si,
				sh.seeders.Load(), sh.leechers.Load(), sh.withPeers.Load(), seeders, leechers, withPeers)
		}
		sh.mu.RUnlock()
	}
	var users int64
	for si := range tr.users.shards {
		sh := &tr.users.shards[si]
		sh.mu.RLock()
		for uid, e := range sh.m {
			if e.user.Load() != nil {
				users++
			}
			if got, want := e.leeching.Load(), leechingTorrents[uid]; got != want {
				tb.Errorf("uid %d: leeching-torrent counter %d, recount %d", uid, got, want)
			}
			delete(leechingTorrents, uid)
		}
		sh.mu.RUnlock()
	}
	for uid, n := range leechingTorrents {
		tb.Errorf("uid %d leeches %d torrents but has no counter", uid, n)
	}
	if got := tr.users.count.Load(); got != users {
		tb.Errorf("users counter %d, recount %d", got, users)
	}
}
