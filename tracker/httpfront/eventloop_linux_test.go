package httpfront

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
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
		// The start of a request: with TCP_DEFER_ACCEPT the loops see a
		// connection once bytes arrive.
		if _, err := c.Write([]byte("GET /")); err != nil {
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

// startLoopServer serves an empty tracker with cfg on a new loopback
// listener with event loops.
func startLoopServer(t *testing.T, cfg Config) (*Server, net.Listener, chan error) {
	t.Helper()
	s := New(tracker.New(tracker.Settings{}, tracker.Options{}), cfg)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	return s, ln, done
}

// A new connection per request, as real clients announce: each is
// accepted by a loop, answered and closed, and none is left open (no
// descriptor, epoll entry or admission slot leaks).
func TestEventLoopConnectionPerRequest(t *testing.T) {
	s, ln, done := startLoopServer(t, Config{})
	defer func() { s.Shutdown(t.Context()); <-done }()
	for i := range 300 {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if _, err := br.ReadByte(); err != io.EOF {
			t.Fatalf("request %d: connection not closed after Connection: close (%v)", i, err)
		}
		c.Close()
	}
	for deadline := time.Now().Add(2 * time.Second); s.open.Load() != 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if n := s.open.Load(); n != 0 {
		t.Errorf("%d connections still admitted after every client closed", n)
	}
}

// Closing the listener (its owner's way to stop, not Shutdown) stops the
// loops accepting at once, even while one of them is busy with a request
// (its duplicate of the socket stays open until it is free), and Serve
// returns net.ErrClosed as Accept would.
func TestEventLoopListenerClosedByOwner(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	s, ln, done := startLoopServer(t, Config{Status: func() StatusInfo {
		close(entered)
		<-release
		return StatusInfo{}
	}})
	defer s.Shutdown(t.Context())
	addr := ln.Addr().String()
	busy, err := net.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if _, err := io.WriteString(busy, "GET /statistics HTTP/1.1\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	<-entered // a loop is stuck in the handler
	defer close(release)
	ln.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Serve returned %v, want net.ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Serve still running 2 s after its listener was closed")
	}
	if c, err := net.DialTimeout("tcp4", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("a connection to the closed listener succeeded while a loop was busy")
	}
}
