package httpfront_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/xbt-tracker/xbt-tracker/internal/conformance"
	"github.com/xbt-tracker/xbt-tracker/passkey"
	"github.com/xbt-tracker/xbt-tracker/tracker"
	"github.com/xbt-tracker/xbt-tracker/tracker/httpfront"
)

// mode is how a Server under test serves its connections.
type mode struct {
	name       string
	goroutines bool // Config.GoroutinePerConn
}

// modes: every server test runs against both ways of serving (the event
// loops exist on Linux only; elsewhere both rows serve by goroutines).
var modes = []mode{{"event-loops", false}, {"goroutine-per-conn", true}}

func TestServer(t *testing.T) {
	tests := []struct {
		name string
		fn   func(*testing.T, mode)
	}{
		{"KeepAliveReuse", testKeepAliveReuse},
		{"HTTP10", testHTTP10},
		{"Pipelined", testPipelined},
		{"Head", testHead},
		{"BadRequests", testBadRequests},
		{"FailureAnswers", testFailureAnswers},
		{"Slowloris", testSlowloris},
		{"TrustedProxies", testTrustedProxies},
		{"Deny", testDeny},
		{"ConnectionCap", testConnectionCap},
		{"ConnectionsPerIP", testConnectionsPerIP},
		{"AccessLog", testAccessLog},
		{"GzipFullScrape", testGzipFullScrape},
		{"RedirectAnd404", testRedirectAnd404},
		{"StatisticsAndMetrics", testStatisticsAndMetrics},
		{"AdminServer", testAdminServer},
		{"ShutdownInFlight", testShutdownInFlight},
		{"ShutdownDeadline", testShutdownDeadline},
		{"PanicRecovered", testPanicRecovered},
		{"NoLogPerRequest", testNoLogPerRequest},
		{"LargeFullScrape", testLargeFullScrape},
		{"SlowReader", testSlowReader},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) { tt.fn(t, m) })
			}
		})
	}
}

// newTracker returns a real tracker holding conformance's fixtures.
func newTracker(t *testing.T, tweak func(*tracker.Settings)) *tracker.Tracker {
	s := conformance.BaseSettings()
	if tweak != nil {
		tweak(&s)
	}
	return conformance.NewTracker(s, &conformance.Clock{})
}

type testServer struct {
	srv  *httpfront.Server
	addr string
	done chan error
}

func startServer(t *testing.T, m mode, trk *tracker.Tracker, cfg httpfront.Config) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.GoroutinePerConn = m.goroutines
	ts := &testServer{srv: httpfront.New(trk, cfg), addr: ln.Addr().String(), done: make(chan error, 1)}
	go func() { ts.done <- ts.srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ts.srv.Shutdown(ctx)
		if err := <-ts.done; !errors.Is(err, httpfront.ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	return ts
}

// rawConn is a hand-driven client connection.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func (ts *testServer) dial(t *testing.T) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (rc *rawConn) send(s string) {
	rc.t.Helper()
	if _, err := io.WriteString(rc.c, s); err != nil {
		rc.t.Fatal(err)
	}
}

