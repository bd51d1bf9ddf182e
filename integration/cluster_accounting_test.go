package integration

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zeebo/bencode"
)

// Accounting through HAProxy with several instances writing at once
// (issue 17): exact to the byte against what the clients reported, while
// one instance is stopped and started again and while a third joins.
//
// The expected credit follows XBT's rule per instance: an announce credits
// its delta only when the previous announce of the same peer was answered
// by the same instance process (the X-Tracker-Instance header names the
// server; the test counts each instance's restarts). A peer that moved, or
// whose instance restarted cold, credits nothing on its first announce
// there. A credit the database holds beyond that is a double count, one
// short of it a loss: both fail the test.

// cluPeer is a simulated client announcing through HAProxy.
type cluPeer struct {
	uid, fid uint32
	ih       [20]byte
	id       [20]byte
	port     int
	left     uint64
	up, down uint64 // cumulative counters as reported

	last           string // instance (and its generation) of the previous answered announce
	credUp, credDn uint64 // what the tracker must have credited
	answeredBy     map[string]int
}

// cluGenerations numbers each instance's processes, so that a restarted
// instance is told apart from the one before.
type cluGenerations struct {
	mu  sync.Mutex
	gen map[string]int
}

func (g *cluGenerations) key(inst string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return fmt.Sprintf("%s#%d", inst, g.gen[inst])
}

func (g *cluGenerations) bump(inst string) {
	g.mu.Lock()
	g.gen[inst]++
	g.mu.Unlock()
}

