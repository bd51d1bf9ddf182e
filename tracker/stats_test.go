package tracker

import (
	"testing"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
)

func TestStatsAndCollector(t *testing.T) {
	tr, clk := newTest(t, nil)
	h1, h2 := hashN(1), hashN(2)
	tr.UpsertTorrent(torrent(1, h1, t0))
	tr.UpsertTorrent(torrent(2, h2, t0))
	tr.UpsertTorrent(torrent(3, hashN(3), t0))
	tr.UpsertUser(user(1))
	tr.UpsertUser(user(2))
	mustOK(t, tr, ann(1, h1, 1, 0))
	mustOK(t, tr, ann(1, h1, 2, 10))
	mustOK(t, tr, ann(2, h2, 3, 10))
	mustFail(t, tr, ann(0, h2, 4, 10), ErrUnregisteredTorrentPass)
	var out ScrapeResult
	tr.Scrape(&ScrapeRequest{Passkey: pk(1, h1), InfoHashes: []InfoHash{h1}}, &out)
	tr.Scrape(&ScrapeRequest{InfoHashes: []InfoHash{h1}}, &out)
	tr.Scrape(&ScrapeRequest{}, &out)
	clk.Add(1000)
	mustOK(t, tr, ann(1, h1, 2, 10))
	clk.Add(2000)
	tr.Expire() // peers 1 and 3
	tr.SetCreditRules(&CreditRules{
		Torrents: map[uint32]Factors{1: {Down: Percent(0)}},
		Users:    map[uint32]Factors{1: {Up: Percent(200)}, 2: {Up: Percent(150)}},
		Tokens:   map[FileUserKey]int64{{2, 1}: t0 + 1e6, {3, 1}: t0 + 1e6, {3, 2}: t0 + 1e6},
	})

	want := Stats{
		Torrents: 3, TorrentsWithPeers: 1, Peers: 1, Seeders: 0, Leechers: 1, Users: 2,
		LedgerLen:   tr.LedgerLen(),
		AnnouncesOK: 4, AnnouncesFailed: 1, ScrapesOK: 1, ScrapesFailed: 2, Expired: 2,
		FactorTorrents: 1, FactorUsers: 2, Tokens: 3,
	}
	if st := tr.Stats(); st != want {
		t.Fatalf("Stats = %+v\nwant    %+v", st, want)
	}
	if want.LedgerLen == 0 {
		t.Fatal("empty ledger")
	}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(tr.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			v := m.GetGauge().GetValue()
			if m.GetCounter() != nil {
				v = m.GetCounter().GetValue()
			}
			got[name] = v
		}
	}
	wantM := map[string]float64{
		"xbt_tracker_torrents":                         3,
		"xbt_tracker_torrents_with_peers":              1,
		"xbt_tracker_peers{state=seeder}":              0,
		"xbt_tracker_peers{state=leecher}":             1,
		"xbt_tracker_users":                            2,
		"xbt_tracker_ledger_entries":                   float64(want.LedgerLen),
		"xbt_tracker_announces_total{result=ok}":       4,
		"xbt_tracker_announces_total{result=failed}":   1,
		"xbt_tracker_scrapes_total{result=ok}":         1,
		"xbt_tracker_scrapes_total{result=failed}":     2,
		"xbt_tracker_peers_expired_total":              2,
		"xbt_tracker_credit_capped_total":              0,
		"xbt_tracker_client_refused_total{rule=allow}": 0,
		"xbt_tracker_client_refused_total{rule=deny}":  0,
		"xbt_tracker_credit_rules{kind=torrents}":      1,
		"xbt_tracker_credit_rules{kind=users}":         2,
		"xbt_tracker_credit_rules{kind=tokens}":        3,
	}
	for k, v := range wantM {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if len(got) != len(wantM) {
		t.Errorf("metrics %v", got)
	}
}

// TestSizes pins the memory layout the design relies on: a compact peer
// record and cache-line-padded shards.
func TestSizes(t *testing.T) {
	if s := unsafe.Sizeof(peer{}); s != 64 {
		t.Errorf("peer is %d bytes, want 64", s)
	}
	if s := unsafe.Sizeof(torrentShard{}); s != 128 {
		t.Errorf("torrentShard is %d bytes, want 128", s)
	}
}

// TestAnnounceAllocs: a warm announce (known user, torrent and peer; the
// result reused) allocates nothing, for a leecher, a seeder, with peer ids
// and with an IPv6 address.
func TestAnnounceAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	tr, h := benchTracker(t, 1, 200)
	var out AnnounceResult
	for _, a := range []*Announce{
		ann(1, h[0], 5, 10),
		ann(1, h[0], 6, 0),
		func() *Announce { a := ann(1, h[0], 7, 10); a.WantPeerID = true; return a }(),
		func() *Announce { a := ann(1, h[0], 8, 10); a.Addr = addr6(8); return a }(),
	} {
		tr.Announce(a, &out) // warm: the peer exists, out has capacity
		n := testing.AllocsPerRun(200, func() {
			a.Uploaded++
			tr.Announce(a, &out)
		})
		if out.Failure != "" || n != 0 {
			t.Errorf("announce (left %d): %v allocs, failure %q", a.Left, n, out.Failure)
		}
	}
	var sout ScrapeResult
	req := &ScrapeRequest{Passkey: pk(1, h[0]), InfoHashes: []InfoHash{h[0]}}
	tr.Scrape(req, &sout)
	if n := testing.AllocsPerRun(200, func() { tr.Scrape(req, &sout) }); n != 0 {
		t.Errorf("scrape: %v allocs", n)
	}
}
