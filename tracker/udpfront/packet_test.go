package udpfront

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	cf "github.com/xbt-tracker/xbt-tracker/internal/conformance"
	"github.com/xbt-tracker/xbt-tracker/tracker"
)

const testPK = "0000000174b2c05f1a760db474cd76fa"

func TestParseAnnounce(t *testing.T) {
	a := ann{InfoHash: cf.H1, PeerID: cf.PeerID(7), Downloaded: 1 << 40, Left: 12345, Uploaded: 99,
		Event: 2, IP: [4]byte{1, 2, 3, 4}, Key: 0xdeadbeef, NumWant: 80, Port: 6881}
	pkt := announcePacket(0x1122334455667788, 0xcafebabe, a.withPath("/"+testPK+"/announce?x=1"))
	var r Request
	if err := ParsePacket(pkt, &r); err != nil {
		t.Fatal(err)
	}
	if r.ConnectionID != 0x1122334455667788 || r.Action != ActionAnnounce || r.TransactionID != 0xcafebabe ||
		r.InfoHash != cf.H1 || r.PeerID != cf.PeerID(7) || r.Downloaded != 1<<40 || r.Left != 12345 ||
		r.Uploaded != 99 || r.Event != tracker.EventStarted || r.IP != [4]byte{1, 2, 3, 4} ||
		r.Key != 0xdeadbeef || r.NumWant != 80 || r.Port != 6881 || r.Options != 1 {
		t.Errorf("%+v", r)
	}
	if string(r.URLData) != "/"+testPK+"/announce?x=1" {
		t.Errorf("URLData %q", r.URLData)
	}
	if pk := PasskeyFromURLData(r.URLData); string(pk) != testPK {
		t.Errorf("passkey %q", pk)
	}
	for code, ev := range []tracker.Event{tracker.EventNone, tracker.EventCompleted, tracker.EventStarted, tracker.EventStopped} {
		a.Event = uint32(code)
		if err := ParsePacket(announcePacket(1, 1, a), &r); err != nil || r.Event != ev {
			t.Errorf("event code %d: %v %v", code, r.Event, err)
		}
	}
	a.Event = 0
	for _, nw := range []int32{-1, -2, -1 << 31} {
		a.NumWant = nw
		if err := ParsePacket(announcePacket(1, 1, a), &r); err != nil || r.NumWant != -1 {
			t.Errorf("num_want %d: %d %v", nw, r.NumWant, err)
		}
	}
	// A reused Request starts clean.
	if err := ParsePacket(announcePacket(1, 1, a), &r); err != nil || len(r.URLData) != 0 || r.Options != 0 {
		t.Errorf("URL data %q options %d left from a previous packet", r.URLData, r.Options)
	}
}

func TestParseErrors(t *testing.T) {
	ok := announcePacket(1, 1, ann{InfoHash: cf.H1})
	neg := func(off int) []byte {
		p := bytes.Clone(ok)
		binary.BigEndian.PutUint64(p[off:], 1<<63)
		return p
	}
	event := bytes.Clone(ok)
	binary.BigEndian.PutUint32(event[80:], 4)
	unknown := bytes.Clone(ok)
	binary.BigEndian.PutUint32(unknown[8:], 7)
	badMagic := connectPacket(1)
	badMagic[0] = 1
	for _, c := range []struct {
		name string
		pkt  []byte
		err  error
	}{
		{"empty", nil, ErrShort},
		{"15 bytes", ok[:15], ErrShort},
		{"truncated announce", ok[:97], tracker.ErrTruncatedAnnounce},
		{"bad magic", badMagic, ErrBadMagic},
		{"unknown action", unknown, ErrUnknownAction},
		{"invalid event", event, tracker.ErrInvalidEvent},
		{"negative downloaded", neg(56), tracker.ErrInvalidDownloaded},
		{"negative left", neg(64), tracker.ErrInvalidLeft},
		{"negative uploaded", neg(72), tracker.ErrInvalidUploaded},
		{"option without length", append(bytes.Clone(ok), optURLData), tracker.ErrMalformedOptions},
		{"unknown option without length", append(bytes.Clone(ok), 0x42), tracker.ErrMalformedOptions},
		{"URLData past the end", append(bytes.Clone(ok), optURLData, 3, 'a', 'b'), tracker.ErrMalformedOptions},
		{"empty scrape", scrapePacket(1, 1), tracker.ErrMissingInfoHash},
		{"scrape of 19 bytes", append(scrapePacket(1, 1), make([]byte, 19)...), tracker.ErrMissingInfoHash},
	} {
		var r Request
		if err := ParsePacket(c.pkt, &r); err != c.err {
			t.Errorf("%s: %v, want %v", c.name, err, c.err)
		}
	}
}