// read reads one response; body is read fully.
func (rc *rawConn) read(method string) (*http.Response, []byte) {
	rc.t.Helper()
	resp, err := http.ReadResponse(rc.br, &http.Request{Method: method})
	if err != nil {
		rc.t.Fatalf("reading response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		rc.t.Fatalf("reading body: %v", err)
	}
	return resp, body
}

func (rc *rawConn) get(target string, headers ...string) (*http.Response, []byte) {
	rc.t.Helper()
	rc.send("GET " + target + " HTTP/1.1\r\nHost: t\r\n" + strings.Join(headers, "") + "\r\n")
	return rc.read("GET")
}

// wantClosed waits for the server to close the connection without
// sending anything.
func (rc *rawConn) wantClosed(within time.Duration) {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(within))
	buf := make([]byte, 512)
	n, err := rc.br.Read(buf)
	if n != 0 || err == nil || isTimeout(err) {
		rc.t.Fatalf("connection not closed: got %q, err=%v", buf[:n], err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func announcePath(uid uint32, h tracker.InfoHash, peer, port int, left uint64, extra string) string {
	pk := ""
	if uid != 0 {
		pk = "/" + passkey.Derive(conformance.Secret, 0, uid, h)
	}
	pid := conformance.PeerID(peer)
	return fmt.Sprintf("%s/announce?info_hash=%s&peer_id=%s&port=%d&uploaded=0&downloaded=0&left=%d%s",
		pk, url.QueryEscape(string(h[:])), url.QueryEscape(string(pid[:])), port, left, extra)
}

func decode(t *testing.T, body []byte) map[string]any {
	t.Helper()
	m, err := conformance.DecodeDict(body)
	if err != nil {
		t.Fatalf("%q: %v", body, err)
	}
	return m
}

func testKeepAliveReuse(t *testing.T, m mode) {
	trk := newTracker(t, nil)
	ts := startServer(t, m, trk, httpfront.Config{})
	rc := ts.dial(t)
	for i := 0; i < 5; i++ {
		resp, body := rc.get(announcePath(1, conformance.H1, 1, 6881, 0, "&event=started"))
		if resp.StatusCode != 200 || resp.Close || resp.Header.Get("Content-Type") != "text/plain" ||
			resp.ContentLength != int64(len(body)) {
			t.Fatalf("request %d: %v %v", i, resp.Status, resp.Header)
		}
		if m := decode(t, body); m["complete"] != int64(1) {
			t.Fatalf("request %d: %v", i, m)
		}
	}
	// Connection: close is honoured.
	resp, _ := rc.get("/announce", "Connection: close\r\n")
	if !resp.Close {
		t.Error("no Connection: close in the answer")
	}
	rc.wantClosed(time.Second)
}

func testHTTP10(t *testing.T, m mode) {
	ts := startServer(t, m, newTracker(t, nil), httpfront.Config{})
	rc := ts.dial(t)
	rc.send("GET /nothing-here HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	resp, body := rc.read("GET")
	if resp.Proto != "HTTP/1.0" || resp.StatusCode != 404 || resp.Header.Get("Connection") != "keep-alive" || string(body) != "not found\n" {
		t.Fatalf("%v %v %q", resp.Proto, resp.Header, body)
	}
	rc.send("GET " + announcePath(1, conformance.H1, 1, 6881, 0, "") + " HTTP/1.0\r\n\r\n")
	resp, body = rc.read("GET")
	if resp.Proto != "HTTP/1.0" || resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("%v %v %q", resp.Proto, resp.Header, body)
	}
	rc.wantClosed(time.Second)
}

func testPipelined(t *testing.T, m mode) {
	ts := startServer(t, m, newTracker(t, nil), httpfront.Config{})
	rc := ts.dial(t)
	one := "GET " + announcePath(1, conformance.H1, 1, 6881, 0, "") + " HTTP/1.1\r\n\r\n"
	rc.send(one + "GET /x HTTP/1.1\r\n\r\n" + one + "GET /statistics HTTP/1.1\r\nConnection: close\r\n\r\n")
	for i := range 4 {
		resp, body := rc.read("GET")
		want := []int{200, 404, 200, 404}[i]
		if resp.StatusCode != want {
			t.Errorf("response %d: %d %q, want %d", i, resp.StatusCode, body, want)
		}
	}
	rc.wantClosed(time.Second)
}

// HEAD is refused on every path as any method but GET is (405, Allow: GET,
// the connection closed), without a body, and changes nothing: a HEAD of an
// announce URL adds no peer.
func testHead(t *testing.T, m mode) {
	trk := newTracker(t, func(s *tracker.Settings) { s.FullScrape, s.AnonymousScrape = true, true })
	reg := prometheus.NewRegistry()
	ts := startServer(t, m, trk, httpfront.Config{Metrics: reg,
		Status: func() httpfront.StatusInfo { return httpfront.StatusInfo{Stats: trk.Stats()} }})
	reg.MustRegister(ts.srv.Collector())
	announce := announcePath(1, conformance.H1, 1, 6881, 0, "&event=started")
	for _, target := range []string{
		announce,
		announcePath(0, conformance.H1, 2, 6882, 10, ""), // anonymous /announce
		"/" + passkey.Derive(conformance.Secret, 0, 1, conformance.H1) + "/scrape?info_hash=" + url.QueryEscape(string(conformance.H1[:])),
		"/scrape",
		"/statistics",
		"/metrics",
		"/nothing",
		"/",
	} {
		rc := ts.dial(t)
		rc.send("HEAD " + target + " HTTP/1.1\r\nHost: t\r\n\r\n")
		resp, body := rc.read("HEAD")
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET" || !resp.Close || len(body) != 0 {
			t.Errorf("HEAD %s: %v %v %q", target, resp.Status, resp.Header, body)
		}
		rc.wantClosed(time.Second) // nothing after the head, and closed
	}
	if st := trk.Stats(); st.Peers != 0 || st.LedgerLen != 0 || st.AnnouncesOK+st.AnnouncesFailed+st.ScrapesOK+st.ScrapesFailed != 0 {
		t.Fatalf("after HEAD requests: %+v, want no peer, nothing to write, nothing counted", st)
	}
	metrics := scrapeMetrics(t, ts)
	for _, want := range []string{
		`xbt_http_requests_total{kind="announce",result="ok",server="tracker"} 0`,
		`xbt_http_requests_total{kind="other",result="bad_request",server="tracker"} 8`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q:\n%s", want, grep(metrics, "xbt_http_requests_total"))
		}
	}
	// The same URL with GET does announce: the check above can see a peer.
	if resp, _ := ts.dial(t).get(announce); resp.StatusCode != 200 || trk.Stats().Peers != 1 {
		t.Fatalf("GET after HEAD: %v, %+v", resp.Status, trk.Stats())
	}
}

func testBadRequests(t *testing.T, m mode) {
	ts := startServer(t, m, newTracker(t, nil), httpfront.Config{MaxRequestBytes: 512})
	tests := []struct {
		name, raw string
		status    int
		allow     bool
	}{
		{"oversize head", "GET /announce?" + strings.Repeat("x", 600) + " HTTP/1.1\r\n\r\n", 431, false},
		{"oversize headers", "GET / HTTP/1.1\r\n" + strings.Repeat("X-Pad: 0123456789\r\n", 40) + "\r\n", 431, false},
		{"POST", "POST /announce HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi", 405, true},
		{"body", "GET /announce HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi", 400, false},
		{"chunked", "GET /announce HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, false},
		{"garbage", "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n", 400, false},
		{"HTTP/2", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := ts.dial(t)
			rc.send(tt.raw)
			resp, _ := rc.read("GET")
			if resp.StatusCode != tt.status || !resp.Close || (resp.Header.Get("Allow") == "GET") != tt.allow {
				t.Errorf("%v %v", resp.Status, resp.Header)
			}
			rc.wantClosed(time.Second)
		})
	}
}

// A failure is HTTP 200 with a bencoded failure reason, and the connection
// stays usable.
func testFailureAnswers(t *testing.T, m mode) {
	ts := startServer(t, m, newTracker(t, nil), httpfront.Config{})
	rc := ts.dial(t)
	for _, tt := range []struct{ path, want string }{
		{"/announce?info_hash=short", "d14:failure reason17:invalid info_hashe"},
		{"/announce", "d14:failure reason17:missing info_hashe"},
		{strings.Replace(announcePath(1, conformance.H1, 1, 1, 0, ""), "port=1", "port=99999", 1), "d14:failure reason12:invalid porte"},
		{announcePath(0, conformance.H1, 1, 1, 0, ""), "d14:failure reason25:unregistered torrent passe"},
		{"/scrape?info_hash=%zz", "d14:failure reason17:invalid info_hashe"},
	} {
		resp, body := rc.get(tt.path)
		if resp.StatusCode != 200 || string(body) != tt.want || resp.Close {
			t.Errorf("%s: %v %q, want %q", tt.path, resp.Status, body, tt.want)
		}
	}
}

func testSlowloris(t *testing.T, m mode) {
	ts := startServer(t, m, newTracker(t, nil), httpfront.Config{ReadTimeout: 200 * time.Millisecond, IdleTimeout: 300 * time.Millisecond})
	// A head trickling in: cut after ReadTimeout, however many bytes come.
	rc := ts.dial(t)
	start := time.Now()
	rc.send("GET /announce HTTP/1.1\r\n")
	go func(c net.Conn) {
		for i := 0; i < 20; i++ {
			time.Sleep(50 * time.Millisecond)
			if _, err := io.WriteString(c, "X: y\r\n"); err != nil {
				return
			}
		}
	}(rc.c)
	rc.wantClosed(2 * time.Second)
	if d := time.Since(start); d < 150*time.Millisecond || d > 1500*time.Millisecond {
		t.Errorf("closed after %v, want about 200ms", d)
	}
	// Silent after connecting: closed after ReadTimeout.
	rc = ts.dial(t)
	rc.wantClosed(2 * time.Second)
	// Idle keep-alive: closed after IdleTimeout.
	rc = ts.dial(t)
	if resp, _ := rc.get("/x"); resp.StatusCode != 404 {
		t.Fatal(resp.Status)
	}
	start = time.Now()
	rc.wantClosed(2 * time.Second)
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("idle connection closed after %v, want IdleTimeout 300ms", d)
	}
}

