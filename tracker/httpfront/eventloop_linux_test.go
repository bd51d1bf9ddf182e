package httpfront

import (
	"net"
	"testing"
	"time"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// On Linux a TCP listener is served by the event loops unless
// GoroutinePerConn says otherwise: the shared server tests cover both only
// if this holds.
func TestEventLoopsServeTCPListeners(t *testing.T) {
	for _, goroutines := range []bool{false, true} {
		trk := tracker.New(tracker.Settings{}, tracker.Options{})
		s := New(trk, Config{GoroutinePerConn: goroutines})
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- s.Serve(ln) }()
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		var loopConns, goConns int
		for deadline := time.Now().Add(2 * time.Second); loopConns+goConns == 0 && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
			s.mu.Lock()
			for sc := range s.conns {
				if sc.nc == nil && sc.fd >= 0 {
					loopConns++
				} else {
					goConns++
				}
			}
			s.mu.Unlock()
		}
		c.Close()
		if goroutines && (goConns != 1 || loopConns != 0) || !goroutines && (loopConns != 1 || goConns != 0) {
			t.Errorf("GoroutinePerConn=%v: %d loop connections, %d goroutine connections", goroutines, loopConns, goConns)
		}
		s.Shutdown(t.Context())
		<-done
	}
}
