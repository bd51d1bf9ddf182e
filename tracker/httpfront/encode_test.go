package httpfront_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/xbt-tracker/xbt-tracker/internal/conformance"
	"github.com/xbt-tracker/xbt-tracker/tracker"
	"github.com/xbt-tracker/xbt-tracker/tracker/httpfront"
)

func id(s string) tracker.PeerID { return tracker.PeerID([]byte(s)) }

func TestAppendFailure(t *testing.T) {
	got := string(httpfront.AppendFailure([]byte("x"), string(tracker.ErrUnregisteredTorrentPass)))
	if want := "xd14:failure reason25:unregistered torrent passe"; got != want {
		t.Errorf("%q\nwant %q", got, want)
	}
	if got := string(httpfront.AppendFailure(nil, "")); got != "d14:failure reason0:e" {
		t.Error(got)
	}
}

func TestAppendAnnounce(t *testing.T) {
	peers4 := []byte{127, 0, 0, 1, 0x1a, 0xe1, 10, 0, 0, 2, 0xff, 0xff}
	v6 := netip.MustParseAddr("2001:db8::1").As16()
	peers6 := append(v6[:], 0, 80)
	full := tracker.AnnounceResult{
		Complete: 3, Incomplete: 12, Interval: 1800, MinInterval: 900,
		Peers4: peers4, Peers6: peers6,
		PeerIDs4: []tracker.PeerID{id("-TR3000-aaaaaaaaaaaa"), id("-LT2080-bbbbbbbbbbbb")},
		PeerIDs6: []tracker.PeerID{id("A2-1-36-0-cccccccccc")},
	}
	head := "d8:completei3e10:incompletei12e8:intervali1800e12:min intervali900e"
	tests := []struct {
		name              string
		r                 tracker.AnnounceResult
		compact, noPeerID bool
		want              string
	}{
		{"no peers", tracker.AnnounceResult{Interval: 1800, MinInterval: 1800}, true, false,
			"d8:completei0e10:incompletei0e8:intervali1800e12:min intervali1800e5:peers0:e"},
		{"compact v4 only", tracker.AnnounceResult{Complete: 3, Incomplete: 12, Interval: 1800, MinInterval: 900, Peers4: peers4}, true, false,
			head + "5:peers12:" + string(peers4) + "e"},
		{"compact v4 and v6", full, true, false,
			head + "5:peers12:" + string(peers4) + "6:peers618:" + string(peers6) + "e"},
		{"compact v6 only", tracker.AnnounceResult{Complete: 3, Incomplete: 12, Interval: 1800, MinInterval: 900, Peers6: peers6}, true, false,
			head + "5:peers0:6:peers618:" + string(peers6) + "e"},
		{"dict with peer ids", full, false, false,
			head + "5:peersl" +
				"d2:ip9:127.0.0.17:peer id20:-TR3000-aaaaaaaaaaaa4:porti6881ee" +
				"d2:ip8:10.0.0.27:peer id20:-LT2080-bbbbbbbbbbbb4:porti65535ee" +
				"d2:ip11:2001:db8::17:peer id20:A2-1-36-0-cccccccccc4:porti80ee" +
				"ee"},
		{"dict no_peer_id", full, false, true,
			head + "5:peersl" +
				"d2:ip9:127.0.0.14:porti6881ee" +
				"d2:ip8:10.0.0.24:porti65535ee" +
				"d2:ip11:2001:db8::14:porti80ee" +
				"ee"},
		{"dict without ids from the engine", tracker.AnnounceResult{Interval: 60, MinInterval: 60, Peers4: peers4[:6]}, false, false,
			"d8:completei0e10:incompletei0e8:intervali60e12:min intervali60e5:peersld2:ip9:127.0.0.14:porti6881eeee"},
		{"dict empty", tracker.AnnounceResult{Interval: 60, MinInterval: 60}, false, false,
			"d8:completei0e10:incompletei0e8:intervali60e12:min intervali60e5:peerslee"},
		{"failure wins", tracker.AnnounceResult{Failure: tracker.ErrWaitTime, Complete: 1, Peers4: peers4}, true, false,
			"d14:failure reason34:access denied, wait time in effecte"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(httpfront.AppendAnnounce([]byte("prefix"), &tt.r, tt.compact, tt.noPeerID))
			if got != "prefix"+tt.want {
				t.Errorf("got  %q\nwant %q", got, "prefix"+tt.want)
			}
			if _, err := conformance.DecodeBencode([]byte(got[len("prefix"):])); err != nil {
				t.Errorf("not valid bencode: %v", err)
			}
		})
	}
}

func TestAppendScrape(t *testing.T) {
	h := func(c byte) tracker.InfoHash { return tracker.InfoHash([]byte(strings.Repeat(string(c), 20))) }
	tests := []struct {
		name string
		r    tracker.ScrapeResult
		want string
	}{
		{"empty", tracker.ScrapeResult{}, "d5:filesdee"},
		{"one", tracker.ScrapeResult{Files: []tracker.ScrapeFile{{InfoHash: h('a'), Complete: 1, Downloaded: 22, Incomplete: 333}}},
			"d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei1e10:downloadedi22e10:incompletei333eeee"},
		{"sorted and deduplicated", tracker.ScrapeResult{Files: []tracker.ScrapeFile{
			{InfoHash: h('b'), Complete: 2}, {InfoHash: h('a'), Complete: 1}, {InfoHash: h('b'), Complete: 2}}},
			"d5:filesd" +
				"20:aaaaaaaaaaaaaaaaaaaad8:completei1e10:downloadedi0e10:incompletei0ee" +
				"20:bbbbbbbbbbbbbbbbbbbbd8:completei2e10:downloadedi0e10:incompletei0ee" +
				"ee"},
		{"flags", tracker.ScrapeResult{MinRequestInterval: 900, Files: []tracker.ScrapeFile{{InfoHash: h('a')}}},
			"d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei0e10:downloadedi0e10:incompletei0eee" +
				"5:flagsd20:min_request_intervali900eee"},
		{"failure", tracker.ScrapeResult{Failure: "unregistered torrent pass", Files: []tracker.ScrapeFile{{}}},
			"d14:failure reason25:unregistered torrent passe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(httpfront.AppendScrape(nil, &tt.r))
			if got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
			if _, err := conformance.DecodeBencode([]byte(got)); err != nil {
				t.Errorf("not valid bencode: %v", err)
			}
		})
	}
}

func TestEncodeAllocs(t *testing.T) {
	r := tracker.AnnounceResult{Complete: 5, Incomplete: 7, Interval: 1800, MinInterval: 1800,
		Peers4: make([]byte, 50*6), Peers6: make([]byte, 10*18),
		PeerIDs4: make([]tracker.PeerID, 50), PeerIDs6: make([]tracker.PeerID, 10)}
	s := tracker.ScrapeResult{Files: make([]tracker.ScrapeFile, 10), MinRequestInterval: 60}
	buf := make([]byte, 0, 16<<10)
	if n := testing.AllocsPerRun(100, func() {
		buf = httpfront.AppendAnnounce(buf[:0], &r, true, false)
		buf = httpfront.AppendAnnounce(buf[:0], &r, false, false)
		buf = httpfront.AppendFailure(buf[:0], "x")
		buf = httpfront.AppendScrape(buf[:0], &s)
	}); n != 0 {
		t.Errorf("%v allocs", n)
	}
}
