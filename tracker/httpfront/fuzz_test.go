package httpfront

import (
	"bufio"
	"bytes"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

func seedHeads(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add([]byte(v.raw))
	}
	for _, s := range []string{
		"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"HEAD /scrape?info_hash=%41 HTTP/1.1\nX-Forwarded-For: 1.2.3.4, [::1]:80\nX-Real-IP: ::ffff:1.2.3.4\n\n",
		"GET http://h/announce?x HTTP/1.1\r\nAccept-Encoding: gzip;q=0, x-gzip;q=0.1\r\n\r\n",
		"\r\nGET / HTTP/1.1\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST / HTTP/1.1\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
}

// ReadRequest never panics, never reads past maxHead bytes, and gives the same result
// whatever the bufio.Reader's buffer size. Accepted heads are sane, and
// their proxy headers go through ClientAddr without trouble.
func FuzzReadRequest(f *testing.F) {
	seedHeads(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		const maxHead = 1024
		var r1, r2 Request
		br1 := bufio.NewReaderSize(bytes.NewReader(data), 16)
		br2 := bufio.NewReaderSize(bytes.NewReader(data), 4096)
		err1 := ReadRequest(br1, maxHead, &r1)
		err2 := ReadRequest(br2, maxHead, &r2)
		if err1 != err2 {
			// Transport errors are plain values here (EOF, ErrUnexpectedEOF)
			// or *HeadError pointers: compare them as they are.
			t.Fatalf("buffer size changes the outcome: %v vs %v", err1, err2)
		}
		if err1 != nil {
			return
		}
		if r1.Method != r2.Method || !bytes.Equal(r1.Path, r2.Path) || !bytes.Equal(r1.Query, r2.Query) ||
			(r1.Query == nil) != (r2.Query == nil) || r1.KeepAlive != r2.KeepAlive || r1.AcceptGzip != r2.AcceptGzip ||
			!bytes.Equal(r1.XForwardedFor, r2.XForwardedFor) || !bytes.Equal(r1.XRealIP, r2.XRealIP) {
			t.Fatalf("buffer size changes the request: %+v vs %+v", r1, r2)
		}
		consumed := len(data) - br2.Buffered()
		if consumed > maxHead {
			t.Fatalf("read %d head bytes, max %d", consumed, maxHead)
		}
		if r1.Method != "GET" && r1.Method != "HEAD" || len(r1.Path) == 0 || r1.Path[0] != '/' ||
			r1.ProtoMinor > 1 || bytes.ContainsAny(r1.Path, " ?#\r\n") {
			t.Fatalf("bad request accepted: %+v", r1)
		}
		all := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
		if a, _ := ClientAddr(netip.MustParseAddr("10.0.0.1"), all, r1.XForwardedFor, r1.XRealIP, netip.Addr{}); !a.IsValid() || a.Is4In6() {
			t.Fatalf("ClientAddr gave %v", a)
		}
		if _, k, ok := trackerPath(r1.Path); ok && k == kindAnnounce {
			var a tracker.Announce
			ParseAnnounceExtras(r1.Query, &a, new(AnnounceExtras))
		}
	})
}

func seedQueries(f *testing.F) {
	for _, v := range loadVectors(f) {
		r := readVector(f, v)
		f.Add(bytes.Clone(r.Query))
	}
	for _, s := range []string{
		okQuery,
		okQuery + "&numwant=99999999999999999999&compact=0&no_peer_id=1&event=paused&ip=%3A%3Affff%3A1.2.3.4",
		"info_hash=%ZZ", "info_hash=+++++++++++++++++++%", "&&&==&=", "port=65536", "numwant=-",
	} {
		f.Add([]byte(s))
	}
}

// ParseAnnounce never panics, and when it accepts a query its info_hash and
// peer_id agree with net/url's reading of the same query.
func FuzzParseAnnounce(f *testing.F) {
	seedQueries(f)
	f.Fuzz(func(t *testing.T, q []byte) {
		var a tracker.Announce
		var ex AnnounceExtras
		err := ParseAnnounceExtras(q, &a, &ex)
		var b tracker.Announce
		if err2 := ParseAnnounce(q, &b); err2 != err {
			t.Fatalf("ParseAnnounce %v, ParseAnnounceExtras %v", err2, err)
		}
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty failure reason")
			}
			return
		}
		if a.NumWant < -1 || a.NumWant > NumWantCap {
			t.Fatalf("numwant %d", a.NumWant)
		}
		if ex.IP.IsValid() && ex.IP.Is4In6() {
			t.Fatalf("ip %v not unmapped", ex.IP)
		}
		// net/url as an oracle, where its rules and ours coincide: no
		// escaped names (we match names as sent) and no ';' (it refuses).
		if bytes.IndexByte(q, ';') >= 0 || escapedName(q) {
			return
		}
		v, err := url.ParseQuery(string(q))
		if err != nil {
			return // a bad escape in a parameter we ignore
		}
		if got := v.Get("info_hash"); got != string(a.InfoHash[:]) {
			t.Fatalf("info_hash %q, net/url says %q", a.InfoHash[:], got)
		}
		if got := v.Get("peer_id"); got != string(a.PeerID[:]) {
			t.Fatalf("peer_id %q, net/url says %q", a.PeerID[:], got)
		}
	})
}

func escapedName(q []byte) bool {
	for _, kv := range strings.Split(string(q), "&") {
		name, _, _ := strings.Cut(kv, "=")
		if strings.ContainsAny(name, "%+") {
			return true
		}
	}
	return false
}

// ParseScrape never panics and returns one hash per info_hash parameter.
func FuzzParseScrape(f *testing.F) {
	seedQueries(f)
	f.Add([]byte("info_hash=aaaaaaaaaaaaaaaaaaaa&info_hash=%62bbbbbbbbbbbbbbbbbbb"))
	f.Fuzz(func(t *testing.T, q []byte) {
		hs, err := ParseScrape(q, nil)
		if err != nil {
			if err != tracker.ErrInvalidInfoHash {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		n := 0
		for _, kv := range bytes.Split(q, []byte("&")) {
			if bytes.HasPrefix(kv, []byte("info_hash=")) {
				n++
			}
		}
		if len(hs) != n {
			t.Fatalf("%d hashes for %d info_hash parameters", len(hs), n)
		}
		// Re-encoding what was decoded reads back the same.
		var enc []byte
		for i, h := range hs {
			if i > 0 {
				enc = append(enc, '&')
			}
			enc = append(enc, "info_hash="+url.QueryEscape(string(h[:]))...)
		}
		back, err := ParseScrape(enc, nil)
		if err != nil || !equalHashes(back, hs) {
			t.Fatalf("round trip: %x -> %q -> %x, %v", hs, enc, back, err)
		}
	})
}
