package udpfront

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	cf "github.com/xbt-tracker/xbt-tracker/internal/conformance"
	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// env is a tracker holding the conformance fixtures (users 1 and 2,
// torrents H1..H3), a UDP server for it with a fake connection-id clock,
// and clients from 127.0.0.1 and [::1].
type env struct {
	t     *testing.T
	trk   *tracker.Tracker
	ts    *testServer
	srv   *Server
	clock *fakeClock
	c4    *udpClient
	c6    *udpClient // nil without IPv6 loopback
}

func newEnv(t *testing.T, adjust func(*tracker.Settings)) *env {
	t.Helper()
	s := cf.BaseSettings()
	if adjust != nil {
		adjust(&s)
	}
	trk := cf.NewTracker(s, &cf.Clock{})
	clock := newFakeClock()
	ts := startServer(t, trk, Config{Now: clock.Now, Workers: 2})
	e := &env{t: t, trk: trk, ts: ts, srv: ts.srv, clock: clock, c4: dial(t, ts.addr4)}
	e.c4.connect()
	if ts.addr6.IsValid() {
		e.c6 = dial(t, ts.addr6)
		e.c6.connect()
	}
	return e
}

func (e *env) need6() {
	e.t.Helper()
	if e.c6 == nil {
		e.t.Skip("no IPv6 loopback")
	}
}

// pk is uid's passkey for h.
func (e *env) pk(uid uint32, h tracker.InfoHash) string {
	e.t.Helper()
	u, ok := e.trk.User(uid)
	if !ok {
		e.t.Fatalf("no user %d", uid)
	}
	return passkeyOf(u, h)
}

// req is peer n (port 10000+n) of user uid on h with its passkey path;
// left > 0 is a leecher.
func (e *env) req(uid uint32, h tracker.InfoHash, n int, left int64) ann {
	a := ann{InfoHash: h, PeerID: cf.PeerID(n), Port: uint16(10000 + n), Left: left, NumWant: -1}
	if uid != 0 {
		a = a.withPath("/" + e.pk(uid, h) + "/announce")
	}
	return a
}

func mustOK(t *testing.T, a answer) answer {
	t.Helper()
	if a.Action != ActionAnnounce && a.Action != ActionScrape {
		t.Fatalf("answer action %d, error %q", a.Action, a.Error)
	}
	return a
}

func wantError(t *testing.T, a answer, msg tracker.Failure) {
	t.Helper()
	if a.Action != ActionError || a.Error != string(msg) {
		t.Errorf("answer action %d error %q, want error packet %q (raw %x)", a.Action, a.Error, msg, a.raw)
	}
}

func wantPeers(t *testing.T, a answer, want ...netip.AddrPort) {
	t.Helper()
	got := slices.Clone(a.Peers)
	slices.SortFunc(got, netip.AddrPort.Compare)
	slices.SortFunc(want, netip.AddrPort.Compare)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("peers %v, want %v", got, want)
	}
}

func ap4(port int) netip.AddrPort { return netip.AddrPortFrom(cf.Addr4, uint16(port)) }
func ap6(port int) netip.AddrPort { return netip.AddrPortFrom(cf.Addr6, uint16(port)) }

func TestConnect(t *testing.T) {
	e := newEnv(t, nil)
	for _, c := range []*udpClient{e.c4, e.c6} {
		if c == nil {
			continue
		}
		tid := c.nextTID()
		ans, err := c.roundTrip(connectPacket(tid), tid)
		if err != nil {
			t.Fatal(err)
		}
		if len(ans) != 16 || binary.BigEndian.Uint32(ans[0:4]) != ActionConnect ||
			binary.BigEndian.Uint32(ans[4:8]) != tid {
			t.Fatalf("connect answer %x", ans)
		}
		// The same address and port in the same window: the same id.
		if id := binary.BigEndian.Uint64(ans[8:16]); id != c.cid || id == ProtocolID {
			t.Errorf("second connect gave %x, first %x", id, c.cid)
		}
		// Trailing bytes after a connect are ignored.
		tid = c.nextTID()
		if _, err := c.roundTrip(append(connectPacket(tid), 1, 2, 3), tid); err != nil {
			t.Error(err)
		}
	}
	other := dial(t, e.ts.addr4)
	if id := other.connect(); id == e.c4.cid {
		t.Errorf("two source ports got the same connection id %x", id)
	}
	if got := e.srv.Stats().Connects; got < 4 {
		t.Errorf("Stats().Connects = %d", got)
	}
}

