// The Server: its Config, New, Serve (the accept loop) and Shutdown.

package httpfront

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// Defaults for the zero values of Config.
const (
	DefaultMaxRequestBytes = 8192
	DefaultMaxConnections  = 16384
	DefaultReadTimeout     = 10 * time.Second
	DefaultIdleTimeout     = 60 * time.Second
	DefaultWriteTimeout    = 10 * time.Second
)

// DefaultMaxConnectionsPerIP is MaxConnectionsPerIP's default (that of
// max_connections_per_ip).
const DefaultMaxConnectionsPerIP = 256

// Config tunes a Server. Zero values take the defaults above.
type Config struct {
	// MaxRequestBytes caps a request head (request line and headers);
	// larger heads get 431 and the connection is closed.
	MaxRequestBytes int
	// MaxConnections caps open connections. At the cap, the connections
	// idle longest (waiting for a request, nothing half-read, no answer
	// pending) are closed to make room, a batch at a time (counted as
	// evicted); when none is idle, the new connection is accepted and
	// closed at once (counted as rejected, reason "limit").
	MaxConnections int
	// MaxConnectionsPerIP caps the open connections of one socket address
	// (IPv4-mapped IPv6 counts as IPv4); over it a new connection is
	// accepted and closed at once (counted as rejected, reason "per_ip"),
	// whatever MaxConnections allows. Addresses inside TrustedProxies are
	// exempt: a proxy carries many clients. Negative: no cap.
	MaxConnectionsPerIP int
	// ReadTimeout bounds the wait for a connection's first request and the
	// reading of every request head once its first byte arrived.
	ReadTimeout time.Duration
	// IdleTimeout bounds the wait between keep-alive requests.
	IdleTimeout time.Duration
	// WriteTimeout bounds the writing of an answer.
	WriteTimeout time.Duration
	// TrustedProxies are the only peers whose X-Forwarded-For, X-Real-IP and
	// ip= are believed (see ClientAddr).
	TrustedProxies []netip.Prefix
	// Logger gets warnings (panics, accept errors); nil discards them.
	// Normal requests are logged (at info) only while the tracker's
	// Settings().LogAccess is on (log_access), one line per request.
	Logger *zap.Logger
	// Metrics is exposed at /metrics in the Prometheus text format; nil
	// answers /metrics with 404.
	Metrics prometheus.Gatherer
	// Status feeds /statistics; nil answers /statistics with 404.
	Status func() StatusInfo
	// ServeAdmin makes this the admin listener: only /statistics and
	// /metrics are served, the tracker paths answer 404.
	ServeAdmin bool
	// GoroutinePerConn serves every connection on its own goroutine. By
	// default a *net.TCPListener on Linux is served by event loops instead
	// (one per GOMAXPROCS, see eventloop_linux.go); other listeners and
	// systems always get a goroutine per connection. Both answer alike.
	GoroutinePerConn bool
}

// StatusInfo is what /statistics shows besides the server's own request
// counts.
type StatusInfo struct {
	Stats      tracker.Stats
	Started    time.Time   // process start, for the uptime
	LastFlush  time.Time   // last successful write to the database; zero = never
	LastReload time.Time   // last successful read from the database; zero = never
	FlushErr   string      // the last flush's error, "" when it succeeded
	ReloadErr  string      // the last reload's error, "" when it succeeded
	Extra      []StatusRow // more counters, shown after the HTTP request counts (the UDP frontend's)
}

