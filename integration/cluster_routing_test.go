package integration

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// cuEncoding is one client's way of percent-encoding the info_hash bytes
// (what each real client sends: /work/shared/testdata/client-announces.txt).
type cuEncoding struct {
	name string
	raw  func(c byte) bool // bytes sent unescaped
	hex  string            // %XX digits
	plus bool              // a space is sent as '+'
}

func cuAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// cuEncodings: every byte escaped upper case (the most a client may
// escape); aria2 (RFC 3986 unreserved raw, %XX); Transmission (unreserved
// raw, %xx); libtorrent (also ( ) * ! ' raw, %xx); Java clients such as
// BiglyBT/Vuze (URLEncoder: . - * _ raw, a space as '+', %XX).
var cuEncodings = []cuEncoding{
	{name: "all-escaped", raw: func(byte) bool { return false }, hex: "0123456789ABCDEF"},
	{name: "aria2", raw: func(c byte) bool { return cuAlnum(c) || strings.IndexByte("-._~", c) >= 0 }, hex: "0123456789ABCDEF"},
	{name: "transmission", raw: func(c byte) bool { return cuAlnum(c) || strings.IndexByte("-._~", c) >= 0 }, hex: "0123456789abcdef"},
	{name: "libtorrent", raw: func(c byte) bool { return cuAlnum(c) || strings.IndexByte("()*!'~-_.", c) >= 0 }, hex: "0123456789abcdef"},
	{name: "java", raw: func(c byte) bool { return cuAlnum(c) || strings.IndexByte(".-*_", c) >= 0 }, hex: "0123456789ABCDEF", plus: true},
}

func (e cuEncoding) encode(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		switch {
		case e.raw(c):
			s.WriteByte(c)
		case e.plus && c == ' ':
			s.WriteByte('+')
		default:
			s.WriteByte('%')
			s.WriteByte(e.hex[c>>4])
			s.WriteByte(e.hex[c&15])
		}
	}
	return s.String()
}

// cuRoutingHashes: random info_hashes, then ones made to trip a router:
// NUL bytes (first, everywhere but one byte, alternating), 0xff, and bytes
// that some clients send raw and others escape (( ) * ! ' ~ - _ . space +
// and alphanumerics), so that every encoding of them differs.
func cuRoutingHashes(t *testing.T, random int) [][20]byte {
	t.Helper()
	var hs [][20]byte
	rnd := func() [20]byte {
		var h [20]byte
		if _, err := rand.Read(h[:]); err != nil {
			t.Fatal(err)
		}
		return h
	}
	for range random {
		hs = append(hs, rnd())
	}
	for i := range 12 {
		h := rnd()
		h[0] = 0 // leading NUL: a C string would be empty
		hs = append(hs, h)
		var z [20]byte // all NUL but the last byte
		z[19] = byte(i + 1)
		hs = append(hs, z)
		a := rnd() // NUL every other byte
		for j := 0; j < 20; j += 2 {
			a[j] = 0
		}
		hs = append(hs, a)
		f := rnd() // 0xff-heavy, one NUL in the middle
		for j := range 19 {
			if j != 10 {
				f[j] = 0xff
			}
		}
		f[10] = 0
		f[19] = byte(i) // distinct: the catalog's info_hash is unique
		hs = append(hs, f)
		const special = "()*!'~-_. +AZaz09"
		s := rnd()
		for j := range 20 {
			if j%3 != 0 {
				s[j] = special[(i+j)%len(special)]
			}
		}
		hs = append(hs, s)
	}
	return hs
}

// cuAnnounceOK is "" when body is a bencoded announce answer with an
// interval and no failure reason, else what is wrong with it.
func cuAnnounceOK(body string) string {
	if f := syFailure(body); f != "" {
		return "failure reason " + f
	}
	if !strings.HasPrefix(body, "d") || !strings.Contains(body, "8:intervali") {
		return fmt.Sprintf("not an announce answer: %q", body)
	}
	return ""
}