func TestAnnounceWithPasskey(t *testing.T) {
	e := newEnv(t, nil)
	r := e.req(1, cf.H1, 1, 0)
	r.Event = 2 // started
	a := mustOK(t, e.c4.announce(r))
	if a.Interval != cf.Interval || a.Seeders != 1 || a.Leechers != 0 || len(a.Peers) != 0 {
		t.Errorf("first seeder: %+v", a)
	}
	r2 := e.req(2, cf.H1, 2, 1000)
	r2.Event, r2.Downloaded, r2.Uploaded = 2, 5, 7
	a = mustOK(t, e.c4.announce(r2))
	if a.Seeders != 1 || a.Leechers != 1 {
		t.Errorf("leecher: %+v", a)
	}
	wantPeers(t, a, ap4(10001))
	if len(a.raw) != 20+6 {
		t.Errorf("answer of %d bytes, want 26", len(a.raw))
	}
	// Accounting reaches the ledger: a re-announce is credited.
	r2.Event, r2.Downloaded, r2.Uploaded, r2.Left = 0, 505, 1007, 500
	mustOK(t, e.c4.announce(r2))
	b := e.trk.Drain()
	if d := b.Users[2]; d.Uploaded != 1000 || d.Downloaded != 500 {
		t.Errorf("user 2 delta %+v, want up 1000 down 500", d)
	}
	fu := b.FileUsers[tracker.FileUserKey{Fid: 1, UID: 2}]
	if !fu.Active || fu.Left != 500 || fu.Announced == 0 {
		t.Errorf("file-user row %+v", fu)
	}
	// completed, then stopped: no peers, counted once.
	r2.Event, r2.Left = 1, 0
	mustOK(t, e.c4.announce(r2))
	r2.Event = 3
	a = mustOK(t, e.c4.announce(r2))
	if a.Seeders != 1 || a.Leechers != 0 || len(a.Peers) != 0 {
		t.Errorf("after stopped: %+v", a)
	}
	if f := e.trk.Drain().Files[1]; f.Completed != 1 {
		t.Errorf("file delta %+v, want completed 1", f)
	}
	// The IP field is ignored: the peer is where the packet came from.
	r3 := e.req(1, cf.H2, 3, 10)
	r3.IP = [4]byte{10, 9, 8, 7}
	mustOK(t, e.c4.announce(r3))
	a = mustOK(t, e.c4.announce(e.req(2, cf.H2, 4, 10)))
	wantPeers(t, a, ap4(10003))
}

func TestAnnounceNumWant(t *testing.T) {
	e := newEnv(t, func(s *tracker.Settings) { s.DefaultNumWant, s.MaxNumWant = 3, 5 })
	for n := 1; n <= 8; n++ {
		mustOK(t, e.c4.announce(e.req(1, cf.H1, n, 0)))
	}
	for _, c := range []struct{ numwant, want int32 }{{-1, 3}, {-7, 3}, {0, 0}, {2, 2}, {1000, 5}} {
		r := e.req(2, cf.H1, 100, 10)
		r.NumWant = c.numwant
		if a := mustOK(t, e.c4.announce(r)); int32(len(a.Peers)) != c.want {
			t.Errorf("num_want %d: %d peers, want %d", c.numwant, len(a.Peers), c.want)
		}
	}
}

func TestAnnounceWithoutPasskey(t *testing.T) {
	e := newEnv(t, nil)
	r := e.req(0, cf.H1, 1, 0) // no URL data at all
	wantError(t, e.c4.announce(r), tracker.ErrUnregisteredTorrentPass)
	wantError(t, e.c4.announce(r.withPath("/announce")), tracker.ErrUnregisteredTorrentPass)
	wantError(t, e.c4.announce(r.withPath("/00000001ffffffffffffffffffffffff/announce")), tracker.ErrUnregisteredTorrentPass)
	// user 1's passkey for H2 does not open H1
	wantError(t, e.c4.announce(r.withPath("/"+e.pk(1, cf.H2)+"/announce")), tracker.ErrUnregisteredTorrentPass)
	if n := e.srv.counters.packets[actAnnounce][resFailure].Load(); n != 4 {
		t.Errorf("%d announces counted as failures, want 4", n)
	}

	s := e.trk.Settings()
	s.AnonymousAnnounce = true
	e.trk.SetSettings(s)
	mustOK(t, e.c4.announce(r))
	a := mustOK(t, e.c4.announce(e.req(0, cf.H1, 2, 10).withPath("/announce")))
	wantPeers(t, a, ap4(10001))
}

