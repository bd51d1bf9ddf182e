package tracker

import (
	"testing"
	"unsafe"
)

// In a cluster a scrape of a torrent with no peer here answers the counts
// its owner wrote to the database (StoreCounts), until a complete refresh
// pass no longer reads them; a torrent with peers here answers its own.
func TestScrapeStoredCounts(t *testing.T) {
	h1, h2 := hashN(1), hashN(2)
	for _, cluster := range []bool{false, true} {
		clk := &fakeClock{}
		clk.unix.Store(t0)
		s := testSettings()
		s.AnonymousScrape = true
		tr := New(s, Options{Now: clk.Now, Cluster: cluster})
		tr.UpsertTorrent(torrent(1, h1, t0))
		tr.UpsertTorrent(torrent(2, h2, t0))
		tr.UpsertUser(user(1))
		mustOK(t, tr, ann(1, h2, 1, 0)) // h2 has a seeder here
		scrape := func() map[InfoHash][2]int {
			var out ScrapeResult
			tr.Scrape(&ScrapeRequest{InfoHashes: []InfoHash{h1, h2}, Addr: addr4(1)}, &out)
			m := map[InfoHash][2]int{}
			for _, f := range out.Files {
				m[f.InfoHash] = [2]int{f.Complete, f.Incomplete}
			}
			return m
		}
		tr.StoreCounts(h1, 1, 5, 3, 1)
		tr.StoreCounts(h2, 2, 9, 9, 1)
		tr.StoreCounts(h1, 7, 8, 8, 1) // another fid: ignored
		got := scrape()
		want1 := [2]int{5, 3}
		if !cluster {
			want1 = [2]int{0, 0}
		}
		if got[h1] != want1 || got[h2] != [2]int{1, 0} {
			t.Fatalf("cluster %v: scrape %v, want h1 %v (stored) and h2 1/0 (its own peer)", cluster, got, want1)
		}
		tr.CompleteStoredPass(1)
		if got := scrape(); got[h1] != want1 {
			t.Fatalf("cluster %v: after its pass h1 = %v, want %v", cluster, got[h1], want1)
		}
		tr.CompleteStoredPass(2) // pass 2 did not read h1: its row claims no peer any more
		if got := scrape(); got[h1] != [2]int{0, 0} {
			t.Fatalf("cluster %v: after a pass without it h1 = %v, want 0/0", cluster, got[h1])
		}
	}
}

// In a cluster torrents_limit counts the torrents a user leeches on the
// other instances too (SetRemoteLeeching), and LeechingCounts is what this
// instance publishes: users with a limit who leech here.
func TestRemoteLeechingLimit(t *testing.T) {
	tr, _ := newTest(t, nil)
	h1, h2, h3 := hashN(1), hashN(2), hashN(3)
	for i, h := range []InfoHash{h1, h2, h3} {
		tr.UpsertTorrent(torrent(uint32(i+1), h, t0-7200))
	}
	tr.UpsertUser(User{UID: 1, CanLeech: true, TorrentsLimit: 2})
	tr.UpsertUser(User{UID: 2, CanLeech: true}) // no limit: never published
	mustOK(t, tr, ann(1, h1, 1, 10))
	mustOK(t, tr, ann(2, h1, 2, 10))
	if got := tr.LeechingCounts(); len(got) != 1 || got[1] != 1 {
		t.Fatalf("LeechingCounts = %v, want uid 1 leeching 1 torrent", got)
	}
	tr.SetRemoteLeeching(map[uint32]int32{1: 1, 2: 5})
	mustFail(t, tr, ann(1, h2, 3, 10), ErrTorrentsLimitReached) // 1 here + 1 elsewhere = the limit
	mustOK(t, tr, ann(2, h2, 4, 10))                            // no limit
	tr.SetRemoteLeeching(map[uint32]int32{})                    // the other instance's torrent is done
	mustOK(t, tr, ann(1, h2, 3, 10))
	mustFail(t, tr, ann(1, h3, 5, 10), ErrTorrentsLimitReached) // 2 here
	checkInvariants(t, tr)
}

// A swarm is allocated per torrent (1M on a large site): the cluster's
// fields must not push it out of the 144-byte size class it had before
// (lastAnnounce sits in ih's padding, the stored counts behind a pointer).
func TestSwarmSizeClass(t *testing.T) {
	if n := unsafe.Sizeof(swarm{}); n > 144 {
		t.Fatalf("swarm is %d bytes, want at most 144", n)
	}
}