// TestClusterRoutesByDecodedInfoHash: the same announce, its info_hash
// escaped the way each client escapes it, reaches the same instance through
// the shipped haproxy.cfg, and that instance accepts it; the torrents spread
// over the three instances; a scrape of several torrents goes to the first
// one's instance; requests without info_hash all go to one instance.
func TestClusterRoutesByDecodedInfoHash(t *testing.T) {
	requireHAProxy(t)
	cat := newSyCatalog(t)
	hashes := cuRoutingHashes(t, 200)
	for _, ih := range hashes {
		cat.addFile(t, ih)
	}
	uid := cat.addUser(t)
	c := startCluster(t, 3, clusterOpts{catalog: cat})
	started := time.Now()

	// One encoding goes over a single keep-alive connection, as
	// Transmission's and aria2's announces do: HAProxy must still route
	// every request on it by its own info_hash.
	keepAlive := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}}
	defer keepAlive.CloseIdleConnections()

	owner := make([]string, len(hashes))
	perInstance := map[string]int{}
	for n, ih := range hashes {
		pk := c.passkey(uid, ih)
		peerID := fmt.Sprintf("-XT0001-%012d", n)
		got := map[string]string{}
		for k, enc := range cuEncodings {
			u := c.baseURL() + "/" + pk + "/announce?info_hash=" + enc.encode(ih[:]) +
				"&peer_id=" + peerID + "&port=6881&uploaded=0&downloaded=0&left=0&compact=1"
			if k == 0 {
				u += "&event=started"
			}
			hc := clusterHTTP
			if enc.name == "transmission" {
				hc = keepAlive
			}
			body, who := c.getWith(t, hc, u)
			if msg := cuAnnounceOK(body); msg != "" {
				t.Fatalf("info_hash %x as %s (%s) answered by %q: %s", ih, enc.name, enc.encode(ih[:]), who, msg)
			}
			got[enc.name] = who
		}
		first := got[cuEncodings[0].name]
		for _, enc := range cuEncodings {
			if got[enc.name] != first || first == "" {
				t.Errorf("info_hash %x went to different instances by encoding: %v", ih, got)
				break
			}
		}
		owner[n] = first
		perInstance[first]++
	}
	t.Logf("%d info_hashes x %d encodings routed in %s; torrents per instance: %v",
		len(hashes), len(cuEncodings), time.Since(started).Round(time.Millisecond), perInstance)
	if t.Failed() {
		t.FailNow()
	}

	// Not one instance for everything: each has at least 15%.
	for i := 1; i <= c.size(); i++ {
		if got := perInstance[serverName(i)]; got*100 < 15*len(hashes) {
			t.Errorf("instance %s owns %d of %d torrents (< 15%%): %v", serverName(i), got, len(hashes), perInstance)
		}
	}
	// The NUL-laden hashes spread too: were they cut at the first NUL they
	// would all hash alike (the leading-NUL ones as the empty string).
	nulOwners := map[string]bool{}
	for n := 200; n < len(hashes); n++ {
		if hashes[n][0] == 0 {
			nulOwners[owner[n]] = true
		}
	}
	if len(nulOwners) < 2 {
		t.Errorf("every info_hash starting with a NUL byte went to %v: the routing key stops at the NUL", nulOwners)
	}

	// Each announce reached an instance that counted it: its own swarm
	// holds the peer (a scrape straight to the owner shows one seeder).
	for _, n := range []int{0, 1, 200, 201, 202, 203, 204} {
		ih := hashes[n]
		i := c.instanceIndex(owner[n])
		body, _ := c.get(t, c.instanceURL(i)+"/"+c.passkey(uid, ih)+"/scrape?info_hash="+url.QueryEscape(string(ih[:])))
		if !strings.Contains(body, "8:completei1e") {
			t.Errorf("scrape of %x on its owner %s: %q, want complete 1", ih, owner[n], body)
		}
	}

	// A scrape of several torrents goes to the first one's instance.
	byOwner := map[string][20]byte{}
	for n, ih := range hashes {
		if _, ok := byOwner[owner[n]]; !ok {
			byOwner[owner[n]] = ih
		}
	}
	for first, ih := range byOwner {
		q := "info_hash=" + cuEncodings[3].encode(ih[:])
		for other, oh := range byOwner {
			if other != first {
				q += "&info_hash=" + cuEncodings[1].encode(oh[:])
			}
		}
		body, who := c.get(t, c.baseURL()+"/"+c.passkey(uid, ih)+"/scrape?"+q)
		if who != first {
			t.Errorf("multi-hash scrape starting with %x (owner %s) answered by %s", ih, first, who)
		}
		if !strings.Contains(body, "5:files") {
			t.Errorf("multi-hash scrape answer: %q", body)
		}
	}

	// No info_hash: /statistics, /metrics, a full scrape, an announce
	// without one all go to the same instance, every time.
	noHash := map[string]int{}
	for range 4 {
		for _, path := range []string{"/statistics", "/metrics", "/" + c.passkey(uid, hashes[0]) + "/scrape", "/" + c.passkey(uid, hashes[0]) + "/announce?peer_id=x"} {
			resp, err := clusterHTTP.Get(c.baseURL() + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			noHash[answeredBy(resp)]++
		}
	}
	if len(noHash) != 1 || noHash[""] != 0 {
		t.Errorf("requests without info_hash went to %v, want one instance", noHash)
	}
	t.Logf("requests without info_hash: %v", noHash)
}

