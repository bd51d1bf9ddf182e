package conformance

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// Req returns a compact, event-less announce of peer n (peer id PeerID(n),
// port 10000+n) of user uid on torrent h, with its derived passkey (uid 0:
// no passkey). left > 0 makes it a leecher.
func (e *Env) Req(uid uint32, h tracker.InfoHash, n int, left uint64) AnnounceRequest {
	r := AnnounceRequest{InfoHash: h, PeerID: PeerID(n), Port: uint16(10000 + n), Left: left}
	if uid != 0 {
		r.Passkey = e.PK(uid, h)
	}
	return r
}

// ap is 127.0.0.1:port.
func ap(port int) netip.AddrPort { return netip.AddrPortFrom(Addr4, uint16(port)) }

// ap6 is [::1]:port.
func ap6(port int) netip.AddrPort { return netip.AddrPortFrom(Addr6, uint16(port)) }

func (e *Env) wantPeers(a Answer, want ...netip.AddrPort) {
	e.T.Helper()
	got := make([]netip.AddrPort, len(a.Peers))
	for i, p := range a.Peers {
		got[i] = p.Addr
	}
	if fmt.Sprint(got) != fmt.Sprint(sortedAddrs(want)) {
		e.T.Errorf("peers %v, want %v", got, sortedAddrs(want))
	}
}