func TestParseOptionsBounded(t *testing.T) {
	// 1000 NOPs and a URLData: every byte read once.
	base := announcePacket(1, 1, ann{})
	opts := append(bytes.Repeat([]byte{optNOP}, 1000), urlDataOption("/"+testPK+"/announce")...)
	var r Request
	if err := ParsePacket(append(base, opts...), &r); err != nil {
		t.Fatal(err)
	}
	if r.Options != 1001 || string(PasskeyFromURLData(r.URLData)) != testPK {
		t.Errorf("options %d URL data %q", r.Options, r.URLData)
	}
	// URL data is capped at MaxURLData.
	opts = nil
	for range 10 {
		opts = append(opts, optURLData, 255)
		opts = append(opts, bytes.Repeat([]byte{'a'}, 255)...)
	}
	if err := ParsePacket(append(base, opts...), &r); err != nil || len(r.URLData) != MaxURLData {
		t.Errorf("%d bytes of URL data, %v", len(r.URLData), err)
	}
}

func TestParseScrape(t *testing.T) {
	var r Request
	pkt := append(scrapePacket(5, 6, cf.H1, cf.H2, cf.H1), 1, 2, 3) // trailing bytes ignored
	if err := ParsePacket(pkt, &r); err != nil {
		t.Fatal(err)
	}
	if r.ConnectionID != 5 || r.TransactionID != 6 || len(r.InfoHashes) != 3 ||
		r.InfoHashes[0] != cf.H1 || r.InfoHashes[1] != cf.H2 || r.InfoHashes[2] != cf.H1 {
		t.Errorf("%+v", r)
	}
}