// peersOf announces as a leecher and returns the peers it is given.
func peersOf(t *testing.T, rc *rawConn, h tracker.InfoHash) []netip.AddrPort {
	t.Helper()
	_, body := rc.get(announcePath(2, h, 99, 9999, 10, "&numwant=50"))
	a, err := conformance.ParseAnswer(decode(t, body), false)
	if err != nil || a.Failure != "" {
		t.Fatalf("%q: %v", body, err)
	}
	var out []netip.AddrPort
	for _, p := range a.Peers {
		out = append(out, p.Addr)
	}
	return out
}

func testTrustedProxies(t *testing.T, m mode) {
	trk := newTracker(t, nil)
	proxied := startServer(t, m, trk, httpfront.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	direct := startServer(t, m, trk, httpfront.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	spoof := "X-Forwarded-For: 198.51.100.1\r\nX-Real-IP: 198.51.100.2\r\n"

	rc := direct.dial(t)
	rc.get(announcePath(1, conformance.H1, 1, 1001, 0, "&ip=198.51.100.3"), spoof)
	if got := peersOf(t, rc, conformance.H1); fmt.Sprint(got) != "[127.0.0.1:1001]" {
		t.Errorf("untrusted connection: peers %v, want the socket address", got)
	}

	rc = proxied.dial(t)
	rc.get(announcePath(1, conformance.H2, 1, 1001, 0, ""),
		"X-Forwarded-For: 6.6.6.6, 203.0.113.7\r\nX-Forwarded-For: 127.0.0.5\r\nX-Real-IP: 198.51.100.2\r\n")
	rc.get(announcePath(1, conformance.H2, 2, 1002, 0, "&ip=198.51.100.3"), "X-Real-IP: 2001:db8::2\r\n")
	rc.get(announcePath(1, conformance.H2, 3, 1003, 0, "&ip=198.51.100.3"))
	rc.get(announcePath(1, conformance.H2, 4, 1004, 0, ""))
	got := peersOf(t, rc, conformance.H2)
	if want := "[127.0.0.1:1004 198.51.100.3:1003 203.0.113.7:1001 [2001:db8::2]:1002]"; fmt.Sprint(got) != want {
		t.Errorf("through a trusted proxy: peers %v, want %v", got, want)
	}
}

func testDeny(t *testing.T, m mode) {
	trk := newTracker(t, nil)
	var reg = prometheus.NewRegistry()
	proxied := startServer(t, m, trk, httpfront.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	direct := startServer(t, m, trk, httpfront.Config{Metrics: reg})
	reg.MustRegister(direct.srv.Collector())

	// Keep-alive connection opened before the ban.
	early := direct.dial(t)
	if resp, _ := early.get("/x"); resp.StatusCode != 404 {
		t.Fatal(resp.Status)
	}

	lo := uint32(127<<24 | 1)
	trk.SetDenyList(tracker.NewDenyList([][2]uint32{{lo, lo}, {198<<24 | 51<<16 | 100<<8, 198<<24 | 51<<16 | 100<<8 | 255}}, nil))

	// A denied socket address: closed at accept, no answer.
	rc := direct.dial(t)
	rc.send("GET " + announcePath(1, conformance.H1, 1, 1, 0, "") + " HTTP/1.1\r\n\r\n")
	rc.wantClosed(2 * time.Second)
	// Banned while connected: the next announce gets no answer either.
	early.send("GET " + announcePath(1, conformance.H1, 1, 1, 0, "") + " HTTP/1.1\r\n\r\n")
	early.wantClosed(2 * time.Second)

	// A denied address behind a trusted proxy: a failure reason.
	trk.SetDenyList(tracker.NewDenyList([][2]uint32{{198<<24 | 51<<16 | 100<<8, 198<<24 | 51<<16 | 100<<8 | 255}}, nil))
	rc = proxied.dial(t)
	_, body := rc.get(announcePath(1, conformance.H1, 1, 1, 0, ""), "X-Forwarded-For: 198.51.100.9\r\n")
	if want := "d14:failure reason26:access denied, host bannede"; string(body) != want {
		t.Errorf("%q, want %q", body, want)
	}
	_, body = rc.get("/scrape?info_hash="+url.QueryEscape(string(conformance.H1[:])), "X-Real-IP: 198.51.100.9\r\n")
	if want := "d14:failure reason26:access denied, host bannede"; string(body) != want {
		t.Errorf("scrape: %q, want %q", body, want)
	}
	if _, body = rc.get(announcePath(1, conformance.H1, 1, 1, 0, "")); bytes.Contains(body, []byte("failure")) {
		t.Errorf("proxy's own address wrongly denied: %q", body)
	}
	trk.SetDenyList(nil)
	metrics := scrapeMetrics(t, direct)
	if !strings.Contains(metrics, `xbt_http_rejected_connections_total{reason="denied",server="tracker"} 1`) {
		t.Errorf("rejected metric missing:\n%s", grep(metrics, "rejected"))
	}
}

func scrapeMetrics(t *testing.T, ts *testServer) string {
	t.Helper()
	resp, body := ts.dial(t).get("/metrics")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("%v %v", resp.Status, resp.Header)
	}
	return string(body)
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func testGzipFullScrape(t *testing.T, m mode) {
	trk := newTracker(t, func(s *tracker.Settings) { s.FullScrape, s.AnonymousScrape, s.GzipScrape = true, true, true })
	ts := startServer(t, m, trk, httpfront.Config{})
	rc := ts.dial(t)
	for i := 1; i <= 3; i++ {
		rc.get(announcePath(1, conformance.H1, i, 1000+i, 0, ""))
		rc.get(announcePath(1, conformance.H2, i, 1000+i, 10, ""))
	}
	resp, body := rc.get("/scrape", "Accept-Encoding: deflate, gzip, br, zstd\r\n")
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.ContentLength != int64(len(body)) {
		t.Fatalf("full scrape: %v", resp.Header)
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	files, err := conformance.ParseScrapeFiles(decode(t, plain))
	if err != nil || len(files) != 2 || files[conformance.H1].Complete != 3 || files[conformance.H2].Incomplete != 3 {
		t.Fatalf("%v %v", files, err)
	}
	// Without Accept-Encoding: plain, same content.
	resp, body2 := rc.get("/scrape")
	if resp.Header.Get("Content-Encoding") != "" || !bytes.Equal(body2, plain) {
		t.Errorf("plain full scrape: %v %q", resp.Header, body2)
	}
	// A scrape of named torrents is never gzipped.
	resp, _ = rc.get("/scrape?info_hash="+url.QueryEscape(string(conformance.H1[:])), "Accept-Encoding: gzip\r\n")
	if resp.Header.Get("Content-Encoding") != "" {
		t.Errorf("partial scrape gzipped")
	}
	// gzip_scrape off: plain.
	s := trk.Settings()
	s.GzipScrape = false
	trk.SetSettings(s)
	if resp, _ = rc.get("/scrape", "Accept-Encoding: gzip\r\n"); resp.Header.Get("Content-Encoding") != "" {
		t.Errorf("gzipped with gzip_scrape off")
	}
}

func testRedirectAnd404(t *testing.T, m mode) {
	trk := newTracker(t, nil)
	ts := startServer(t, m, trk, httpfront.Config{})
	rc := ts.dial(t)
	for _, p := range []string{"/", "/favicon.ico", "/0123456789abcdef0123456789abcdef/announcex", "/statistics", "/metrics", "/announce/"} {
		resp, body := rc.get(p)
		if resp.StatusCode != 404 || string(body) != "not found\n" {
			t.Errorf("%s: %v %q", p, resp.Status, body)
		}
	}
	s := trk.Settings()
	s.RedirectURL = "https://catalog.example/\r\nX-Evil: 1"
	trk.SetSettings(s)
	resp, _ := rc.get("/index.php")
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "https://catalog.example/X-Evil: 1" || resp.Header.Get("X-Evil") != "" {
		t.Errorf("%v %v", resp.Status, resp.Header)
	}
	// Tracker paths are not redirected.
	if resp, _ := rc.get("/announce"); resp.StatusCode != 200 {
		t.Error(resp.Status)
	}
}

func testStatisticsAndMetrics(t *testing.T, m mode) {
	trk := newTracker(t, nil)
	reg := prometheus.NewRegistry()
	started := time.Now().Add(-time.Hour)
	ts := startServer(t, m, trk, httpfront.Config{
		Metrics: reg,
		Status: func() httpfront.StatusInfo {
			return httpfront.StatusInfo{Stats: trk.Stats(), Started: started, LastFlush: time.Now(), ReloadErr: "db <gone>"}
		},
	})
	reg.MustRegister(ts.srv.Collector(), trk.Collector())
	rc := ts.dial(t)
	rc.get(announcePath(1, conformance.H1, 1, 1001, 0, ""))
	rc.get(announcePath(2, conformance.H1, 2, 1002, 10, ""))
	rc.get(announcePath(0, conformance.H1, 3, 1003, 10, "")) // refused
	rc.get("/announce?info_hash=x")                          // unparsable
	rc.get("/" + passkey.Derive(conformance.Secret, 0, 1, conformance.H1) + "/scrape?info_hash=" + url.QueryEscape(string(conformance.H1[:])))

	resp, body := rc.get("/statistics")
	page := string(body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("%v %v", resp.Status, resp.Header)
	}
	for _, want := range []string{
		`<th>torrents</th><td class="n">3</td>`, `<th>peers</th><td class="n">2</td>`,
		`<th>seeders</th><td class="n">1</td>`, `<th>leechers</th><td class="n">1</td>`,
		`<th>users</th><td class="n">2</td>`, `<th>announce requests</th><td class="n">4</td>`,
		`<th>scrape requests</th><td class="n">1</td>`, `<th>uptime</th><td>1h0m`,
		`<th>last flush</th><td>20`, `<th>last reload</th><td>never`, `db &lt;gone&gt;`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("statistics page lacks %q:\n%s", want, page)
		}
	}

	metrics := scrapeMetrics(t, ts)
	for _, want := range []string{
		`xbt_http_requests_total{kind="announce",result="ok",server="tracker"} 2`,
		`xbt_http_requests_total{kind="announce",result="failure",server="tracker"} 1`,
		`xbt_http_requests_total{kind="announce",result="bad_request",server="tracker"} 1`,
		`xbt_http_requests_total{kind="scrape",result="ok",server="tracker"} 1`,
		`xbt_http_requests_total{kind="statistics",result="ok",server="tracker"} 1`,
		`xbt_http_open_connections{server="tracker"} 2`,
		`# TYPE xbt_http_requests_total counter`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q:\n%s", want, grep(metrics, "xbt_http"))
		}
	}
}

func testAdminServer(t *testing.T, m mode) {
	trk := newTracker(t, nil)
	reg := prometheus.NewRegistry()
	main := httpfront.New(trk, httpfront.Config{GoroutinePerConn: m.goroutines})
	admin := startServer(t, m, trk, httpfront.Config{ServeAdmin: true, Metrics: reg,
		Status: func() httpfront.StatusInfo { return httpfront.StatusInfo{Stats: trk.Stats()} }})
	// Both servers' collectors fit in one registry.
	reg.MustRegister(main.Collector(), admin.srv.Collector())
	rc := admin.dial(t)
	for _, p := range []string{"/announce", announcePath(1, conformance.H1, 1, 1, 0, ""), "/scrape"} {
		if resp, _ := rc.get(p); resp.StatusCode != 404 {
			t.Errorf("%s on the admin server: %v", p, resp.Status)
		}
	}
	if resp, _ := rc.get("/statistics"); resp.StatusCode != 200 {
		t.Error(resp.Status)
	}
	if m := scrapeMetrics(t, admin); !strings.Contains(m, `xbt_http_requests_total{kind="other",result="ok",server="admin"} 3`) {
		t.Errorf("%s", grep(m, "xbt_http_requests_total"))
	}
}

func testShutdownInFlight(t *testing.T, m mode) {
	trk := newTracker(t, nil)
	entered, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httpfront.New(trk, httpfront.Config{GoroutinePerConn: m.goroutines, Status: func() httpfront.StatusInfo {
		if calls.Add(1) == 1 {
			close(entered)
			<-release
		}
		return httpfront.StatusInfo{}
	}})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	ts := &testServer{srv: srv, addr: ln.Addr().String()}

	idle := ts.dial(t)
	idle.get("/x")
	busy := ts.dial(t)
	busy.send("GET /statistics HTTP/1.1\r\n\r\n")
	<-entered

	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()
	idle.wantClosed(2 * time.Second) // idle keep-alive connections go at once
	if _, err := net.DialTimeout("tcp", ts.addr, time.Second); err == nil {
		// The listener is closed: a dial may still succeed on some systems
		// only if something else took the port; treat success as failure.
		t.Error("listener still accepting")
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	resp, body := busy.read("GET")
	if resp.StatusCode != 200 || !resp.Close || len(body) == 0 {
		t.Errorf("in-flight request: %v %v", resp.Status, resp.Header)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, httpfront.ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
	if err := srv.Serve(ln); !errors.Is(err, httpfront.ErrServerClosed) {
		t.Errorf("Serve after Shutdown: %v", err)
	}
}

func testShutdownDeadline(t *testing.T, m mode) {
	trk := newTracker(t, nil)
	release := make(chan struct{})
	defer close(release)
	inFlight := make(chan struct{}, 1)
	ts := startServer(t, m, trk, httpfront.Config{Status: func() httpfront.StatusInfo {
		select {
		case inFlight <- struct{}{}:
		default:
		}
		<-release
		return httpfront.StatusInfo{}
	}})
	busy := ts.dial(t)
	busy.send("GET /statistics HTTP/1.1\r\n\r\n")
	select { // the request is being served: Shutdown has something to wait for
	case <-inFlight:
	case <-time.After(5 * time.Second):
		t.Fatal("the /statistics request never reached its handler")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v", err)
	}
	busy.wantClosed(time.Second) // forced closed at the deadline
}

// A panic while serving closes that connection only, logged at warn with
// the remote address.
func testPanicRecovered(t *testing.T, m mode) {
	core, logs := observer.New(zap.WarnLevel)
	trk := newTracker(t, nil)
	ts := startServer(t, m, trk, httpfront.Config{Logger: zap.New(core),
		Status: func() httpfront.StatusInfo { panic("boom") }})
	rc := ts.dial(t)
	rc.send("GET /statistics HTTP/1.1\r\n\r\n")
	rc.wantClosed(2 * time.Second)
	if resp, _ := ts.dial(t).get(announcePath(1, conformance.H1, 1, 1, 0, "")); resp.StatusCode != 200 {
		t.Error("server not serving after a panic")
	}
	entries := logs.All()
	if len(entries) != 1 || entries[0].Level != zap.WarnLevel || entries[0].ContextMap()["remote"] != "127.0.0.1" ||
		entries[0].ContextMap()["panic"] != "boom" {
		t.Errorf("logs: %+v", entries)
	}
}

// Normal requests, failures and bad requests log nothing.
func testNoLogPerRequest(t *testing.T, m mode) {
	core, logs := observer.New(zap.DebugLevel)
	ts := startServer(t, m, newTracker(t, nil), httpfront.Config{Logger: zap.New(core)})
	rc := ts.dial(t)
	rc.get(announcePath(1, conformance.H1, 1, 1, 0, ""))
	rc.get("/announce?x")
	rc.get("/nothing")
	rc.send("POST / HTTP/1.1\r\n\r\n")
	rc.read("POST")
	if n := logs.Len(); n != 0 {
		t.Errorf("%d log lines: %+v", n, logs.All())
	}
}

// A full scrape far larger than the inline limit is written from its own
// buffer; framing stays right for the request pipelined behind it.
func testLargeFullScrape(t *testing.T, m mode) {
	const n = 3000
	trk := fullScrapeTracker(t, n, func(s *tracker.Settings) { s.GzipScrape = true })
	ts := startServer(t, m, trk, httpfront.Config{})
	rc := ts.dial(t)
	rc.send("GET /scrape HTTP/1.1\r\n\r\nGET /scrape HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\nGET /nothing HTTP/1.1\r\n\r\n")
	_, plain := rc.read("GET")
	resp, gz := rc.read("GET")
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatal(resp.Header)
	}
	if resp, _ := rc.read("GET"); resp.StatusCode != 404 {
		t.Fatalf("request after the scrapes: %v", resp.Status)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	unz, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(unz, plain) || len(plain) < 64<<10 {
		t.Fatalf("gzipped %d bytes -> %d, plain %d, %v", len(gz), len(unz), len(plain), err)
	}
	files, err := conformance.ParseScrapeFiles(decode(t, plain))
	if err != nil || len(files) != n {
		t.Fatalf("%d files, %v", len(files), err)
	}
}

// fullScrapeTracker returns a tracker with n torrents, one seeder each,
// full scrapes allowed, and tweak's settings.
func fullScrapeTracker(t *testing.T, n int, tweak func(*tracker.Settings)) *tracker.Tracker {
	trk := newTracker(t, func(s *tracker.Settings) {
		s.FullScrape, s.AnonymousScrape, s.AnonymousAnnounce, s.AutoRegister = true, true, true, true
		if tweak != nil {
			tweak(s)
		}
	})
	for i := 0; i < n; i++ {
		var a tracker.Announce
		copy(a.InfoHash[:], fmt.Sprintf("full-scrape-%08d", i))
		a.PeerID, a.Addr, a.Port, a.NumWant = conformance.PeerID(i), conformance.Addr4, 1, -1
		var out tracker.AnnounceResult
		if trk.Announce(&a, &out); out.Failure != "" {
			t.Fatal(out.Failure)
		}
	}
	return trk
}

// Answers larger than the socket takes at once: a client that reads late
// still gets all of them intact; one that does not read at all is cut off
// after WriteTimeout.
func testSlowReader(t *testing.T, m mode) {
	const requests = 30 // about 6 MB of answers: more than loopback buffers hold
	trk := fullScrapeTracker(t, 3000, nil)
	pipelined := strings.Repeat("GET /scrape HTTP/1.1\r\n\r\n", requests)

	ts := startServer(t, m, trk, httpfront.Config{})
	rc := ts.dial(t)
	rc.send(pipelined)
	time.Sleep(300 * time.Millisecond)
	_, first := rc.read("GET")
	if len(first) < 64<<10 {
		t.Fatalf("full scrape of %d bytes", len(first))
	}
	for i := 1; i < requests; i++ {
		if _, body := rc.read("GET"); !bytes.Equal(body, first) {
			t.Fatalf("answer %d differs: %d bytes, want %d", i, len(body), len(first))
		}
	}
	if resp, _ := rc.get("/nothing"); resp.StatusCode != 404 {
		t.Fatalf("after the slow reads: %v", resp.Status)
	}

	ts = startServer(t, m, trk, httpfront.Config{WriteTimeout: 200 * time.Millisecond})
	rc = ts.dial(t)
	rc.send(pipelined)
	time.Sleep(1500 * time.Millisecond)
	n, err := io.Copy(io.Discard, rc.br)
	if want := int64(requests * len(first)); n >= want {
		t.Errorf("a client that did not read got all %d bytes (%v): no write timeout", n, err)
	}
}