func sortedAddrs(a []netip.AddrPort) []netip.AddrPort {
	out := append([]netip.AddrPort(nil), a...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j].Compare(out[i]) < 0 {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func (e *Env) wantCounts(a Answer, complete, incomplete int64) {
	e.T.Helper()
	if a.Complete != complete || a.Incomplete != incomplete {
		e.T.Errorf("complete/incomplete %d/%d, want %d/%d", a.Complete, a.Incomplete, complete, incomplete)
	}
}

func (e *Env) wantFile(files map[tracker.InfoHash]FileStats, h tracker.InfoHash, want FileStats) {
	e.T.Helper()
	got, ok := files[h]
	if !ok {
		e.T.Errorf("scrape lacks %x", h)
	} else if got != want {
		e.T.Errorf("scrape %x: %+v, want %+v", h, got, want)
	}
}

// badPasskey has user 1's uid prefix and a digest that verifies nowhere.
const badPasskey = "00000001ffffffffffffffffffffffff"

// Cases is the table Run runs.
var Cases = []Case{
	{
		Name: "announce/first peer: counts, intervals, empty peer list",
		Run: func(e *Env) {
			r := e.Req(1, H1, 1, 100)
			r.Event = tracker.EventStarted
			a := e.MustAnnounce(r)
			e.wantCounts(a, 0, 1)
			if a.Interval != Interval || a.MinInterval != Interval {
				e.T.Errorf("interval/min interval %d/%d, want %d", a.Interval, a.MinInterval, Interval)
			}
			e.wantPeers(a)
		},
	},
	{
		Name: "announce/a leecher gets the seeder and never itself",
		Run: func(e *Env) {
			e.MustAnnounce(e.Req(1, H1, 1, 0))
			a := e.MustAnnounce(e.Req(2, H1, 2, 100))
			e.wantCounts(a, 1, 1)
			e.wantPeers(a, ap(10001))
			a = e.MustAnnounce(e.Req(1, H1, 1, 0))
			e.wantPeers(a, ap(10002))
		},
	},
	{
		Name: "announce/a seeder gets no seeders",
		Run: func(e *Env) {
			e.MustAnnounce(e.Req(1, H1, 1, 0))
			e.MustAnnounce(e.Req(2, H1, 2, 0))
			e.MustAnnounce(e.Req(2, H1, 3, 50))
			a := e.MustAnnounce(e.Req(1, H1, 1, 0))
			e.wantCounts(a, 2, 1)
			e.wantPeers(a, ap(10003))
			a = e.MustAnnounce(e.Req(2, H1, 3, 50)) // the leecher gets both seeders
			e.wantPeers(a, ap(10001), ap(10002))
		},
	},
	{
		Name: "announce/stopped gets no peers and leaves the swarm",
		Run: func(e *Env) {
			e.MustAnnounce(e.Req(1, H1, 1, 0))
			e.MustAnnounce(e.Req(2, H1, 2, 100))
			r := e.Req(2, H1, 2, 100)
			r.Event = tracker.EventStopped
			r.NumWant = Want(0)
			a := e.MustAnnounce(r)
			e.wantCounts(a, 1, 0)
			e.wantPeers(a)
			r.Event, r.NumWant = tracker.EventStopped, nil // even when asking for peers
			e.wantPeers(e.MustAnnounce(r))
			if e.Client.Supports(FeatureScrapePasskey) {
				files := e.ScrapeFiles(ScrapeRequest{Passkey: e.PK(1, H1), InfoHashes: []tracker.InfoHash{H1}})
				e.wantFile(files, H1, FileStats{Complete: 1})
			}
		},
	},
	{
		Name: "announce/numwant: honoured, defaulted, zero, clamped",
		Settings: func(s *tracker.Settings) {
			s.DefaultNumWant = 4
			s.MaxNumWant = 5
		},
		Run: func(e *Env) {
			for n := 1; n <= 7; n++ {
				e.MustAnnounce(e.Req(1, H1, n, 0))
			}
			cases := []struct {
				numwant *int
				want    int
			}{{Want(2), 2}, {nil, 4}, {Want(0), 0}, {Want(100), 5}, {Want(-1), 4}}
			for _, c := range cases {
				r := e.Req(2, H1, 100, 10)
				r.NumWant = c.numwant
				a := e.MustAnnounce(r)
				if len(a.Peers) != c.want {
					e.T.Errorf("numwant %v: %d peers, want %d", fmtWant(c.numwant), len(a.Peers), c.want)
				}
				seen := map[netip.AddrPort]bool{}
				for _, p := range a.Peers {
					if seen[p.Addr] || p.Addr.Port() == 10100 {
						e.T.Errorf("numwant %v: peer %v repeated or self", fmtWant(c.numwant), p.Addr)
					}
					seen[p.Addr] = true
				}
			}
		},
	},
	{
		Name:  "announce/dict form carries peer ids",
		Needs: []Feature{FeatureDictPeers},
		Run: func(e *Env) {
			e.MustAnnounce(e.Req(1, H1, 1, 0))
			r := e.Req(2, H1, 2, 10)
			r.Dict = true
			a := e.MustAnnounce(r)
			e.wantPeers(a, ap(10001))
			if id := PeerID(1); len(a.Peers) == 1 && a.Peers[0].ID != string(id[:]) {
				e.T.Errorf("peer id %q, want %q", a.Peers[0].ID, PeerID(1))
			}
		},
	},
	{
		Name:  "announce/dict form with no_peer_id",
		Needs: []Feature{FeatureDictPeers},
		Run: func(e *Env) {
			e.MustAnnounce(e.Req(1, H1, 1, 0))
			r := e.Req(2, H1, 2, 10)
			r.Dict, r.NoPeerID = true, true
			a := e.MustAnnounce(r)
			e.wantPeers(a, ap(10001))
			if len(a.Peers) == 1 && a.Peers[0].ID != "" {
				e.T.Errorf("peer id %q sent despite no_peer_id", a.Peers[0].ID)
			}
		},
	},
	{
		Name:  "announce/an IPv6 peer comes in peers6",
		Needs: []Feature{FeatureIPv6},
		Run: func(e *Env) {
			r := e.Req(1, H1, 1, 0)
			r.IPv6 = true
			e.MustAnnounce(r)
			e.MustAnnounce(e.Req(1, H1, 3, 0)) // an IPv4 seeder too
			r = e.Req(2, H1, 2, 10)
			r.IPv6 = true
			a := e.MustAnnounce(r)
			e.wantCounts(a, 2, 1)
			if e.Client.Supports(FeatureMixedFamilies) {
				e.wantPeers(a, ap6(10001), ap(10003))
			} else {
				e.wantPeers(a, ap6(10001))
			}
			if a.V6InPeers6 != 1 {
				e.T.Errorf("%d IPv6 peers in peers6, want 1", a.V6InPeers6)
			}
			if e.Client.Supports(FeatureDictPeers) {
				r.Dict = true
				a = e.MustAnnounce(r)
				e.wantPeers(a, ap6(10001), ap(10003))
			}
		},
	},

	// Failures, in XBT's order: each case makes the next reasons true too,
	// so the answer shows which one wins.
	{
		Name:     "failure/1 offline_message beats everything",
		Settings: func(s *tracker.Settings) { s.OfflineMessage = "tracker offline for maintenance" },
		Run: func(e *Env) {
			r := e.Req(0, Unknown, 1, 10)
			r.Passkey = badPasskey
			e.WantFailure(r, "tracker offline for maintenance")
			e.WantFailure(e.Req(1, H1, 1, 0), "tracker offline for maintenance")
		},
	},
	{
		Name: "failure/1b client rules: allow list, deny list, before the passkey",
		Run: func(e *Env) {
			// PeerID(n) starts with "-CF0001-".
			e.Tracker.SetClientRules(tracker.NewClientRules([][]byte{[]byte("-TR3")}, nil))
			r := e.Req(0, Unknown, 1, 10)
			r.Passkey = badPasskey
			e.WantFailure(r, tracker.ErrClientNotAllowed)
			e.WantFailure(e.Req(1, H1, 1, 0), tracker.ErrClientNotAllowed)
			e.Tracker.SetClientRules(tracker.NewClientRules([][]byte{[]byte("-CF")}, [][]byte{[]byte("-CF0001-")}))
			e.WantFailure(e.Req(1, H1, 1, 0), tracker.ErrClientDenied) // deny wins
			e.Tracker.SetClientRules(tracker.NewClientRules([][]byte{[]byte("-CF")}, [][]byte{[]byte("-TR")}))
			e.MustAnnounce(e.Req(1, H1, 1, 0))
		},
	},
	{
		Name: "failure/2 unregistered torrent pass beats unregistered torrent",
		Run: func(e *Env) {
			r := e.Req(0, Unknown, 1, 10)
			r.Passkey = badPasskey
			e.WantFailure(r, tracker.ErrUnregisteredTorrentPass)
			r.Passkey = "" // /announce with anonymous_announce off
			e.WantFailure(r, tracker.ErrUnregisteredTorrentPass)
			r = e.Req(1, H2, 1, 10) // user 1's passkey for H2 ...
			r.InfoHash = H1         // ... does not open H1
			e.WantFailure(r, tracker.ErrUnregisteredTorrentPass)
		},
	},
	{
		Name: "failure/3 unregistered torrent, unless auto_register",
		Run: func(e *Env) {
			e.WantFailure(e.Req(1, Unknown, 1, 10), tracker.ErrUnregisteredTorrent)
			s := e.Tracker.Settings()
			s.AutoRegister = true
			e.Tracker.SetSettings(s)
			a := e.MustAnnounce(e.Req(1, Unknown, 1, 10))
			e.wantCounts(a, 0, 1)
		},
	},
	{
		Name: "failure/4 leeching forbidden beats wait time and limits",
		Setup: func(t *tracker.Tracker) {
			t.UpsertUser(tracker.User{UID: 3, CanLeech: false, WaitTime: 1 << 20, PeersLimit: 1, TorrentsLimit: 1})
		},
		Run: func(e *Env) {
			e.WantFailure(e.Req(3, H1, 1, 10), tracker.ErrCanNotLeech)
			e.MustAnnounce(e.Req(3, H1, 2, 0)) // seeding is allowed
		},
	},
	{
		Name: "failure/5 wait time beats limits, and ends",
		Setup: func(t *tracker.Tracker) {
			t.UpsertUser(tracker.User{UID: 4, CanLeech: true, WaitTime: 3600, PeersLimit: 1, TorrentsLimit: 1})
			t.UpsertTorrent(tracker.Torrent{Fid: 4, InfoHash: Unknown, Ctime: Epoch.Add(-time.Minute).Unix()})
		},
		Run: func(e *Env) {
			e.MustAnnounce(e.Req(4, H1, 3, 10)) // an old torrent: no wait; torrents_limit now reached
			// wait time and torrents limit both apply: wait time wins
			e.WantFailure(e.Req(4, Unknown, 1, 10), tracker.ErrWaitTime)
			e.MustAnnounce(e.Req(4, Unknown, 2, 0)) // seeding is allowed
			e.Clock.Advance(3600 * time.Second)     // ctime + wait_time passed
			e.WantFailure(e.Req(4, Unknown, 1, 10), tracker.ErrTorrentsLimitReached)
			r := e.Req(4, H1, 3, 10)
			r.Event = tracker.EventStopped
			e.MustAnnounce(r)
			e.MustAnnounce(e.Req(4, Unknown, 1, 10))
		},
	},
	{
		Name: "failure/6 peers limit: a new leeching peer only",
		Setup: func(t *tracker.Tracker) {
			t.UpsertUser(tracker.User{UID: 5, CanLeech: true, PeersLimit: 1})
		},
		Run: func(e *Env) {
			e.MustAnnounce(e.Req(5, H1, 1, 10))
			e.WantFailure(e.Req(5, H1, 2, 10), tracker.ErrPeersLimitReached)
			e.MustAnnounce(e.Req(5, H1, 1, 5))  // the existing peer re-announces
			e.MustAnnounce(e.Req(5, H1, 3, 0))  // a seeding peer is not limited
			e.MustAnnounce(e.Req(5, H2, 4, 10)) // the limit is per torrent
		},
	},
	{
		Name: "failure/7 torrents limit",
		Setup: func(t *tracker.Tracker) {
			t.UpsertUser(tracker.User{UID: 6, CanLeech: true, TorrentsLimit: 1})
		},
		Run: func(e *Env) {
			e.MustAnnounce(e.Req(6, H1, 1, 10))
			e.MustAnnounce(e.Req(6, H1, 2, 10)) // a second peer on the same torrent
			e.WantFailure(e.Req(6, H2, 3, 10), tracker.ErrTorrentsLimitReached)
			e.MustAnnounce(e.Req(6, H2, 3, 0)) // seeding is not limited
			for _, n := range []int{1, 2} {
				r := e.Req(6, H1, n, 10)
				r.Event = tracker.EventStopped
				e.MustAnnounce(r)
			}
			e.MustAnnounce(e.Req(6, H3, 5, 10))
		},
	},
	{
		Name: "announce/anonymous_announce opens /announce",
		Settings: func(s *tracker.Settings) {
			s.AnonymousAnnounce = true
		},
		Run: func(e *Env) {
			e.MustAnnounce(e.Req(0, H1, 1, 0))
			a := e.MustAnnounce(e.Req(0, H1, 2, 10))
			e.wantCounts(a, 1, 1)
			e.wantPeers(a, ap(10001))
		},
	},

	{
		Name:  "scrape/one torrent",
		Needs: []Feature{FeatureScrapePasskey},
		Run: func(e *Env) {
			e.MustAnnounce(e.Req(1, H1, 1, 0))
			e.MustAnnounce(e.Req(2, H1, 2, 10))
			e.MustAnnounce(e.Req(2, H1, 3, 10))
			files := e.ScrapeFiles(ScrapeRequest{Passkey: e.PK(1, H1), InfoHashes: []tracker.InfoHash{H1}})
			if len(files) != 1 {
				e.T.Errorf("%d files, want 1", len(files))
			}
			e.wantFile(files, H1, FileStats{Complete: 1, Incomplete: 2})
			if _, ok := e.Scrape(ScrapeRequest{Passkey: e.PK(1, H1), InfoHashes: []tracker.InfoHash{H1}})["flags"]; ok {
				e.T.Errorf("flags without scrape_interval")
			}
		},
	},
	{
		Name:  "scrape/many torrents: unknown left out, repeats once",
		Needs: []Feature{FeatureScrapePasskey, FeatureScrapeByName},
		Run: func(e *Env) {
			e.MustAnnounce(e.Req(1, H1, 1, 0))
			e.MustAnnounce(e.Req(1, H2, 2, 10))
			files := e.ScrapeFiles(ScrapeRequest{Passkey: e.PK(1, H2),
				InfoHashes: []tracker.InfoHash{H2, Unknown, H1, H3, H1}})
			if len(files) != 3 {
				e.T.Errorf("%d files, want 3", len(files))
			}
			e.wantFile(files, H1, FileStats{Complete: 1})
			e.wantFile(files, H2, FileStats{Incomplete: 1})
			e.wantFile(files, H3, FileStats{})
		},
	},
	{
		Name:  "scrape/full scrape with full_scrape on",
		Needs: []Feature{FeatureFullScrape},
		Settings: func(s *tracker.Settings) {
			s.FullScrape = true
			s.AnonymousScrape = true
		},
		Run: func(e *Env) {
			e.MustAnnounce(e.Req(1, H1, 1, 0))
			e.MustAnnounce(e.Req(2, H3, 2, 10))
			files := e.ScrapeFiles(ScrapeRequest{})
			if len(files) != 2 { // H2 has no peers
				e.T.Errorf("%d files, want 2: %v", len(files), files)
			}
			e.wantFile(files, H1, FileStats{Complete: 1})
			e.wantFile(files, H3, FileStats{Incomplete: 1})
		},
	},
	{
		Name:  "scrape/full scrape with a legacy torrent_pass",
		Needs: []Feature{FeatureFullScrape},
		Settings: func(s *tracker.Settings) {
			s.FullScrape = true
		},
		Setup: func(t *tracker.Tracker) {
			t.UpsertUser(tracker.User{UID: 7, CanLeech: true, TorrentPass: "legacy0123456789abcdef0123456789"})
		},
		Run: func(e *Env) {
			e.MustAnnounce(e.Req(1, H1, 1, 0))
			files := e.ScrapeFiles(ScrapeRequest{Passkey: "legacy0123456789abcdef0123456789"})
			if len(files) != 1 {
				e.T.Errorf("%d files, want 1", len(files))
			}
			e.wantFile(files, H1, FileStats{Complete: 1})
		},
	},
	{
		Name:     "scrape/full scrape disabled answers no files",
		Needs:    []Feature{FeatureFullScrape},
		Settings: func(s *tracker.Settings) { s.AnonymousScrape = true },
		Run: func(e *Env) {
			e.MustAnnounce(e.Req(1, H1, 1, 0))
			if files := e.ScrapeFiles(ScrapeRequest{}); len(files) != 0 {
				e.T.Errorf("full scrape disabled but got %v", files)
			}
		},
	},
	{
		Name: "scrape/refused without a valid passkey unless anonymous_scrape",
		Run: func(e *Env) {
			e.MustAnnounce(e.Req(1, H1, 1, 0))
			if e.Client.Supports(FeatureScrapePasskey) {
				m := e.Scrape(ScrapeRequest{Passkey: badPasskey, InfoHashes: []tracker.InfoHash{H1}})
				if m["failure reason"] != string(tracker.ErrUnregisteredTorrentPass) || len(m) != 1 {
					e.T.Errorf("bad passkey: %v", m)
				}
			}
			m := e.Scrape(ScrapeRequest{InfoHashes: []tracker.InfoHash{H1}})
			if m["failure reason"] != string(tracker.ErrUnregisteredTorrentPass) {
				e.T.Errorf("no passkey: %v", m)
			}
			s := e.Tracker.Settings()
			s.AnonymousScrape = true
			e.Tracker.SetSettings(s)
			e.wantFile(e.ScrapeFiles(ScrapeRequest{InfoHashes: []tracker.InfoHash{H1}}), H1, FileStats{Complete: 1})
		},
	},
	{
		Name:     "scrape/scrape_interval in flags",
		Needs:    []Feature{FeatureScrapeFlags},
		Settings: func(s *tracker.Settings) { s.ScrapeInterval = 900 },
		Run: func(e *Env) {
			m := e.Scrape(ScrapeRequest{Passkey: e.PK(1, H1), InfoHashes: []tracker.InfoHash{H1}})
			flags, _ := m["flags"].(map[string]any)
			if flags["min_request_interval"] != int64(900) || len(flags) != 1 {
				e.T.Errorf("flags %v", m["flags"])
			}
		},
	},

	{
		Name: "ledger/deltas credited on re-announce, visible through Drain",
		Run: func(e *Env) {
			r := e.Req(1, H1, 1, 1000)
			r.Event, r.Uploaded, r.Downloaded = tracker.EventStarted, 100, 200
			e.MustAnnounce(r) // the baseline: no credit
			b := e.Tracker.Drain()
			if d := b.Users[1]; d.Uploaded != 0 || d.Downloaded != 0 {
				e.T.Errorf("first announce credited %+v", d)
			}
			r.Event, r.Uploaded, r.Downloaded, r.Left = tracker.EventNone, 1100, 700, 500
			e.MustAnnounce(r)
			b = e.Tracker.Drain()
			if d := b.Users[1]; d.Uploaded != 1000 || d.Downloaded != 500 {
				e.T.Errorf("user delta %+v, want up 1000 down 500", d)
			}
			fu := b.FileUsers[tracker.FileUserKey{Fid: 1, UID: 1}]
			if fu.Uploaded != 1000 || fu.Downloaded != 500 || fu.Left != 500 || !fu.Active {
				e.T.Errorf("file-user delta %+v", fu)
			}
			// A restarted client reports smaller counters: new baseline, no credit.
			r.Uploaded, r.Downloaded = 50, 0
			e.MustAnnounce(r)
			r.Uploaded, r.Downloaded = 80, 10
			e.MustAnnounce(r)
			b = e.Tracker.Drain()
			if d := b.Users[1]; d.Uploaded != 30 || d.Downloaded != 10 {
				e.T.Errorf("after a counter reset: %+v, want up 30 down 10", d)
			}
		},
	},
	{
		Name: "credit/freeleech torrent credits no download; the file-user row keeps the real bytes",
		Setup: func(trk *tracker.Tracker) {
			trk.SetCreditRules(&tracker.CreditRules{Torrents: map[uint32]tracker.Factors{1: {Down: tracker.Percent(0)}}})
		},
		Run: func(e *Env) {
			d, fu := e.credit(1, H1, 300, 7000)
			if d.Uploaded != 300 || d.Downloaded != 0 || fu.Uploaded != 300 || fu.Downloaded != 7000 {
				e.T.Errorf("user %+v, file-user up %d down %d; want user 300/0, file-user 300/7000", d, fu.Uploaded, fu.Downloaded)
			}
		},
	},
	{
		Name: "credit/double upload credits twice",
		Setup: func(trk *tracker.Tracker) {
			trk.SetCreditRules(&tracker.CreditRules{Torrents: map[uint32]tracker.Factors{1: {Up: tracker.Percent(200)}}})
		},
		Run: func(e *Env) {
			if d, fu := e.credit(1, H1, 1234, 10); d.Uploaded != 2468 || d.Downloaded != 10 || fu.Uploaded != 1234 {
				e.T.Errorf("user %+v, file-user up %d; want user 2468/10, file-user 1234", d, fu.Uploaded)
			}
		},
	},
	{
		Name: "credit/torrent × user × site factors combine, the remainder carried",
		Settings: func(s *tracker.Settings) {
			s.UpMulti, s.DownMulti = tracker.Percent(200), tracker.Percent(50)
		},
		Setup: func(trk *tracker.Tracker) {
			trk.SetCreditRules(&tracker.CreditRules{
				Torrents: map[uint32]tracker.Factors{1: {Up: tracker.Percent(50), Down: tracker.Percent(50)}},
				Users:    map[uint32]tracker.Factors{1: {Up: tracker.Percent(300), Down: tracker.Percent(100)}},
			})
		},
		Run: func(e *Env) {
			// up: 1001 × 50% × 300% × 200% = 3003; down: 1001 × 25% = 250.25,
			// then the second announce's 3 bytes: (3 + 0.25 carried) × ... → 0.75 + 0.25 = 1.
			d, _ := e.credit(1, H1, 1001, 1001)
			if d.Uploaded != 3003 || d.Downloaded != 250 {
				e.T.Errorf("first: %+v, want up 3003 down 250", d)
			}
			if d := e.creditAgain(1, H1, 1001, 1004).Users[1]; d.Uploaded != 0 || d.Downloaded != 1 {
				e.T.Errorf("second: %+v, want down 1 (0.75 + 0.25 carried)", d)
			}
		},
	},
	{
		Name: "credit/a token frees the download until it expires",
		Setup: func(trk *tracker.Tracker) {
			trk.SetCreditRules(&tracker.CreditRules{Tokens: map[tracker.FileUserKey]int64{
				{Fid: 1, UID: 1}: Epoch.Add(time.Hour).Unix(),
			}})
		},
		Run: func(e *Env) {
			if d, fu := e.credit(1, H1, 5, 4000); d.Downloaded != 0 || d.Uploaded != 5 || fu.Downloaded != 4000 {
				e.T.Errorf("with a token: user %+v, file-user down %d", d, fu.Downloaded)
			}
			if d, _ := e.credit(2, H1, 0, 4000); d.Downloaded != 4000 {
				e.T.Errorf("another user's download: %+v, want 4000", d)
			}
			e.Clock.Advance(time.Hour)
			if d := e.creditAgain(1, H1, 5, 4100).Users[1]; d.Downloaded != 100 {
				e.T.Errorf("after expiry: %+v, want down 100", d)
			}
		},
	},
	{
		Name: "credit/site-wide freeleech takes effect with the next settings",
		Run: func(e *Env) {
			s := e.Tracker.Settings()
			s.DownMulti = tracker.Percent(0)
			e.Tracker.SetSettings(s)
			if d, _ := e.credit(1, H1, 10, 4000); d.Downloaded != 0 || d.Uploaded != 10 {
				e.T.Errorf("site freeleech: %+v", d)
			}
			s.DownMulti = tracker.Multiplier{}
			e.Tracker.SetSettings(s)
			if d := e.creditAgain(1, H1, 10, 4500).Users[1]; d.Downloaded != 500 {
				e.T.Errorf("back to normal: %+v, want down 500", d)
			}
		},
	},
	{
		Name: "ledger/completed counted once, in scrape and Drain",
		Run: func(e *Env) {
			r := e.Req(2, H1, 1, 1000)
			r.Event = tracker.EventStarted
			e.MustAnnounce(r)
			r.Event, r.Left, r.Downloaded = tracker.EventCompleted, 0, 1000
			a := e.MustAnnounce(r)
			e.wantCounts(a, 1, 0)
			e.MustAnnounce(r) // a repeated completed is not counted again
			if e.Client.Supports(FeatureScrapePasskey) {
				files := e.ScrapeFiles(ScrapeRequest{Passkey: e.PK(2, H1), InfoHashes: []tracker.InfoHash{H1}})
				e.wantFile(files, H1, FileStats{Complete: 1, Downloaded: 1})
			}
			b := e.Tracker.Drain()
			if f := b.Files[1]; f.Completed != 1 || f.Seeders != 1 || f.Leechers != 0 {
				e.T.Errorf("file delta %+v", f)
			}
			if d := b.Users[2]; d.Downloaded != 1000 {
				e.T.Errorf("user delta %+v", d)
			}
		},
	},
}

func fmtWant(n *int) string {
	if n == nil {
		return "absent"
	}
	return fmt.Sprint(*n)
}

// credit announces peer 1 of uid on h twice (a start, then up and down
// bytes more) and returns what the second announce recorded for the user
// and for the (fid 1, uid) row.
func (e *Env) credit(uid uint32, h tracker.InfoHash, up, down uint64) (tracker.UserDelta, tracker.FileUserDelta) {
	r := e.Req(uid, h, 1, 500)
	r.Event = tracker.EventStarted
	e.MustAnnounce(r)
	e.Tracker.Drain()
	b := e.creditAgain(uid, h, up, down)
	return b.Users[uid], b.FileUsers[tracker.FileUserKey{Fid: 1, UID: uid}]
}

// creditAgain announces peer 1 of uid on h, without an event, with the
// running totals up and down, and returns what Drain then hands over.
func (e *Env) creditAgain(uid uint32, h tracker.InfoHash, up, down uint64) *tracker.Batch {
	r := e.Req(uid, h, 1, 500)
	r.Uploaded, r.Downloaded = up, down
	e.MustAnnounce(r)
	return e.Tracker.Drain()
}