// Every failure reason of the engine arrives as a BEP 15 error packet with
// XBT's text, in XBT's order.
func TestFailuresAreErrorPackets(t *testing.T) {
	t.Run("offline message", func(t *testing.T) {
		e := newEnv(t, func(s *tracker.Settings) { s.OfflineMessage = "tracker offline for maintenance" })
		wantError(t, e.c4.announce(e.req(1, cf.H1, 1, 0)), "tracker offline for maintenance")
	})
	e := newEnv(t, nil)
	e.trk.UpsertUser(tracker.User{UID: 3, CanLeech: false})
	e.trk.UpsertUser(tracker.User{UID: 4, CanLeech: true, WaitTime: 1 << 30})
	e.trk.UpsertUser(tracker.User{UID: 5, CanLeech: true, PeersLimit: 1})
	e.trk.UpsertUser(tracker.User{UID: 6, CanLeech: true, TorrentsLimit: 1})
	wantError(t, e.c4.announce(e.req(1, cf.Unknown, 1, 10)), tracker.ErrUnregisteredTorrent)
	wantError(t, e.c4.announce(e.req(3, cf.H1, 1, 10)), tracker.ErrCanNotLeech)
	wantError(t, e.c4.announce(e.req(4, cf.H1, 1, 10)), tracker.ErrWaitTime)
	mustOK(t, e.c4.announce(e.req(5, cf.H1, 1, 10)))
	wantError(t, e.c4.announce(e.req(5, cf.H1, 2, 10)), tracker.ErrPeersLimitReached)
	mustOK(t, e.c4.announce(e.req(6, cf.H1, 3, 10)))
	wantError(t, e.c4.announce(e.req(6, cf.H2, 4, 10)), tracker.ErrTorrentsLimitReached)

	// Unparsable announces with a valid connection id: an error packet
	// naming the problem, worded as over HTTP.
	r := e.req(1, cf.H1, 7, 10)
	r.Event = 4
	wantError(t, e.c4.announce(r), "invalid event")
	r = e.req(1, cf.H1, 7, -1)
	wantError(t, e.c4.announce(r), "invalid left")
	r = e.req(1, cf.H1, 7, 10)
	r.Uploaded = -5
	wantError(t, e.c4.announce(r), "invalid uploaded")
	r = e.req(1, cf.H1, 7, 10)
	r.Downloaded = -5
	wantError(t, e.c4.announce(r), "invalid downloaded")
	r = e.req(1, cf.H1, 7, 10)
	r.Options = append(r.Options, optURLData, 200, 'x') // runs past the end
	wantError(t, e.c4.announce(r), tracker.ErrMalformedOptions)
	tid := e.c4.nextTID()
	ans, err := e.c4.roundTrip(announcePacket(e.c4.cid, tid, e.req(1, cf.H1, 7, 10))[:97], tid)
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, decode(t, ans, 6), tracker.ErrTruncatedAnnounce)
	tid = e.c4.nextTID()
	ans, err = e.c4.roundTrip(scrapePacket(e.c4.cid, tid), tid)
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, decode(t, ans, 6), "missing info_hash")
	if n := e.srv.counters.packets[actAnnounce][resBadRequest].Load(); n != 6 {
		t.Errorf("%d announces counted as bad requests, want 6", n)
	}
}

func TestDeniedHostGetsNothing(t *testing.T) {
	e := newEnv(t, nil)
	e.trk.SetDenyList(tracker.NewDenyList([][2]uint32{{0x7f000001, 0x7f000001}}, nil))
	e.c4.expectDrop(e.srv, connectPacket(1), reasonDenied)
	e.c4.expectDrop(e.srv, announcePacket(e.c4.cid, 2, e.req(1, cf.H1, 1, 0)), reasonDenied)
	e.trk.SetDenyList(nil)
	mustOK(t, e.c4.announce(e.req(1, cf.H1, 1, 0)))
}