// announce sends the peer's next announce; ok is false for a transport
// error, a non-200 answer or a failure reason (counters then stay).
func (p *cluPeer) announce(c *cluster, hc *http.Client, gens *cluGenerations, addUp, addDown uint64, event string) (ok bool, why string) {
	up, down := p.up+addUp, p.down+addDown
	resp, err := hc.Get(c.announceURL(p.uid, p.ih, announceQuery(p.id, p.port, up, down, p.left, event)))
	if err != nil {
		return false, "transport: " + err.Error()
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	inst := answeredBy(resp)
	switch {
	case err != nil:
		return false, "reading: " + err.Error()
	case resp.StatusCode != http.StatusOK || inst == "":
		return false, fmt.Sprintf("HTTP %d from %q: %.100s", resp.StatusCode, inst, body)
	case syFailure(string(body)) != "":
		return false, "failure reason: " + syFailure(string(body))
	}
	key := gens.key(inst)
	if p.last == key {
		p.credUp += up - p.up
		p.credDn += down - p.down
	}
	p.up, p.down, p.last = up, down, key
	p.answeredBy[inst]++
	return true, ""
}

// addInstance starts a new instance in the next spare server slot of
// haproxy.cfg and enables it on the runtime API, as docs/CLUSTER.md says
// an operator adds one without a reload.
func (c *cluster) addInstance() int {
	c.t.Helper()
	if c.size() >= clusterMaxInstances {
		c.t.Fatalf("addInstance: haproxy.cfg has %d slots", clusterMaxInstances)
	}
	port := freePort(c.t)
	c.addrs = append(c.addrs, fmt.Sprintf("127.0.0.1:%d", port))
	c.procs = append(c.procs, nil)
	i := c.size()
	c.procs[i-1] = c.launch(i)
	c.waitListening(i)
	// "set server ... addr" answers with what it changed.
	cmd := fmt.Sprintf("set server trackers/%s addr 127.0.0.1 port %d", serverName(i), port)
	if out, err := c.runtime(cmd); err != nil || !strings.Contains(out, "changed") {
		c.t.Fatalf("haproxy runtime API %q: %v %s", cmd, err, out)
	}
	c.enableServer(serverName(i))
	return i
}

func TestClusterAccounting(t *testing.T) {
	if testing.Short() {
		t.Skip("starts HAProxy and several trackers")
	}
	c := startCluster(t, 2, clusterOpts{})
	const nUsers, nTorrents, perTorrent = 8, 48, 3
	uids := ftUsers(t, c.cat, nUsers)
	files := ftTorrents(t, c.cat, "cluster accounting", nTorrents)
	var peers []*cluPeer
	for fi, f := range files {
		for j := 0; j < perTorrent; j++ {
			n := len(peers)
			p := &cluPeer{uid: uids[(fi+j)%nUsers], fid: f.fid, ih: f.ih, port: 20000 + n, answeredBy: map[string]int{}}
			if j > 0 {
				p.left = 1 << 30
			}
			copy(p.id[:], fmt.Sprintf("-XC0001-%012d", n))
			peers = append(peers, p)
		}
	}
	gens := &cluGenerations{gen: map[string]int{}}
	// Every torrent known to both instances before the load starts.
	syEventually(t, 20*time.Second, func() string {
		for _, p := range peers {
			if ok, why := p.announce(c, clusterHTTP, gens, 0, 0, "started"); !ok {
				return fmt.Sprintf("uid %d fid %d: %s", p.uid, p.fid, why)
			}
		}
		return ""
	})

	// The load: every peer announces with random increments every 250 ms,
	// bounded in count and time.
	var (
		wg       sync.WaitGroup
		stop     = make(chan struct{})
		mu       sync.Mutex
		answered int
		failures []string
	)
	deadline := time.Now().Add(90 * time.Second)
	for _, p := range peers {
		wg.Go(func() {
			for n := 0; n < 400 && time.Now().Before(deadline); n++ {
				ok, why := p.announce(c, clusterHTTP, gens, 1000*rand.Uint64N(1<<14), 1000*rand.Uint64N(1<<12), "")
				mu.Lock()
				if ok {
					answered++
				} else if len(failures) < 20 {
					failures = append(failures, why)
				}
				mu.Unlock()
				select {
				case <-stop:
					return
				case <-time.After(250 * time.Millisecond):
				}
			}
		})
	}
	finish := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(finish)
	pause := func(d time.Duration) { time.Sleep(d) }

	pause(3 * time.Second)
	// t2 stopped under load (it flushes what it holds; HAProxy sends its
	// torrents to t1 and retries the connections it refuses), then started
	// again, cold.
	c.stopInstance(2)
	// An answer t2 sent before it exited is read within this pause, before
	// its process count changes.
	pause(500 * time.Millisecond)
	gens.bump("t2")
	pause(3 * time.Second)
	c.startInstance(2)
	pause(3 * time.Second)

	// A third instance joins: only its share of the torrents moves, and
	// only to it.
	before := map[uint32]string{}
	for _, f := range files {
		before[f.fid] = c.ownerOf(t, uids[0], f.ih)
	}
	c.addInstance()
	moved := 0
	for _, f := range files {
		now := c.ownerOf(t, uids[0], f.ih)
		if now != before[f.fid] {
			moved++
			if now != "t3" {
				t.Errorf("fid %d moved from %s to %s when t3 joined: only moves to t3 are expected", f.fid, before[f.fid], now)
			}
		}
	}
	share := float64(moved) / float64(len(files))
	t.Logf("RESULT adding t3 moved %d of %d torrents (%.0f%%; 1/3 expected)", moved, len(files), 100*share)
	if share < 0.1 || share > 0.6 {
		t.Errorf("adding a third instance moved %.0f%% of the torrents, want about a third", 100*share)
	}
	pause(4 * time.Second)
	finish()

	if len(failures) > 0 {
		t.Errorf("%d announces answered; failures (first %d): %s", answered, len(failures), strings.Join(failures, "\n"))
	}
	byInst := map[string]int{}
	for _, p := range peers {
		for k, v := range p.answeredBy {
			byInst[k] += v
		}
	}
	t.Logf("RESULT %d announces answered through HAProxy: %v", answered, byInst)
	if byInst["t1"] == 0 || byInst["t2"] == 0 || byInst["t3"] == 0 {
		t.Errorf("every instance should have answered announces: %v", byInst)
	}

	// The database: every user's and every (fid, uid) row's bytes equal to
	// what the clients were owed, once the instances have flushed.
	wantUser := map[uint32]ftBytes{}
	type fu struct{ fid, uid uint32 }
	wantFU := map[fu]ftBytes{}
	var wantUp, wantDown, reportedUp uint64
	for _, p := range peers {
		b := wantUser[p.uid]
		b.up += p.credUp
		b.down += p.credDn
		wantUser[p.uid] = b
		k := fu{p.fid, p.uid}
		b = wantFU[k]
		b.up += p.credUp
		b.down += p.credDn
		wantFU[k] = b
		wantUp += p.credUp
		wantDown += p.credDn
		reportedUp += p.up
	}
	syEventually(t, 30*time.Second, func() string {
		for uid, w := range wantUser {
			got, err := ftUser(c.cat, uid)
			if err != nil {
				return err.Error()
			}
			if got != w {
				return fmt.Sprintf("uid %d: database up/down %d/%d, clients owed %d/%d (diff %+d/%+d)",
					uid, got.up, got.down, w.up, w.down, int64(got.up)-int64(w.up), int64(got.down)-int64(w.down))
			}
		}
		for k, w := range wantFU {
			got, err := ftFileUser(c.cat, k.fid, k.uid)
			if err != nil {
				return err.Error()
			}
			if got != w {
				return fmt.Sprintf("fid %d uid %d: database up/down %d/%d, clients owed %d/%d", k.fid, k.uid, got.up, got.down, w.up, w.down)
			}
		}
		return ""
	})
	t.Logf("RESULT database equals the clients' credit to the byte: %d up, %d down (the clients reported %d up; the rest moved between instances, not credited by XBT's first-announce rule)",
		wantUp, wantDown, reportedUp)

	// A scrape of all the torrents reaches one instance, which answers for
	// the others' torrents with the counts they wrote to the database.
	syEventually(t, 20*time.Second, func() string {
		got, who := clusterScrape(t, c, uids[0], files)
		for _, f := range files {
			if got[f.ih] != [2]int{1, perTorrent - 1} {
				return fmt.Sprintf("scrape of %d torrents answered by %s: fid %d has %v, want 1 seeder and %d leechers", len(files), who, f.fid, got[f.ih], perTorrent-1)
			}
		}
		return ""
	})

	// One swarm per torrent: xbt_files counts are the current owner's,
	// all the torrent's peers (the old owners' copies write nothing).
	syEventually(t, 20*time.Second, func() string {
		for _, f := range files {
			var s, l int
			if err := c.cat.db.QueryRow("SELECT seeders, leechers FROM xbt_files WHERE fid = ?", f.fid).Scan(&s, &l); err != nil {
				return err.Error()
			}
			if s != 1 || l != perTorrent-1 {
				return fmt.Sprintf("fid %d: %d seeders %d leechers, want 1 and %d", f.fid, s, l, perTorrent-1)
			}
		}
		return ""
	})
}

// clusterScrape sends one scrape of every torrent in files through HAProxy
// (it reaches the first one's instance) and returns the counts per
// info_hash.
func clusterScrape(t *testing.T, c *cluster, uid uint32, files []ftTorrent) (map[[20]byte][2]int, string) {
	t.Helper()
	q := make([]string, len(files))
	for i, f := range files {
		q[i] = "info_hash=" + url.QueryEscape(string(f.ih[:]))
	}
	body, who := c.get(t, c.baseURL()+"/"+c.passkey(uid, files[0].ih)+"/scrape?"+strings.Join(q, "&"))
	var r struct {
		Files map[string]struct {
			Complete   int `bencode:"complete"`
			Incomplete int `bencode:"incomplete"`
		} `bencode:"files"`
	}
	if err := bencode.DecodeString(body, &r); err != nil {
		t.Fatalf("scrape answer %q: %v", body, err)
	}
	out := map[[20]byte][2]int{}
	for k, v := range r.Files {
		var ih [20]byte
		copy(ih[:], k)
		out[ih] = [2]int{v.Complete, v.Incomplete}
	}
	return out, who
}

// TestClusterLimits: torrents_limit across instances. Each instance
// publishes its users' leeching-torrent counts and adds the others' every
// write_db_interval (1 s here), so a user with torrents_limit 1 who leeches
// on t1 is refused on t2 and t3 once the counts went round, and free again
// when the torrent is stopped. Within one exchange interval the limit is
// per instance: the test measures how many of three simultaneous starts on
// three instances get through. peers_limit and wait_time are per torrent,
// so the torrent's one instance decides them exactly.
func TestClusterLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("starts HAProxy and several trackers")
	}
	c := startCluster(t, 3, clusterOpts{})
	uid := c.cat.addUser(t)
	c.cat.exec(t, "UPDATE xbt_users SET torrents_limit = 1 WHERE uid = ?", uid)
	files := ftTorrents(t, c.cat, "cluster limits", 30)
	gens := &cluGenerations{gen: map[string]int{}}
	byOwner := map[string][]ftTorrent{}
	syEventually(t, 20*time.Second, func() string {
		byOwner = map[string][]ftTorrent{}
		for _, f := range files {
			o := c.ownerOf(t, uid, f.ih)
			byOwner[o] = append(byOwner[o], f)
		}
		if len(byOwner) != 3 || len(byOwner["t1"]) < 2 {
			return fmt.Sprintf("owners %v", byOwner)
		}
		return ""
	})
	peers := map[uint32]*cluPeer{}
	peer := func(f ftTorrent) *cluPeer {
		if p := peers[f.fid]; p != nil {
			return p
		}
		p := &cluPeer{uid: uid, fid: f.fid, ih: f.ih, port: 30000 + len(peers), left: 1 << 20, answeredBy: map[string]int{}}
		copy(p.id[:], fmt.Sprintf("-XL0001-%012d", len(peers)))
		peers[f.fid] = p
		return p
	}
	// leech starts leeching f; "" or the failure.
	leech := func(f ftTorrent, event string) string {
		var why string
		clWait(10*time.Second, func() bool {
			var ok bool
			ok, why = peer(f).announce(c, clusterHTTP, gens, 0, 0, event)
			return ok || strings.Contains(why, "limit")
		})
		return why
	}
	first := []ftTorrent{byOwner["t1"][0], byOwner["t2"][0], byOwner["t3"][0]}
	for _, f := range first {
		peer(f) // made here: the starts below run at once
	}

	// Three starts at once on three instances, before any exchange saw them.
	var wg sync.WaitGroup
	results := make([]string, 3)
	for i, f := range first {
		wg.Go(func() { results[i] = leech(f, "started") })
	}
	wg.Wait()
	through := 0
	for _, r := range results {
		if r == "" {
			through++
		}
	}
	t.Logf("RESULT torrents_limit 1, three simultaneous starts on three instances: %d accepted (the limit is per instance within one exchange interval, write_db_interval)", through)
	for i, f := range first {
		if results[i] == "" {
			if why := leech(f, "stopped"); why != "" {
				t.Fatalf("stopping: %s", why)
			}
		}
	}

	// One torrent on t1: once the counts went round, t2 and t3 refuse.
	syEventually(t, 15*time.Second, func() string {
		if why := leech(first[0], "started"); why != "" {
			return "t1 (the others' stops not seen yet): " + why
		}
		return ""
	})
	if why := leech(byOwner["t1"][1], "started"); !strings.Contains(why, "torrents limit reached") {
		t.Fatalf("a second torrent on t1: %q, want torrents limit reached", why)
	}
	start := time.Now()
	syEventually(t, 15*time.Second, func() string {
		for _, f := range first[1:] {
			if why := leech(f, "started"); !strings.Contains(why, "torrents limit reached") {
				if why == "" {
					leech(f, "stopped")
				}
				return fmt.Sprintf("fid %d on another instance: %q, want torrents limit reached", f.fid, why)
			}
		}
		return ""
	})
	t.Logf("RESULT a torrent leeched on t1 made t2 and t3 refuse a second one after %v", time.Since(start).Round(100*time.Millisecond))

	// Stopped on t1: the others let the user leech again.
	if why := leech(first[0], "stopped"); why != "" {
		t.Fatalf("stopping on t1: %s", why)
	}
	syEventually(t, 15*time.Second, func() string {
		if why := leech(first[2], "started"); why != "" {
			return "t3 after the stop on t1: " + why
		}
		return ""
	})
}
