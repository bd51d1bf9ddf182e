package httpfront

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

func TestAppendMaskedPath(t *testing.T) {
	pk := "0000002a0123456789abcdef01234567"
	tests := []struct{ path, want string }{
		{"/" + pk + "/announce", "/0000002a…/announce"},
		{"/" + pk + "/scrape", "/0000002a…/scrape"},
		{"/announce", "/announce"},
		{"/statistics", "/statistics"},
		{"/", "/"},
		{"", ""},
		{"/a/" + pk + "x/b/" + pk, "/a/0000002a…/b/0000002a…"},
		{"/" + pk[:31] + "/announce", "/0000002a…/announce"}, // a damaged passkey too
		{"/0123456789abcdef/x", "/0123456789abcdef/x"},       // 16 bytes: kept
		{"//" + pk + "%2Fannounce", "//0000002a…"},
	}
	for _, tt := range tests {
		got := string(appendMaskedPath(nil, []byte(tt.path)))
		if got != tt.want {
			t.Errorf("%q: %q, want %q", tt.path, got, tt.want)
		}
		if strings.Contains(tt.path, pk[:31]) && strings.Contains(got, pk[8:16]) {
			t.Errorf("%q: passkey left in %q", tt.path, got)
		}
	}
}

// The per-address counts are dropped when the connections close, whether
// admitted or refused: the map does not grow with every address ever seen.
func TestPerIPCountsReleased(t *testing.T) {
	for _, goroutines := range []bool{false, true} {
		s := New(tracker.New(tracker.Settings{}, tracker.Options{}), Config{GoroutinePerConn: goroutines, MaxConnectionsPerIP: 2})
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- s.Serve(ln) }()
		var conns []net.Conn
		for _, from := range []string{"127.0.0.2", "127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.1"} {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
			c, err := d.Dial("tcp4", ln.Addr().String())
			if err != nil {
				t.Skipf("cannot dial from %s: %v", from, err)
			}
			conns = append(conns, c)
		}
		wait := func(wantOpen int64, wantAddrs int) {
			t.Helper()
			var open int64
			var addrs int
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				if open, addrs = s.ConnCountsForTest(); open == wantOpen && addrs == wantAddrs {
					return
				}
			}
			t.Fatalf("GoroutinePerConn=%v: %d open, %d addresses; want %d, %d", goroutines, open, addrs, wantOpen, wantAddrs)
		}
		wait(4, 3) // the third from 127.0.0.2 is refused
		for _, c := range conns {
			c.Close()
		}
		wait(0, 0)
		s.Shutdown(t.Context())
		<-done
	}
}