// BEP 15: an IPv6 requester gets 18-byte IPv6 peers, an IPv4 requester
// 6-byte IPv4 peers, each from its own family only.
func TestIPv6Peers(t *testing.T) {
	e := newEnv(t, nil)
	e.need6()
	mustOK(t, e.c6.announce(e.req(1, cf.H1, 1, 0))) // an IPv6 seeder
	mustOK(t, e.c4.announce(e.req(1, cf.H1, 3, 0))) // an IPv4 seeder
	a := mustOK(t, e.c6.announce(e.req(2, cf.H1, 2, 10)))
	if a.Seeders != 2 || a.Leechers != 1 {
		t.Errorf("counts %+v", a)
	}
	wantPeers(t, a, ap6(10001))
	if len(a.raw) != 20+18 {
		t.Errorf("IPv6 answer of %d bytes, want 38", len(a.raw))
	}
	a = mustOK(t, e.c4.announce(e.req(2, cf.H1, 4, 10)))
	wantPeers(t, a, ap4(10003))
	if len(a.raw) != 20+6 {
		t.Errorf("IPv4 answer of %d bytes, want 26", len(a.raw))
	}
}

func TestConnectionIDs(t *testing.T) {
	e := newEnv(t, nil)
	good := e.req(1, cf.H1, 1, 0)
	mustOK(t, e.c4.announce(good))

	t.Run("forged", func(t *testing.T) {
		for _, cid := range []uint64{0, ProtocolID, e.c4.cid ^ 1, e.c4.cid ^ 1<<63} {
			e.c4.expectDrop(e.srv, announcePacket(cid, 9, good), reasonConnectionID)
			e.c4.expectDrop(e.srv, scrapePacket(cid, 9, cf.H1), reasonConnectionID)
		}
	})
	t.Run("replayed from another port", func(t *testing.T) {
		other := dial(t, e.ts.addr4)
		other.expectDrop(e.srv, announcePacket(e.c4.cid, 9, good), reasonConnectionID)
		other.connect() // its own id works
		mustOK(t, other.announce(good))
	})
	t.Run("replayed from another address", func(t *testing.T) {
		e.need6()
		e.c6.expectDrop(e.srv, announcePacket(e.c4.cid, 9, good), reasonConnectionID)
		if e.c6.cid == e.c4.cid {
			t.Error("IPv4 and IPv6 clients share an id")
		}
	})
	t.Run("another server's key", func(t *testing.T) {
		other := newConnIDs(nil, DefaultConnIDWindow, e.clock.Now)
		id := other.issue(e.c4.localAddr())
		e.c4.expectDrop(e.srv, announcePacket(id, 9, good), reasonConnectionID)
	})
	t.Run("expiry", func(t *testing.T) {
		// Issued early in a window (the fake clock starts 30 s into one):
		// valid through the next window, dead after it.
		c := dial(t, e.ts.addr4)
		c.connect()
		e.clock.Advance(DefaultConnIDWindow) // next window
		mustOK(t, c.announce(good))
		e.clock.Advance(DefaultConnIDWindow - 31*time.Second) // still the next window
		mustOK(t, c.announce(good))
		e.clock.Advance(time.Second) // the window after: expired
		c.expectDrop(e.srv, announcePacket(c.cid, 9, good), reasonConnectionID)
		c.connect()
		mustOK(t, c.announce(good))
	})
}

func TestMalformedPackets(t *testing.T) {
	e := newEnv(t, nil)
	c := e.c4
	valid := announcePacket(c.cid, 1, e.req(1, cf.H1, 1, 0))
	for n := range HeaderSize {
		c.expectDrop(e.srv, valid[:n], reasonShort)
	}
	c.expectDrop(e.srv, make([]byte, DefaultMaxPacket+1), reasonOversized)
	big := scrapePacket(c.cid, 1, make([]tracker.InfoHash, 100)...)
	c.expectDrop(e.srv, big, reasonOversized)
	bad := slices.Clone(valid)
	binary.BigEndian.PutUint32(bad[8:], 4) // unknown action
	c.expectDrop(e.srv, bad, reasonUnknownAction)
	binary.BigEndian.PutUint32(bad[8:], ActionError) // a client sending "error"
	c.expectDrop(e.srv, bad, reasonUnknownAction)
	bad = connectPacket(1)
	bad[7] ^= 1 // wrong protocol id
	c.expectDrop(e.srv, bad, reasonProtocolID)
	// Truncated with a bad connection id: nothing at all.
	bad = announcePacket(c.cid^1, 1, e.req(1, cf.H1, 1, 0))[:60]
	c.expectDrop(e.srv, bad, reasonConnectionID)
	// A packet of exactly MaxPacket is read (a 74-hash scrape).
	largest := scrapePacket(c.cid, 1, make([]tracker.InfoHash, MaxScrapeHashes)...)
	if len(largest) != DefaultMaxPacket {
		t.Fatalf("74-hash scrape is %d bytes", len(largest))
	}
	ans, err := c.roundTrip(largest, 1)
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, decode(t, ans, 6), tracker.ErrUnregisteredTorrentPass)
	// The server still works.
	mustOK(t, c.announce(e.req(1, cf.H1, 1, 0)))
}

