package tracker

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// simPeer is the test's model of one simulated peer. Each is driven by a
// single goroutine, which therefore knows exactly what the tracker must
// credit it.
type simPeer struct {
	uid       uint32 // 0: anonymous
	id        PeerID
	ih        InfoHash
	key       []byte // passkey for ih
	live      bool   // announced and not stopped since
	lastRound int    // round of the last announce
	up, down  uint64
	left      uint64
}

// TestConcurrentAnnounces: 50 goroutines × 400 announces on a few shared
// torrents, with random users, peers and events, while Expire and Drain (and
// Restore of "failed" batches) run concurrently. Run it with -race.
//
// Time advances by one announce interval per round, between rounds. A peer
// last seen two or more rounds ago may be expired at any moment during the
// round, so the test cannot know whether the tracker still has it; when it
// announces again it sends zero counters, which earn no credit either way
// (counters down, or a new peer). Every other announce's credit is known.
// At the end the credit summed over every written batch must equal the sum
// of the expected deltas, and the counts must match the peers.
func TestConcurrentAnnounces(t *testing.T) {
	const (
		goroutines = 50
		rounds     = 8
		perRound   = 50 // announces per goroutine per round: 400 each
		nTorrents  = 4
		perG       = 6 // simulated peers per goroutine
		shared     = 10
	)
	tr, clk := newTest(t, func(s *Settings) { s.AnonymousAnnounce = true })
	hashes := make([]InfoHash, nTorrents)
	for i := range hashes {
		hashes[i] = hashN(i)
		tr.UpsertTorrent(torrent(uint32(100+i), hashes[i], t0))
	}
	for uid := uint32(1); uid <= shared; uid++ {
		tr.UpsertUser(user(uid))
	}
	peers := make([][]*simPeer, goroutines)
	for g := range goroutines {
		tr.UpsertUser(user(uint32(1000 + g)))
		for k := range perG {
			p := &simPeer{ih: hashes[rand.IntN(nTorrents)]}
			if k < perG/2 {
				// The same peer ids in every goroutine, each under its
				// own user: distinct peers that must not steal each other.
				p.uid, p.id = uint32(1000+g), peerN(k)
			} else {
				p.uid, p.id = uint32(rand.IntN(shared+1)), peerN(1_000_000+g*100+k) // 0: anonymous
			}
			if p.uid != 0 {
				p.key = pk(p.uid, p.ih)
			}
			peers[g] = append(peers[g], p)
		}
	}

	expected := make([]map[uint32]UserDelta, goroutines) // per goroutine, summed at the end
	var kept []*Batch
	var restored atomic.Int64

	for round := range rounds {
		var wg sync.WaitGroup
		done := make(chan struct{})
		// The writer: expire, drain, and pretend one write in three failed.
		var wwg sync.WaitGroup
		wwg.Add(1)
		go func() {
			defer wwg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				tr.Expire()
				b := tr.Drain()
				if rand.IntN(3) == 0 {
					tr.Restore(b)
					restored.Add(1)
				} else {
					kept = append(kept, b)
				}
				time.Sleep(200 * time.Microsecond)
			}
		}()
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if expected[g] == nil {
					expected[g] = map[uint32]UserDelta{}
				}
				var out AnnounceResult
				for range perRound {
					p := peers[g][rand.IntN(perG)]
					a := &Announce{InfoHash: p.ih, PeerID: p.id, Passkey: p.key, Addr: addr4(int(p.id[19])), Port: 6881, NumWant: -1}
					stale := p.live && p.lastRound <= round-2
					var credit UserDelta
					switch {
					case !p.live:
						a.Event = EventStarted
						p.up, p.down = rand.Uint64N(1000), rand.Uint64N(1000) // a baseline, no credit
						p.left = rand.Uint64N(2) * 100
					case stale:
						p.up, p.down = 0, 0 // no credit whether it expired or not
					default:
						switch r := rand.IntN(10); {
						case r == 0: // restarted client: counters back to zero
							p.up, p.down = 0, 0
						default:
							du, dd := rand.Uint64N(1000), rand.Uint64N(3)*rand.Uint64N(500)
							p.up += du
							p.down += dd
							credit = UserDelta{du, dd}
						}
					}
					if p.live {
						switch r := rand.IntN(10); {
						case r == 0:
							a.Event = EventStopped
						case r == 1:
							a.Event, p.left = EventCompleted, 0
						case r < 5:
							p.left = rand.Uint64N(2) * 100 // seeder <-> leecher
						}
					}
					a.Uploaded, a.Downloaded, a.Left = p.up, p.down, p.left
					tr.Announce(a, &out)
					if out.Failure != "" {
						t.Errorf("refused: %q", out.Failure)
						return
					}
					if out.Complete < 0 || out.Incomplete < 0 || (a.Event != EventStopped && out.Complete+out.Incomplete == 0) {
						t.Errorf("counts %d/%d with the requester in the swarm", out.Complete, out.Incomplete)
					}
					if p.uid != 0 && credit != (UserDelta{}) {
						e := expected[g][p.uid]
						e.Uploaded += credit.Uploaded
						e.Downloaded += credit.Downloaded
						expected[g][p.uid] = e
					}
					p.live = a.Event != EventStopped
					p.lastRound = round
				}
			}()
		}
		wg.Wait()
		close(done)
		wwg.Wait()
		if t.Failed() {
			t.FailNow()
		}

		// Quiescent: the counts match the peers, and the tracker holds
		// exactly the model's peers (give or take stale ones).
		checkInvariants(t, tr)
		present := 0
		for g := range goroutines {
			for _, p := range peers[g] {
				s := swarmOf(tr, p.ih)
				s.mu.Lock()
				sl, ok := s.lookup(peerKey{p.uid, p.id})
				var got peer
				if ok {
					got = *s.at(sl)
				}
				s.mu.Unlock()
				if ok {
					present++
				}
				stale := p.live && p.lastRound <= round-2
				switch {
				case !p.live && ok:
					t.Fatalf("round %d: stopped peer %x/%d still present", round, p.id[16:], p.uid)
				case p.live && !stale && !ok:
					t.Fatalf("round %d: live peer %x/%d missing", round, p.id[16:], p.uid)
				case ok && (got.uploaded != p.up || got.downloaded != p.down || got.left != p.left):
					t.Fatalf("round %d: peer %x/%d holds %d/%d/%d, sent %d/%d/%d", round, p.id[16:], p.uid,
						got.uploaded, got.downloaded, got.left, p.up, p.down, p.left)
				}
			}
		}
		if st := tr.Stats(); st.Peers != present {
			t.Fatalf("round %d: stats count %d peers, %d present", round, st.Peers, present)
		}
		clk.Add(testInterval)
	}

	// Everyone expires; the last batch holds the final state.
	clk.Add(2 * testInterval)
	tr.Expire()
	checkInvariants(t, tr)
	if st := tr.Stats(); st.Peers != 0 {
		t.Fatalf("after expiry %+v", st)
	}
	kept = append(kept, tr.Drain())
	t.Logf("%d batches written, %d restored", len(kept), restored.Load())

	want := map[uint32]UserDelta{}
	for _, m := range expected {
		for uid, d := range m {
			w := want[uid]
			w.Uploaded += d.Uploaded
			w.Downloaded += d.Downloaded
			want[uid] = w
		}
	}
	// Apply the written batches in order, as the database would.
	db := newBatch(0, 0, 0)
	for _, b := range kept {
		db.mergeNewer(b)
	}
	for uid, w := range want {
		if got := db.Users[uid]; got != w {
			t.Errorf("uid %d credited %+v, want %+v", uid, got, w)
		}
	}
	for uid, got := range db.Users {
		if _, ok := want[uid]; !ok {
			t.Errorf("uid %d credited %+v, want nothing", uid, got)
		}
	}
	perUser := map[uint32]UserDelta{}
	for k, d := range db.FileUsers {
		if d.Active {
			t.Errorf("files_users %v still active after every peer expired", k)
		}
		w := perUser[k.UID]
		w.Uploaded += d.Uploaded
		w.Downloaded += d.Downloaded
		perUser[k.UID] = w
	}
	for uid, w := range want {
		if perUser[uid] != w {
			t.Errorf("files_users credit of uid %d: %+v, want %+v", uid, perUser[uid], w)
		}
	}
	for fid, f := range db.Files {
		if f.Seeders != 0 || f.Leechers != 0 {
			t.Errorf("fid %d ends with %d/%d peers", fid, f.Seeders, f.Leechers)
		}
	}
	var completed uint64
	for _, h := range hashes {
		got, _ := tr.Torrent(h)
		completed += got.Completed
	}
	var written uint64
	for _, f := range db.Files {
		written += f.Completed
	}
	if completed != written {
		t.Errorf("%d completions counted, %d written", completed, written)
	}
}
