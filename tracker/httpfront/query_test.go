package httpfront

import (
	"bytes"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// Every request real clients sent parses, and a few are checked by hand.
func TestParseVectors(t *testing.T) {
	const (
		transmissionA = "1324f719731525beb6e2c09afa9a76e9358a9ed5" // %13%24%f7%19s%15%25%be...
		torrentB      = "c73399c523a700e8324bb4ad99e576c186761a60" // %c73%99%c5%23%a7%00%e82K...
		torrentC      = "d3c8c4b3700d1cf6deb9eb62a80cac819fc028d2" // aria2 %28 and libtorrent raw '('
	)
	type want struct {
		infoHash   string
		peerID     string
		port       uint16
		left       uint64
		downloaded uint64
		uploaded   uint64
		event      tracker.Event
		numWant    int
		noPeerID   bool
		keepAlive  bool
		gzip       bool
	}
	byName := map[string]want{
		"Transmission/3.00  announce event=started left==0": {
			infoHash: transmissionA, peerID: "-TR3000-xhe3ois5eq3v", port: 57547,
			event: tracker.EventStarted, numWant: 80, keepAlive: true, gzip: true,
		},
		"aria2/1.36.0  announce event=started left>0": {
			infoHash: transmissionA, peerID: "A2-1-36-0-\xfbY\xffkYG\x1ed\xfc\xec", port: 39033,
			left: 5242880, event: tracker.EventStarted, numWant: 50, noPeerID: true, keepAlive: true,
		},
		"aria2/1.36.0  announce event=stopped left==0": {
			infoHash: torrentC, peerID: "A2-1-36-0-\x98\xdd\x8c\x90\xf6_\\\x04\xb7\xa4", port: 42013,
			uploaded: 5242880, event: tracker.EventStopped, numWant: 0, noPeerID: true, keepAlive: true,
		},
		"libtorrent/2.0.8.0  announce event=started left>0": {
			infoHash: torrentC, peerID: "-LT2080-RfEoYQL9LuPr", port: 32967,
			left: 5242880, event: tracker.EventStarted, numWant: 200, noPeerID: true, gzip: true,
		},
		"libtorrent/2.0.8.0  announce event=(none) left==0": {
			infoHash: torrentB, peerID: "-LT2080-r8._*BuTurRM", port: 46501,
			event: tracker.EventNone, numWant: 200, noPeerID: true, gzip: true,
		},
		"Transmission/3.00  announce event=completed left==0": {
			infoHash: torrentB, peerID: "-TR3000-ve8zyle248kp", port: 38405, downloaded: 5242880,
			event: tracker.EventCompleted, numWant: 80, keepAlive: true, gzip: true,
		},
	}
	checked := 0
	for _, v := range loadVectors(t) {
		r := readVector(t, v)
		passkey, k, ok := trackerPath(r.Path)
		if !ok || string(passkey) != "0123456789abcdef0123456789abcdef" {
			t.Fatalf("%s: path %q not a passkey tracker path", v.name, r.Path)
		}
		if r.Method != "GET" || r.ProtoMinor != 1 {
			t.Errorf("%s: method %q proto 1.%d", v.name, r.Method, r.ProtoMinor)
		}
		if k == kindScrape {
			hs, err := ParseScrape(r.Query, nil)
			if err != nil || len(hs) != 1 || hs[0] != unhexT(t, torrentB) {
				t.Errorf("%s: scrape %x, %v", v.name, hs, err)
			}
			continue
		}
		var a tracker.Announce
		var ex AnnounceExtras
		if err := ParseAnnounceExtras(r.Query, &a, &ex); err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		if !ex.Compact || a.WantPeerID || ex.IP.IsValid() {
			t.Errorf("%s: compact=%v wantPeerID=%v ip=%v", v.name, ex.Compact, a.WantPeerID, ex.IP)
		}
		w, ok := byName[v.name]
		if !ok {
			continue
		}
		checked++
		if a.InfoHash != unhexT(t, w.infoHash) {
			t.Errorf("%s: info_hash %x, want %s", v.name, a.InfoHash, w.infoHash)
		}
		if string(a.PeerID[:]) != w.peerID {
			t.Errorf("%s: peer_id %q, want %q", v.name, a.PeerID[:], w.peerID)
		}
		if a.Port != w.port || a.Left != w.left || a.Downloaded != w.downloaded || a.Uploaded != w.uploaded {
			t.Errorf("%s: port/left/down/up %d/%d/%d/%d, want %d/%d/%d/%d", v.name,
				a.Port, a.Left, a.Downloaded, a.Uploaded, w.port, w.left, w.downloaded, w.uploaded)
		}
		if a.Event != w.event || a.NumWant != w.numWant || ex.NoPeerID != w.noPeerID {
			t.Errorf("%s: event/numwant/no_peer_id %d/%d/%v, want %d/%d/%v", v.name,
				a.Event, a.NumWant, ex.NoPeerID, w.event, w.numWant, w.noPeerID)
		}
		if r.KeepAlive != w.keepAlive || r.AcceptGzip != w.gzip {
			t.Errorf("%s: keepalive/gzip %v/%v, want %v/%v", v.name, r.KeepAlive, r.AcceptGzip, w.keepAlive, w.gzip)
		}
	}
	if checked != len(byName) {
		t.Errorf("checked %d vectors by hand, want %d (titles changed?)", checked, len(byName))
	}
}

const okQuery = "info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=bbbbbbbbbbbbbbbbbbbb&port=6881&uploaded=1&downloaded=2&left=3"

func TestParseAnnounce(t *testing.T) {
	aaaa := [20]byte([]byte(strings.Repeat("a", 20)))
	tests := []struct {
		name  string
		query string
		err   error
		check func(*testing.T, *tracker.Announce, *AnnounceExtras)
	}{
		{"minimal", okQuery, nil, func(t *testing.T, a *tracker.Announce, ex *AnnounceExtras) {
			if a.InfoHash != aaaa || a.Port != 6881 || a.Uploaded != 1 || a.Downloaded != 2 || a.Left != 3 ||
				a.Event != tracker.EventNone || a.NumWant != -1 || a.WantPeerID || !ex.Compact || ex.NoPeerID {
				t.Errorf("%+v %+v", a, ex)
			}
		}},
		{"unknown and valueless params ignored", "x&key=%zz&corrupt=0&" + okQuery + "&supportcrypto=1&redundant=0&ipv6=%3A%3A1&&trackerid", nil, nil},
		{"upper and lower escapes", strings.Replace(okQuery, "info_hash=aaaaaaaaaaaaaaaaaaaa", "info_hash=%AB%ab%aB%00aaaaaaaaaaaaaaaa", 1), nil,
			func(t *testing.T, a *tracker.Announce, _ *AnnounceExtras) {
				if !bytes.Equal(a.InfoHash[:4], []byte{0xab, 0xab, 0xab, 0}) {
					t.Errorf("%x", a.InfoHash)
				}
			}},
		{"plus is a space", strings.Replace(okQuery, "peer_id=bbbbbbbbbbbbbbbbbbbb", "peer_id=+bbbbbbbbbbbbbbbbbb%2B", 1), nil,
			func(t *testing.T, a *tracker.Announce, _ *AnnounceExtras) {
				if string(a.PeerID[:]) != " bbbbbbbbbbbbbbbbbb+" {
					t.Errorf("%q", a.PeerID[:])
				}
			}},
		{"libtorrent unescaped marks", strings.Replace(okQuery, "peer_id=bbbbbbbbbbbbbbbbbbbb", "peer_id=-LT2080-r8._*()!'~ab", 1), nil,
			func(t *testing.T, a *tracker.Announce, _ *AnnounceExtras) {
				if string(a.PeerID[:]) != "-LT2080-r8._*()!'~ab" {
					t.Errorf("%q", a.PeerID[:])
				}
			}},
		{"first wins", okQuery + "&port=1&info_hash=cccccccccccccccccccc&event=started&event=stopped", nil,
			func(t *testing.T, a *tracker.Announce, _ *AnnounceExtras) {
				if a.Port != 6881 || a.InfoHash != aaaa || a.Event != tracker.EventStarted {
					t.Errorf("%+v", a)
				}
			}},
		{"events", okQuery + "&event=completed", nil, func(t *testing.T, a *tracker.Announce, _ *AnnounceExtras) {
			if a.Event != tracker.EventCompleted {
				t.Error(a.Event)
			}
		}},
		{"event paused", okQuery + "&event=paused", nil, func(t *testing.T, a *tracker.Announce, _ *AnnounceExtras) {
			if a.Event != tracker.EventPaused {
				t.Error(a.Event)
			}
		}},
		{"event empty", okQuery + "&event=empty", nil, func(t *testing.T, a *tracker.Announce, _ *AnnounceExtras) {
			if a.Event != tracker.EventNone {
				t.Error(a.Event)
			}
		}},
		{"event blank", okQuery + "&event=", nil, nil},
		{"event unknown", okQuery + "&event=start", tracker.ErrInvalidEvent, nil},
		{"dict form", okQuery + "&compact=0", nil, func(t *testing.T, a *tracker.Announce, ex *AnnounceExtras) {
			if ex.Compact || !a.WantPeerID || ex.NoPeerID {
				t.Errorf("%+v %+v", a, ex)
			}
		}},
		{"dict form without peer id", okQuery + "&compact=0&no_peer_id=1", nil, func(t *testing.T, a *tracker.Announce, ex *AnnounceExtras) {
			if ex.Compact || a.WantPeerID || !ex.NoPeerID {
				t.Errorf("%+v %+v", a, ex)
			}
		}},
		{"compact=1 no_peer_id=0", okQuery + "&compact=1&no_peer_id=0", nil, func(t *testing.T, a *tracker.Announce, ex *AnnounceExtras) {
			if !ex.Compact || a.WantPeerID || ex.NoPeerID {
				t.Errorf("%+v %+v", a, ex)
			}
		}},
		{"numwant", okQuery + "&numwant=80", nil, func(t *testing.T, a *tracker.Announce, _ *AnnounceExtras) {
			if a.NumWant != 80 {
				t.Error(a.NumWant)
			}
		}},
		{"numwant zero", okQuery + "&numwant=0", nil, func(t *testing.T, a *tracker.Announce, _ *AnnounceExtras) {
			if a.NumWant != 0 {
				t.Error(a.NumWant)
			}
		}},
		{"numwant negative", okQuery + "&numwant=-5", nil, func(t *testing.T, a *tracker.Announce, _ *AnnounceExtras) {
			if a.NumWant != -1 {
				t.Error(a.NumWant)
			}
		}},
		{"numwant huge", okQuery + "&numwant=999999999999999999999999999999", nil, func(t *testing.T, a *tracker.Announce, _ *AnnounceExtras) {
			if a.NumWant != NumWantCap {
				t.Error(a.NumWant)
			}
		}},
		{"numwant garbage", okQuery + "&numwant=ten", tracker.ErrInvalidNumWant, nil},
		{"numwant minus alone", okQuery + "&numwant=-", tracker.ErrInvalidNumWant, nil},
		{"ip v4", okQuery + "&ip=10.1.2.3", nil, func(t *testing.T, _ *tracker.Announce, ex *AnnounceExtras) {
			if ex.IP != netip.MustParseAddr("10.1.2.3") {
				t.Error(ex.IP)
			}
		}},
		{"ip v6 escaped", okQuery + "&ip=2001%3adb8%3A%3A1", nil, func(t *testing.T, _ *tracker.Announce, ex *AnnounceExtras) {
			if ex.IP != netip.MustParseAddr("2001:db8::1") {
				t.Error(ex.IP)
			}
		}},
		{"ip mapped is unmapped", okQuery + "&ip=::ffff:10.0.0.1", nil, func(t *testing.T, _ *tracker.Announce, ex *AnnounceExtras) {
			if ex.IP != netip.MustParseAddr("10.0.0.1") {
				t.Error(ex.IP)
			}
		}},
		{"ip hostname ignored", okQuery + "&ip=example.com", nil, func(t *testing.T, _ *tracker.Announce, ex *AnnounceExtras) {
			if ex.IP.IsValid() {
				t.Error(ex.IP)
			}
		}},
		{"ip zone ignored", okQuery + "&ip=fe80::1%25eth0", nil, func(t *testing.T, _ *tracker.Announce, ex *AnnounceExtras) {
			if ex.IP.IsValid() {
				t.Error(ex.IP)
			}
		}},
		{"port 0 accepted", strings.Replace(okQuery, "port=6881", "port=0", 1), nil, nil},
		{"port max", strings.Replace(okQuery, "port=6881", "port=65535", 1), nil, nil},
		{"big counters", strings.Replace(okQuery, "uploaded=1", "uploaded=18446744073709551615", 1), nil,
			func(t *testing.T, a *tracker.Announce, _ *AnnounceExtras) {
				if a.Uploaded != 1<<64-1 {
					t.Error(a.Uploaded)
				}
			}},

		{"empty", "", tracker.ErrMissingInfoHash, nil},
		{"missing info_hash", strings.Replace(okQuery, "info_hash", "infohash", 1), tracker.ErrMissingInfoHash, nil},
		{"short info_hash", strings.Replace(okQuery, "aaaaaaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaaaaa", 1), tracker.ErrInvalidInfoHash, nil},
		{"long info_hash", strings.Replace(okQuery, "aaaaaaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaaaaaaa", 1), tracker.ErrInvalidInfoHash, nil},
		{"bad escape", strings.Replace(okQuery, "aaaaaaaaaaaaaaaaaaaa", "%zzaaaaaaaaaaaaaaaaaaa", 1), tracker.ErrInvalidInfoHash, nil},
		{"truncated escape", strings.Replace(okQuery, "info_hash=aaaaaaaaaaaaaaaaaaaa", "info_hash=aaaaaaaaaaaaaaaaaaa%a", 1), tracker.ErrInvalidInfoHash, nil},
		{"empty info_hash", strings.Replace(okQuery, "aaaaaaaaaaaaaaaaaaaa", "", 1), tracker.ErrInvalidInfoHash, nil},
		{"missing peer_id", strings.Replace(okQuery, "peer_id=bbbbbbbbbbbbbbbbbbbb&", "", 1), tracker.ErrMissingPeerID, nil},
		{"short peer_id", strings.Replace(okQuery, "bbbbbbbbbbbbbbbbbbbb", "bbbb", 1), tracker.ErrInvalidPeerID, nil},
		{"missing port", strings.Replace(okQuery, "port=6881&", "", 1), tracker.ErrMissingPort, nil},
		{"port too big", strings.Replace(okQuery, "port=6881", "port=65536", 1), tracker.ErrInvalidPort, nil},
		{"port negative", strings.Replace(okQuery, "port=6881", "port=-1", 1), tracker.ErrInvalidPort, nil},
		{"port empty", strings.Replace(okQuery, "port=6881", "port=", 1), tracker.ErrInvalidPort, nil},
		{"port garbage", strings.Replace(okQuery, "port=6881", "port=68a1", 1), tracker.ErrInvalidPort, nil},
		{"missing uploaded", strings.Replace(okQuery, "uploaded=1&", "", 1), tracker.ErrMissingUploaded, nil},
		{"uploaded negative", strings.Replace(okQuery, "uploaded=1", "uploaded=-1", 1), tracker.ErrInvalidUploaded, nil},
		{"uploaded overflow", strings.Replace(okQuery, "uploaded=1", "uploaded=18446744073709551616", 1), tracker.ErrInvalidUploaded, nil},
		{"uploaded plus sign", strings.Replace(okQuery, "uploaded=1", "uploaded=+1", 1), tracker.ErrInvalidUploaded, nil},
		{"missing downloaded", strings.Replace(okQuery, "downloaded=2&", "", 1), tracker.ErrMissingDownloaded, nil},
		{"downloaded garbage", strings.Replace(okQuery, "downloaded=2", "downloaded=2.5", 1), tracker.ErrInvalidDownloaded, nil},
		{"missing left", strings.Replace(okQuery, "&left=3", "", 1), tracker.ErrMissingLeft, nil},
		{"left garbage", strings.Replace(okQuery, "left=3", "left=x", 1), tracker.ErrInvalidLeft, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a tracker.Announce
			var ex AnnounceExtras
			err := ParseAnnounceExtras([]byte(tt.query), &a, &ex)
			if err != tt.err {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err == nil && tt.check != nil {
				tt.check(t, &a, &ex)
			}
			// ParseAnnounce agrees with ParseAnnounceExtras.
			var b tracker.Announce
			if err2 := ParseAnnounce([]byte(tt.query), &b); err2 != err || (err == nil && !reflect.DeepEqual(b, a)) {
				t.Errorf("ParseAnnounce: %v %+v, want %v %+v", err2, b, err, a)
			}
		})
	}
}

// A reused Announce carries nothing over from the previous request.
func TestParseAnnounceResets(t *testing.T) {
	var a tracker.Announce
	var ex AnnounceExtras
	if err := ParseAnnounceExtras([]byte(okQuery+"&event=stopped&numwant=5&compact=0&ip=1.2.3.4"), &a, &ex); err != nil {
		t.Fatal(err)
	}
	a.Passkey = []byte("kept")
	if err := ParseAnnounceExtras([]byte(okQuery), &a, &ex); err != nil {
		t.Fatal(err)
	}
	if a.Event != tracker.EventNone || a.NumWant != -1 || a.WantPeerID || !ex.Compact || ex.IP.IsValid() || string(a.Passkey) != "kept" {
		t.Errorf("%+v %+v", a, ex)
	}
}

func TestParseScrape(t *testing.T) {
	h := func(c byte) tracker.InfoHash { return tracker.InfoHash([]byte(strings.Repeat(string(c), 20))) }
	tests := []struct {
		query string
		want  []tracker.InfoHash
		err   error
	}{
		{"", nil, nil},
		{"passkey=x&foo", nil, nil},
		{"info_hash=aaaaaaaaaaaaaaaaaaaa", []tracker.InfoHash{h('a')}, nil},
		{"info_hash=aaaaaaaaaaaaaaaaaaaa&x=1&info_hash=%62bbbbbbbbbbbbbbbbbbb&info_hash=aaaaaaaaaaaaaaaaaaaa",
			[]tracker.InfoHash{h('a'), h('b'), h('a')}, nil},
		{"info_hash=aaaa", nil, tracker.ErrInvalidInfoHash},
		{"info_hash=aaaaaaaaaaaaaaaaaaaa&info_hash=%gaaaaaaaaaaaaaaaaaaa", nil, tracker.ErrInvalidInfoHash},
		{"info_hash", nil, nil}, // no '=': not an info_hash parameter
	}
	for _, tt := range tests {
		got, err := ParseScrape([]byte(tt.query), nil)
		if err != tt.err {
			t.Errorf("%q: err %v, want %v", tt.query, err, tt.err)
			continue
		}
		if err == nil && !equalHashes(got, tt.want) {
			t.Errorf("%q: %x, want %x", tt.query, got, tt.want)
		}
	}
	// dst is appended to.
	dst := []tracker.InfoHash{h('z')}
	got, _ := ParseScrape([]byte("info_hash=aaaaaaaaaaaaaaaaaaaa"), dst)
	if !equalHashes(got, []tracker.InfoHash{h('z'), h('a')}) {
		t.Errorf("%x", got)
	}
}

func equalHashes(a, b []tracker.InfoHash) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestParseAnnounceAllocs(t *testing.T) {
	var r *Request
	for _, v := range loadVectors(t) {
		if v.name == "aria2/1.36.0  announce event=started left>0" { // uppercase escapes, raw bytes
			r = readVector(t, v)
		}
	}
	q := bytes.Clone(r.Query)
	var a tracker.Announce
	var ex AnnounceExtras
	q2 := []byte(okQuery + "&ip=2001%3Adb8%3A%3A1")
	if n := testing.AllocsPerRun(100, func() {
		if err := ParseAnnounceExtras(q, &a, &ex); err != nil {
			t.Fatal(err)
		}
		if err := ParseAnnounceExtras(q2, &a, &ex); err != nil {
			t.Fatal(err)
		}
		if err := ParseAnnounce(q, &a); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocs per parse", n)
	}
	dst := make([]tracker.InfoHash, 0, 4)
	sq := []byte("info_hash=aaaaaaaaaaaaaaaaaaaa&info_hash=%62bbbbbbbbbbbbbbbbbbb")
	if n := testing.AllocsPerRun(100, func() {
		dst, _ = ParseScrape(sq, dst[:0])
	}); n != 0 {
		t.Errorf("%v allocs per scrape parse", n)
	}
}