// StatusRow is one named count of the /statistics page.
type StatusRow struct {
	Name  string
	Value int64
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("httpfront: server closed")

// Server is the HTTP frontend: it reads requests on its own (no net/http on
// the hot path), hands announces and scrapes to a tracker.Tracker and writes
// the bencoded answers. One Server may Serve several listeners.
type Server struct {
	trk      *tracker.Tracker
	cfg      Config
	log      *zap.Logger
	trusted  []netip.Prefix
	maxConn  int64
	perIPCap int32     // 0: none
	batch    int       // most idle connections evicted at once at MaxConnections
	start    time.Time // origin of the server clock (conn.idleAt)

	open     atomic.Int64 // connections admitted and not closed or evicted; changed under mu
	shutting atomic.Bool
	closed   chan struct{} // closed when shutting becomes true
	counters counters
	coll     *collector

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	perIP     map[netip.Addr]int32 // open connections by address (not trusted proxies)
	evictHeap []idleConn           // evictIdle's scratch

	bufs     sync.Pool // *connBufs of the goroutine-per-connection mode
	loopBufs sync.Pool // *connBufs of the event loops (a larger read buffer)
}

// New returns a Server answering for t.
func New(t *tracker.Tracker, cfg Config) *Server {
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	if cfg.MaxConnectionsPerIP == 0 {
		cfg.MaxConnectionsPerIP = DefaultMaxConnectionsPerIP
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	s := &Server{
		trk:       t,
		cfg:       cfg,
		log:       cfg.Logger,
		trusted:   normalizePrefixes(cfg.TrustedProxies),
		maxConn:   int64(cfg.MaxConnections),
		perIPCap:  int32(max(min(cfg.MaxConnectionsPerIP, 1<<30), 0)),
		batch:     min(max(cfg.MaxConnections/128, 1), maxEvictBatch),
		start:     time.Now(),
		listeners: make(map[net.Listener]struct{}),
		closed:    make(chan struct{}),
		conns:     make(map[*conn]struct{}),
		perIP:     make(map[netip.Addr]int32),
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	s.coll = newCollector(s)
	return s
}

// Collector exports the server's metrics: xbt_http_requests_total{kind,
// result}, xbt_http_open_connections, xbt_http_accepted_connections_total,
// xbt_http_rejected_connections_total{reason},
// xbt_http_evicted_connections_total and xbt_http_panics_total,
// each with a constant label server="tracker" or "admin" (ServeAdmin), so a
// tracker and an admin Server can share one registry.
func (s *Server) Collector() prometheus.Collector { return s.coll }

// Serve accepts connections on ln and serves them until ln fails or
// Shutdown is called (then it returns ErrServerClosed): on Linux a
// *net.TCPListener's connections are served by event loops, others each on
// its own goroutine (see Config.GoroutinePerConn).
// Connections from an address the tracker denies are closed at once
// without an answer, as XBT does; so are connections over
// MaxConnectionsPerIP, and over MaxConnections when no idle connection can
// be evicted to make room.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.shutting.Load() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	if !s.cfg.GoroutinePerConn {
		if loops := s.startLoops(ln); loops != nil {
			// The loops accept (eventloop_linux.go); this goroutine only
			// waits for the end.
			defer loops.stop()
			return s.waitClosed(ln)
		}
	}

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.shutting.Load() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			backoff = acceptBackoff(backoff)
			s.log.Warn("accept failed; retrying", zap.Error(err), zap.Duration("backoff", backoff))
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		c := &conn{nc: nc, fd: -1, remote: remoteAddr(nc)}
		switch s.admit(c) {
		case admitted:
			go s.serveConn(c)
		case refused:
			nc.Close()
		case closing:
			nc.Close()
			return ErrServerClosed
		}
	}
}

// listenerCheckEvery is how often Serve looks whether a listener whose
// connections the event loops accept was closed by its owner (Shutdown
// tells it at once).
const listenerCheckEvery = 50 * time.Millisecond

// waitClosed returns when Shutdown is called (ErrServerClosed) or ln is
// closed (an error wrapping net.ErrClosed, as Accept's would).
func (s *Server) waitClosed(ln net.Listener) error {
	tick := time.NewTicker(listenerCheckEvery)
	defer tick.Stop()
	for {
		select {
		case <-s.closed:
			return ErrServerClosed
		case <-tick.C:
			if !listenerOpen(ln) {
				if s.shutting.Load() {
					return ErrServerClosed
				}
				return fmt.Errorf("httpfront: listener %s: %w", ln.Addr(), net.ErrClosed)
			}
		}
	}
}

// listenerOpen reports whether ln has not been closed; it makes no system
// call.
func listenerOpen(ln net.Listener) bool {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	return rc.Control(func(uintptr) {}) == nil
}

// acceptBackoff is the wait after one more accept error in a row, given the
// previous wait: EMFILE and friends are waited out rather than giving up
// the port.
func acceptBackoff(prev time.Duration) time.Duration {
	if prev == 0 {
		return 5 * time.Millisecond
	}
	return min(2*prev, time.Second)
}

// Shutdown stops accepting, closes idle keep-alive connections, lets the
// requests in flight finish (their answers say Connection: close) and
// returns once every connection is closed. When ctx ends first, the
// remaining connections are closed and ctx.Err() is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.shutting.Swap(true) {
		close(s.closed)
	}
	for ln := range s.listeners {
		shutdownListener(ln) // event loops hold duplicates of it
		ln.Close()
	}
	s.mu.Unlock()

	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.closeIdle() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			s.mu.Lock()
			for c := range s.conns {
				c.abort()
			}
			s.mu.Unlock()
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// closeIdle closes the idle connections and returns how many connections
// are still open.
func (s *Server) closeIdle() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.state.CompareAndSwap(stateIdle, stateClosed) {
			c.abort()
		}
	}
	return len(s.conns)
}
