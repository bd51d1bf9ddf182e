package httpfront_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
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

// dialFrom connects from a given loopback address (Linux routes all of
// 127.0.0.0/8 to lo, so 127.0.0.2 is a second client address).
func (ts *testServer) dialFrom(t *testing.T, local string) *rawConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp4", ts.addr)
	if err != nil {
		t.Skipf("cannot dial from %s: %v", local, err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

// metricsFrom reads /metrics over a new connection from local.
func (ts *testServer) metricsFrom(t *testing.T, local string) string {
	t.Helper()
	resp, body := ts.dialFrom(t, local).get("/metrics")
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %v", resp.Status)
	}
	return string(body)
}

// waitFor polls ok every 5 ms for at most d.
func waitFor(d time.Duration, ok func() bool) bool {
	for deadline := time.Now().Add(d); ; time.Sleep(5 * time.Millisecond) {
		if ok() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// At MaxConnections the connection idle longest is closed to make room for
// a new one; a connection with half a head or an answer pending is never
// evicted, and when no connection is idle the new one is closed unanswered.
func testConnectionCap(t *testing.T, m mode) {
	reg := prometheus.NewRegistry()
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	unblock := sync.OnceFunc(func() { close(release) })
	defer unblock() // also when the test stops early
	ts := startServer(t, m, newTracker(t, nil), httpfront.Config{MaxConnections: 2, Metrics: reg,
		Status: func() httpfront.StatusInfo {
			once.Do(func() { close(entered); <-release })
			return httpfront.StatusInfo{}
		}})
	reg.MustRegister(ts.srv.Collector())

	// The cap is full of idle keep-alive connections: a new client is
	// served, and a (idle longer than b) made room.
	a, b := ts.dial(t), ts.dial(t)
	a.get("/x")
	time.Sleep(20 * time.Millisecond) // a idle clearly longer than b
	b.get("/x")
	c := ts.dial(t)
	if resp, _ := c.get("/x"); resp.StatusCode != 404 {
		t.Fatalf("new connection at the cap: %v", resp.Status)
	}
	a.wantClosed(2 * time.Second)
	if resp, _ := b.get("/x"); resp.StatusCode != 404 {
		t.Fatalf("b: %v", resp.Status)
	}

	// b has half a head, c waits for its answer: nothing is idle.
	b.send("GET /x HTTP/1.1\r\n")
	c.send("GET /statistics HTTP/1.1\r\n\r\n")
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("/statistics not called")
	}
	if !waitFor(5*time.Second, func() bool { return ts.srv.IdleConnsForTest() == 0 }) {
		t.Fatalf("%d connections still idle", ts.srv.IdleConnsForTest())
	}
	d := ts.dial(t)
	d.send("GET /x HTTP/1.1\r\n\r\n")
	d.wantClosed(2 * time.Second)
	unblock()
	if resp, _ := c.read("GET"); resp.StatusCode != 200 {
		t.Fatalf("the request in flight: %v", resp.Status)
	}
	b.send("Host: t\r\n\r\n")
	if resp, _ := b.read("GET"); resp.StatusCode != 404 {
		t.Fatalf("the half-sent request: %v", resp.Status)
	}

	// A new connection again makes room (b and c are idle now).
	metrics := scrapeMetrics(t, ts)
	for _, want := range []string{
		`xbt_http_rejected_connections_total{reason="limit",server="tracker"} 1`,
		`xbt_http_evicted_connections_total{server="tracker"} 2`,
		`xbt_http_open_connections{server="tracker"} 2`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q:\n%s", want, grep(metrics, "connections"))
		}
	}
	// Once b and c close (one was evicted just now), nothing needs evicting.
	b.c.Close()
	c.c.Close()
	if !waitFor(2*time.Second, func() bool { open, _ := ts.srv.ConnCountsForTest(); return open == 1 }) {
		open, _ := ts.srv.ConnCountsForTest()
		t.Fatalf("%d connections counted open, want 1", open)
	}
	if m := scrapeMetrics(t, ts); !strings.Contains(m, `xbt_http_evicted_connections_total{server="tracker"} 2`) {
		t.Errorf("evicted with room to spare:\n%s", grep(m, "evicted"))
	}
}

// One address over MaxConnectionsPerIP is refused while another is still
// served; a trusted proxy's address is exempt.
func testConnectionsPerIP(t *testing.T, m mode) {
	const perIP = 3
	tests := []struct {
		name    string
		trusted []netip.Prefix
		refused bool // the flooding address's extra connection
	}{
		{"OverTheCap", nil, true},
		{"OtherProxyTrusted", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, true},
		{"TrustedProxyExempt", []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			ts := startServer(t, m, newTracker(t, nil), httpfront.Config{MaxConnectionsPerIP: perIP, TrustedProxies: tt.trusted, Metrics: reg})
			reg.MustRegister(ts.srv.Collector())
			var flood []*rawConn
			for i := 0; i < perIP; i++ {
				rc := ts.dialFrom(t, "127.0.0.2")
				if resp, _ := rc.get("/x"); resp.StatusCode != 404 {
					t.Fatalf("connection %d: %v", i, resp.Status)
				}
				flood = append(flood, rc)
			}
			for i := 0; i < 2; i++ {
				extra := ts.dialFrom(t, "127.0.0.2")
				extra.send("GET /x HTTP/1.1\r\n\r\n")
				if tt.refused {
					extra.wantClosed(2 * time.Second)
				} else if resp, _ := extra.read("GET"); resp.StatusCode != 404 {
					t.Fatalf("trusted proxy's extra connection: %v", resp.Status)
				}
			}
			// Another address is served meanwhile, up to its own cap.
			for i := 0; i < perIP; i++ {
				if resp, _ := ts.dialFrom(t, "127.0.0.1").get("/x"); resp.StatusCode != 404 {
					t.Fatalf("127.0.0.1, connection %d: %v", i, resp.Status)
				}
			}
			// The address's open connections are still served.
			if resp, _ := flood[0].get("/x"); resp.StatusCode != 404 {
				t.Fatal(resp.Status)
			}
			metrics := ts.metricsFrom(t, "127.0.0.3")
			want := `xbt_http_rejected_connections_total{reason="per_ip",server="tracker"} 0`
			if tt.refused {
				want = `xbt_http_rejected_connections_total{reason="per_ip",server="tracker"} 2`
			}
			if !strings.Contains(metrics, want) {
				t.Errorf("metrics lack %q:\n%s", want, grep(metrics, "rejected"))
			}
			if !tt.refused {
				return
			}
			// Once one of its connections closes, the address gets one more.
			flood[0].c.Close()
			served := waitFor(2*time.Second, func() bool {
				rc := ts.dialFrom(t, "127.0.0.2")
				rc.send("GET /x HTTP/1.1\r\n\r\n")
				rc.c.SetReadDeadline(time.Now().Add(time.Second))
				resp, err := http.ReadResponse(rc.br, nil)
				return err == nil && resp.StatusCode == 404
			})
			if !served {
				t.Fatal("no connection from 127.0.0.2 served after one closed")
			}
		})
	}
}