func TestPasskeyFromURLData(t *testing.T) {
	for in, want := range map[string]string{
		"/" + testPK + "/announce":         testPK,
		"/" + testPK + "/announce?a=b":     testPK,
		"/" + testPK:                       testPK,
		"/" + testPK + "?x":                testPK,
		"/" + testPK + "/":                 testPK,
		"/" + testPK + "x/announce":        "",
		"/" + testPK[:31] + "/announce":    "",
		"/announce":                        "",
		"":                                 "",
		"announce/" + testPK:               "",
		testPK + "/announce":               "",
		"/announce?passkey=" + testPK:      "",
		"/0123456789/123456789012345/7890": "",
		"?/" + testPK + "/announce":        "",
	} {
		if got := string(PasskeyFromURLData([]byte(in))); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

func TestAppendAnswers(t *testing.T) {
	if got := AppendConnect(nil, 0x01020304, 0x0a0b0c0d0e0f1011); !bytes.Equal(got,
		[]byte{0, 0, 0, 0, 1, 2, 3, 4, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11}) {
		t.Errorf("connect %x", got)
	}
	if got := AppendError(nil, 7, "unregistered torrent"); !bytes.Equal(got,
		append([]byte{0, 0, 0, 3, 0, 0, 0, 7}, "unregistered torrent"...)) {
		t.Errorf("error %x", got)
	}
	r := tracker.AnnounceResult{Interval: 1800, Complete: 3, Incomplete: 2,
		Peers4: []byte{1, 2, 3, 4, 0, 80, 5, 6, 7, 8, 1, 0},
		Peers6: bytes.Repeat([]byte{9}, 36)}
	got := AppendAnnounce(nil, 9, &r, false, 100)
	want := []byte{0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0x07, 0x08, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 0, 80, 5, 6, 7, 8, 1, 0}
	if !bytes.Equal(got, want) {
		t.Errorf("IPv4 announce %x\nwant %x", got, want)
	}
	if got := AppendAnnounce(nil, 9, &r, true, 100); !bytes.Equal(got[20:], r.Peers6) || len(got) != 20+36 {
		t.Errorf("IPv6 announce %x", got)
	}
	if got := AppendAnnounce(nil, 9, &r, false, 1); len(got) != 26 {
		t.Errorf("maxPeers 1: %d bytes", len(got))
	}
	r.Incomplete = 1 << 40
	if got := AppendAnnounce(nil, 9, &r, false, 0); binary.BigEndian.Uint32(got[12:]) != 1<<31-1 {
		t.Errorf("leechers not clamped: %x", got)
	}
	r.Failure = tracker.ErrWaitTime
	if got := AppendAnnounce(nil, 9, &r, false, 100); !bytes.Equal(got, AppendError(nil, 9, string(r.Failure))) {
		t.Errorf("failure %x", got)
	}

	files := []tracker.ScrapeFile{{InfoHash: cf.H1, Complete: 1, Downloaded: 2, Incomplete: 3},
		{InfoHash: cf.H2, Complete: 4, Downloaded: 5, Incomplete: 6}}
	if cmpHash(&files[0].InfoHash, &files[1].InfoHash) >= 0 {
		t.Fatal("fixture not sorted")
	}
	sr := tracker.ScrapeResult{Files: files}
	got = AppendScrape(nil, 4, []tracker.InfoHash{cf.H2, cf.Unknown, cf.H1, cf.H2}, &sr)
	want = []byte{0, 0, 0, 2, 0, 0, 0, 4,
		0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0, 6,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3,
		0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0, 6}
	if !bytes.Equal(got, want) {
		t.Errorf("scrape %x\nwant %x", got, want)
	}
}

func TestConnIDs(t *testing.T) {
	clock := newFakeClock()
	ids := newConnIDs(nil, DefaultConnIDWindow, clock.Now)
	a := netip.MustParseAddrPort("192.0.2.1:6881")
	id := ids.issue(a)
	if !ids.valid(id, a) {
		t.Fatal("fresh id refused")
	}
	// The same client through a dual-stack socket.
	mapped := netip.AddrPortFrom(netip.AddrFrom16(a.Addr().As16()), a.Port())
	if ids.issue(mapped) != id || !ids.valid(id, mapped) {
		t.Error("IPv4-mapped address gets another id")
	}
	for _, other := range []string{"192.0.2.1:6882", "192.0.2.2:6881", "[2001:db8::1]:6881", "[::ffff:192.0.2.2]:6881"} {
		if ids.valid(id, netip.MustParseAddrPort(other)) {
			t.Errorf("id valid from %s", other)
		}
	}
	if newConnIDs(nil, DefaultConnIDWindow, clock.Now).valid(id, a) {
		t.Error("id valid under another random key")
	}
	k1 := newConnIDs([]byte("k"), DefaultConnIDWindow, clock.Now)
	k2 := newConnIDs([]byte("k"), DefaultConnIDWindow, clock.Now)
	if k1.issue(a) != k2.issue(a) {
		t.Error("a given key is not deterministic")
	}
	// Lifetime: issued 30 s into a window, valid until the end of the next.
	clock.Advance(DefaultConnIDWindow + DefaultConnIDWindow - 31e9)
	if !ids.valid(id, a) {
		t.Error("id refused in the next window")
	}
	clock.Advance(1e9)
	if ids.valid(id, a) {
		t.Error("id valid two windows later")
	}
	// Distinct windows give distinct ids.
	if ids.issue(a) == id {
		t.Error("id unchanged across windows")
	}
}

// A zero clock (or one before 1970) does not break ids.
func TestConnIDsEarlyClock(t *testing.T) {
	ids := newConnIDs(nil, 0, func() time.Time { return time.Time{} })
	a := netip.MustParseAddrPort("[::1]:1")
	if !ids.valid(ids.issue(a), a) {
		t.Error("refused")
	}
}

// SipHash-2-4 against the reference vectors (key 00..0f, message 00..n-1;
// n = 0 and 1 are in the paper, the others from OpenSSL's SIPHASH MAC).
func TestSipHash24(t *testing.T) {
	k0, k1 := uint64(0x0706050403020100), uint64(0x0f0e0d0c0b0a0908)
	for n, want := range map[int]uint64{
		0: 0x726fdb47dd0e0e31, 1: 0x74f839c593dc67fd, 7: 0xab0200f58b01d137,
		8: 0x93f5f5799a932462, 15: 0xa129ca6149be45e5, 26: 0x17d835b85bbb15f3,
		63: 0x958a324ceb064572,
	} {
		m := make([]byte, n)
		for i := range m {
			m[i] = byte(i)
		}
		if got := siphash24(k0, k1, m); got != want {
			t.Errorf("%d bytes: %#x, want %#x", n, got, want)
		}
	}
}