func TestScrape(t *testing.T) {
	e := newEnv(t, nil)
	mustOK(t, e.c4.announce(e.req(1, cf.H1, 1, 0)))
	mustOK(t, e.c4.announce(e.req(2, cf.H1, 2, 10)))
	r := e.req(2, cf.H2, 3, 0)
	r.Event = 1 // completed (with nothing left: a completion)
	mustOK(t, e.c4.announce(r))
	// No passkey can travel in a UDP scrape: anonymous_scrape decides.
	wantError(t, e.c4.scrape(cf.H1), tracker.ErrUnregisteredTorrentPass)
	s := e.trk.Settings()
	s.AnonymousScrape = true
	e.trk.SetSettings(s)
	a := mustOK(t, e.c4.scrape(cf.H2, cf.Unknown, cf.H1, cf.H3, cf.H1))
	want := [][3]uint32{{1, 1, 0}, {0, 0, 0}, {1, 0, 1}, {0, 0, 0}, {1, 0, 1}}
	if fmt.Sprint(a.Scrape) != fmt.Sprint(want) {
		t.Errorf("scrape %v, want %v (seeders, completed, leechers; in request order)", a.Scrape, want)
	}
	if e.c6 != nil {
		a = mustOK(t, e.c6.scrape(cf.H1))
		if fmt.Sprint(a.Scrape) != "[[1 0 1]]" {
			t.Errorf("IPv6 scrape %v", a.Scrape)
		}
	}
	if st := e.srv.Stats(); st.Scrapes != 3 {
		t.Errorf("Stats %+v", st)
	}
}

// BEP 41 option lists as clients may send them.
func TestURLDataOptions(t *testing.T) {
	e := newEnv(t, nil)
	path := "/" + e.pk(1, cf.H1) + "/announce"
	long := path + "?" + strings.Repeat("x", 400) // several URLData options
	cases := []struct {
		name string
		opts []byte
		ok   bool
	}{
		{"one URLData (libtorrent)", urlDataOption(path), true},
		{"with EndOfOptions", append(urlDataOption(path), optEndOfOptions), true},
		{"NOPs first", append([]byte{optNOP, optNOP}, urlDataOption(path)...), true},
		{"split in three", slices.Concat([]byte{optURLData, 5}, []byte(path[:5]), []byte{optNOP, optURLData, 30}, []byte(path[5:35]),
			[]byte{optURLData, byte(len(path) - 35)}, []byte(path[35:])), true},
		{"query string", urlDataOption(path + "?x=1"), true},
		{"long query in many options", urlDataOption(long), true},
		{"unknown option skipped", append([]byte{0x7f, 3, 'a', 'b', 'c'}, urlDataOption(path)...), true},
		{"bytes after EndOfOptions ignored", append(append(urlDataOption(path), optEndOfOptions), 0x02, 0xff), true},
		{"URLData after EndOfOptions ignored", append([]byte{optEndOfOptions}, urlDataOption(path)...), false},
		{"empty URLData", []byte{optURLData, 0}, false},
		{"no passkey segment", urlDataOption("/announce/" + e.pk(1, cf.H1)), false},
		{"passkey too long", urlDataOption("/" + e.pk(1, cf.H1) + "0/announce"), false},
	}
	for i, c := range cases {
		r := e.req(0, cf.H1, i, 0)
		r.Options = c.opts
		a := e.c4.announce(r)
		if c.ok {
			if a.Action != ActionAnnounce {
				t.Errorf("%s: %q", c.name, a.Error)
			}
		} else {
			wantError(t, a, tracker.ErrUnregisteredTorrentPass)
		}
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, nil)
	mustOK(t, e.c4.announce(e.req(1, cf.H1, 1, 0)))
	wantError(t, e.c4.announce(e.req(1, cf.Unknown, 1, 0)), tracker.ErrUnregisteredTorrent)
	e.c4.expectDrop(e.srv, []byte{1, 2, 3}, reasonShort)
	e.c4.expectDrop(e.srv, announcePacket(0, 1, e.req(1, cf.H1, 1, 0)), reasonConnectionID)

	reg := prometheus.NewRegistry()
	reg.MustRegister(e.srv.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			got[mf.GetName()+labels(m)] = m.GetCounter().GetValue()
		}
	}
	connects := 1.0
	if e.c6 != nil {
		connects = 2
	}
	for k, v := range map[string]float64{
		"xbt_udp_packets_total{action=connect,result=ok}":           connects,
		"xbt_udp_packets_total{action=announce,result=ok}":          1,
		"xbt_udp_packets_total{action=announce,result=failure}":     1,
		"xbt_udp_packets_total{action=announce,result=dropped}":     1,
		"xbt_udp_packets_total{action=other,result=dropped}":        1,
		"xbt_udp_packets_total{action=scrape,result=ok}":            0,
		"xbt_udp_errors_total{reason=short}":                        1,
		"xbt_udp_errors_total{reason=connection_id}":                1,
		"xbt_udp_errors_total{reason=panic}":                        0,
		"xbt_udp_packets_total{action=announce,result=bad_request}": 0,
	} {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if n := len(got); n != int(numActions)*int(numResults)+int(numReasons) {
		t.Errorf("%d series", n)
	}
}