// log_access: one info line per request with the passkey masked, read
// from the live settings; none while it is off.
func testAccessLog(t *testing.T, m mode) {
	core, logs := observer.New(zap.DebugLevel)
	trk := newTracker(t, func(s *tracker.Settings) { s.LogAccess = true })
	ts := startServer(t, m, trk, httpfront.Config{Logger: zap.New(core),
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	pk := passkey.Derive(conformance.Secret, 0, 1, conformance.H1)
	announce := announcePath(1, conformance.H1, 1, 6881, 0, "")
	tests := []struct {
		name, method, target, header string
		status                       int
		path, failure, error, client string
	}{
		{"Announce", "GET", announce, "", 200, "/" + pk[:8] + "…/announce", "", "", ""},
		{"Refused", "GET", announcePath(0, conformance.H1, 2, 6882, 0, ""), "", 200, "/announce", "unregistered torrent pass", "", ""},
		{"Unparsable", "GET", "/" + pk + "/announce?info_hash=short", "", 200, "/" + pk[:8] + "…/announce", "invalid info_hash", "", ""},
		{"PasskeyElsewhere", "GET", "/x/" + pk + "/announce.php?a=" + pk, "", 404, "/x/" + pk[:8] + "…/announce.php", "", "", ""},
		{"Scrape", "GET", "/" + pk + "/scrape?info_hash=" + url.QueryEscape(string(conformance.H1[:])), "", 200, "/" + pk[:8] + "…/scrape", "", "", ""},
		{"Proxied", "GET", announcePath(1, conformance.H1, 3, 6883, 0, ""), "X-Forwarded-For: 203.0.113.7\r\n", 200, "/" + pk[:8] + "…/announce", "", "", "203.0.113.7"},
		{"HEAD", "HEAD", announce, "", 405, "/" + pk[:8] + "…/announce", "", "method not allowed", ""},
		{"POST", "", "/x", "", 405, "", "", "method not allowed", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs.TakeAll()
			rc := ts.dial(t)
			method := tt.method
			if method == "" {
				method = "POST"
			}
			rc.send(method + " " + tt.target + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" + tt.header + "\r\n")
			raw, err := io.ReadAll(rc.c) // the whole answer: the server closes after it
			if err != nil {
				t.Fatal(err)
			}
			entries := logs.TakeAll()
			if len(entries) != 1 {
				t.Fatalf("%d log lines, want 1: %+v", len(entries), entries)
			}
			e := entries[0]
			f := e.ContextMap()
			if e.Level != zap.InfoLevel || e.Message != "http request" {
				t.Errorf("entry %v %q", e.Level, e.Message)
			}
			wantFields := map[string]any{
				"remote": "127.0.0.1", "method": tt.method, "path": tt.path,
				"status": int64(tt.status), "bytes": int64(len(raw)),
			}
			for k, v := range map[string]string{"failure": tt.failure, "error": tt.error, "client": tt.client} {
				if v != "" {
					wantFields[k] = v
				}
			}
			for k, want := range wantFields {
				if got := f[k]; got != want {
					t.Errorf("%s = %#v, want %#v", k, got, want)
				}
			}
			for k := range f {
				if _, ok := wantFields[k]; !ok && k != "duration" {
					t.Errorf("unexpected field %s = %v", k, f[k])
				}
			}
			if d, ok := f["duration"].(time.Duration); !ok || d <= 0 {
				t.Errorf("duration = %#v", f["duration"])
			}
			if line := fmt.Sprint(e.Message, f); strings.Contains(line, pk) || strings.Contains(line, pk[8:]) {
				t.Errorf("the passkey is in the log: %s", line)
			}
		})
	}

	// Switched off at run time (xbt_config): nothing more is logged, and
	// switched on again, it logs again.
	s := trk.Settings()
	s.LogAccess = false
	trk.SetSettings(s)
	logs.TakeAll()
	rc := ts.dial(t)
	rc.get(announce)
	rc.get("/x")
	if n := logs.Len(); n != 0 {
		t.Errorf("log_access off: %d lines: %+v", n, logs.All())
	}
	s.LogAccess = true
	trk.SetSettings(s)
	rc.get("/x")
	if n := logs.Len(); n != 1 {
		t.Errorf("log_access on again: %d lines, want 1", n)
	}
}