// TestClusterInstanceDownAndBack: stopping an instance moves its torrents,
// and only its, to the others; started again it gets exactly them back.
// The same with HAProxy's runtime API (disable/enable server). Exercises
// the harness's stopInstance/startInstance/disableServer/enableServer.
func TestClusterInstanceDownAndBack(t *testing.T) {
	requireHAProxy(t)
	cat := newSyCatalog(t)
	hashes := cuRoutingHashes(t, 60)
	uid := cat.addUser(t)
	for _, ih := range hashes {
		cat.addFile(t, ih)
	}
	c := startCluster(t, 3, clusterOpts{catalog: cat})
	owners := func() []string {
		o := make([]string, len(hashes))
		for n, ih := range hashes {
			o[n] = c.ownerOf(t, uid, ih)
		}
		return o
	}
	before := owners()
	check := func(step, gone string) {
		t.Helper()
		now := owners()
		moved := 0
		for n := range hashes {
			switch {
			case before[n] == gone && now[n] == gone:
				t.Errorf("%s: %x still routed to %s", step, hashes[n], gone)
			case before[n] == gone:
				moved++
			case now[n] != before[n]:
				t.Errorf("%s: %x moved from %s to %s, though %s was not the one taken out", step, hashes[n], before[n], now[n], before[n])
			}
		}
		t.Logf("%s: %d torrents moved off %s", step, moved, gone)
	}
	back := func(step string) {
		t.Helper()
		now := owners()
		for n := range hashes {
			if now[n] != before[n] {
				t.Errorf("%s: %x routed to %s, was %s before", step, hashes[n], now[n], before[n])
			}
		}
	}

	start := time.Now()
	c.stopInstance(2)
	t.Logf("HAProxy saw t2 down %s after SIGTERM", time.Since(start).Round(10*time.Millisecond))
	check("t2 stopped", "t2")
	// A stopped instance's torrents are answered by the others.
	for n, ih := range hashes {
		if before[n] == "t2" {
			body, who := c.get(t, c.announceURL(uid, ih, url.Values{"peer_id": {"-XT0001-failover0001"}, "port": {"6881"},
				"uploaded": {"0"}, "downloaded": {"0"}, "left": {"0"}, "event": {"started"}}))
			if msg := cuAnnounceOK(body); msg != "" || who == "t2" || who == "" {
				t.Errorf("announce of a t2 torrent with t2 down: answered by %q: %s", who, msg)
			}
			break
		}
	}
	start = time.Now()
	c.startInstance(2)
	t.Logf("HAProxy saw t2 up %s after its start", time.Since(start).Round(10*time.Millisecond))
	back("t2 started again")

	c.disableServer("t3")
	check("t3 disabled", "t3")
	c.enableServer("t3")
	back("t3 enabled again")
}