func labels(m *dto.Metric) string {
	var parts []string
	for _, l := range m.GetLabel() {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// A panic while serving a packet is recovered and counted; the server
// goes on.
func TestPanicRecovered(t *testing.T) {
	srv := New(nil, Config{}) // no tracker: the deny-list check panics
	b := srv.newBufs()
	if out := srv.handlePacket(b, connectPacket(1), netip.MustParseAddrPort("127.0.0.1:1")); out != nil {
		t.Errorf("answered %x", out)
	}
	if n := srv.counters.errors[reasonPanic].Load(); n != 1 {
		t.Errorf("%d panics counted", n)
	}

	// Over a socket: the worker survives.
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv = New(nil, Config{Workers: 1})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(pc) }()
	c := dial(t, pc.LocalAddr().(*net.UDPAddr).AddrPort())
	c.expectDrop(srv, connectPacket(1), reasonPanic)
	c.expectDrop(srv, connectPacket(2), reasonPanic)
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
}

func TestShutdown(t *testing.T) {
	trk := cf.NewTracker(cf.BaseSettings(), &cf.Clock{})
	srv := New(trk, Config{Workers: 3})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(pc) }()
	c := dial(t, pc.LocalAddr().(*net.UDPAddr).AddrPort())
	c.connect()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	// The socket is closed.
	if _, err := pc.WriteTo([]byte{0}, pc.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("PacketConn still open: %v", err)
	}
	pc2, _ := net.ListenPacket("udp", "127.0.0.1:0")
	defer pc2.Close()
	if err := srv.Serve(pc2); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Shutdown: %v", err)
	}
}

// A PacketConn that is not a *net.UDPConn works too (the allocating path).
type wrappedConn struct{ net.PacketConn }

func TestServeGenericPacketConn(t *testing.T) {
	trk := cf.NewTracker(cf.BaseSettings(), &cf.Clock{})
	ts := &testServer{srv: New(trk, Config{Workers: 1})}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ts.srv.Serve(wrappedConn{pc}) }()
	defer func() {
		ts.srv.Shutdown(context.Background())
		<-done
	}()
	c := dial(t, pc.LocalAddr().(*net.UDPAddr).AddrPort())
	c.connect()
	a := ann{InfoHash: cf.H1, PeerID: cf.PeerID(1), Port: 1, NumWant: -1}
	u, _ := trk.User(1)
	mustOK(t, c.announce(a.withPath("/"+passkeyOf(u, cf.H1)+"/announce")))
}

// A burst of connects sent before any answer is read arrives in batches
// (recvmmsg); every one is answered once, to its own transaction id.
func TestBurstAnsweredOnce(t *testing.T) {
	e := newEnv(t, nil)
	c := dial(t, e.ts.addr4)
	const n = 64 // well within a default socket buffer: none may be lost
	for range n {
		tid := c.nextTID()
		c.send(connectPacket(tid))
	}
	seen := map[uint32]bool{}
	for len(seen) < n {
		ans := c.recv(5 * time.Second)
		if ans == nil {
			t.Fatalf("%d of %d connects answered", len(seen), n)
		}
		tid := binary.BigEndian.Uint32(ans[4:8])
		if len(ans) != 16 || binary.BigEndian.Uint32(ans[0:4]) != ActionConnect || seen[tid] {
			t.Fatalf("answer %x (tid %d seen before: %v)", ans, tid, seen[tid])
		}
		seen[tid] = true
	}
	if ans := c.recv(200 * time.Millisecond); ans != nil {
		t.Fatalf("an extra answer %x", ans)
	}
}
