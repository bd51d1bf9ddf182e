package httpfront

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
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

// connection states, for Shutdown and eviction.
const (
	stateIdle   int32 = iota // waiting for the first byte of a request, nothing buffered, nothing to write
	stateActive              // reading, handling or answering a request
	stateClosed              // closed by Shutdown or evicted while idle
)

type conn struct {
	nc     net.Conn   // nil for an event-loop connection
	fd     int        // an event-loop connection's socket; -1 otherwise
	remote netip.Addr // unmapped
	state  atomic.Int32
	idleAt atomic.Int64 // server clock (Server.clock) when it last became idle

	// Set by admit and forget, under Server.mu.
	perIP   bool // counted in Server.perIP
	evicted bool // evicted: its place in Server.open is already given up
}

// abort ends c from outside its serving goroutine or loop: Shutdown's and
// eviction's use.
// An event-loop socket is shut down, not closed, so its number is not
// reused while its loop still owns it; the loop sees the hang-up and closes
// it.
func (c *conn) abort() {
	if c.nc != nil {
		c.nc.Close()
		return
	}
	shutdownSocket(c.fd)
}

// connBufs is a connection's reusable state, pooled between connections.
type connBufs struct {
	br   *bufio.Reader
	req  Request
	ann  tracker.Announce
	ex   AnnounceExtras
	ares tracker.AnnounceResult
	sreq tracker.ScrapeRequest
	sres tracker.ScrapeResult
	body []byte
	out  []byte
	tail []byte // a large body to write after out (aliases body)

	// What the access log (log_access) reports of the last request; set
	// whether or not it is on (plain stores, no allocation).
	status  int        // the answer's HTTP status; 0: none (yet)
	failure string     // the bencoded failure reason answered, or why there was no answer
	errText string     // an HTTP error's reason (4xx, 505)
	client  netip.Addr // the address the request was accounted to, when not the socket's
	logPath []byte     // scratch for the masked path
}

const (
	readBufSize = 4096
	// Buffers grown past these (a full scrape, say) are dropped after use
	// rather than pinned in the pool.
	maxKeptBuf   = 256 << 10
	maxKeptFiles = 4096
	// Pipelined answers are gathered up to this size before a write.
	maxPipelinedOut = 64 << 10
	// Bodies larger than this are written from where they are, not copied
	// after the response head.
	maxInlineBody = 32 << 10
)

// getBufs takes a connBufs reading from rd out of pool (whose readers all
// have size bytes of buffer).
func (s *Server) getBufs(pool *sync.Pool, rd io.Reader, size int) *connBufs {
	b, _ := pool.Get().(*connBufs)
	if b == nil {
		b = &connBufs{
			br:   bufio.NewReaderSize(rd, size),
			body: make([]byte, 0, 1024),
			out:  make([]byte, 0, 2048),
		}
		b.ares.Peers4 = make([]byte, 0, 50*6)
		return b
	}
	b.br.Reset(rd)
	return b
}

func (s *Server) putBufs(pool *sync.Pool, b *connBufs) {
	b.br.Reset(nil)
	b.ann.Passkey = nil
	b.sreq.Passkey = nil
	b.tail = nil
	if cap(b.body) > maxKeptBuf {
		b.body = nil
	}
	if cap(b.out) > maxKeptBuf {
		b.out = nil
	}
	if cap(b.sres.Files) > maxKeptFiles {
		b.sres.Files = nil
	}
	b.body, b.out = b.body[:0], b.out[:0]
	pool.Put(b)
}

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
	var loops *loopSet // nil: a goroutine per connection
	if !s.cfg.GoroutinePerConn {
		if loops = s.startLoops(ln); loops != nil {
			defer loops.stop()
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
		if loops != nil {
			if loops.serve(nc) == closing {
				return ErrServerClosed
			}
			continue
		}
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

// acceptBackoff is the wait after one more accept error in a row, given the
// previous wait: EMFILE and friends are waited out rather than giving up
// the port.
func acceptBackoff(prev time.Duration) time.Duration {
	if prev == 0 {
		return 5 * time.Millisecond
	}
	return min(2*prev, time.Second)
}

type admission int

const (
	admitted admission = iota
	refused            // denied or over a connection cap: close it, go on
	closing            // Shutdown has begun: close it and stop accepting
)

// maxEvictBatch bounds how many idle connections one full server evicts at
// once (see evictIdle).
const maxEvictBatch = 64

// clock is the server's monotonic clock (ns since New), the time base of
// conn.idleAt; the event loops keep theirs on it too.
func (s *Server) clock() int64 { return int64(time.Since(s.start)) }

// admit applies the deny list, MaxConnectionsPerIP and MaxConnections to a
// new connection (evicting idle ones at MaxConnections) and, when it is
// admitted, counts it and registers it for Shutdown. It runs once per
// accepted connection, never per request.
func (s *Server) admit(c *conn) admission {
	if !s.cfg.ServeAdmin && s.trk.Denied(c.remote) {
		s.counters.rejectedDenied.Add(1)
		return refused
	}
	c.perIP = s.perIPCap > 0 && !inPrefixes(s.trusted, c.remote)
	c.state.Store(stateIdle)
	c.idleAt.Store(s.clock())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting.Load() {
		return closing
	}
	if c.perIP && s.perIP[c.remote] >= s.perIPCap {
		s.counters.rejectedPerIP.Add(1)
		return refused
	}
	if s.open.Load() >= s.maxConn && s.evictIdle() == 0 {
		s.counters.rejectedLimit.Add(1)
		return refused
	}
	if c.perIP {
		s.perIP[c.remote]++
	}
	s.open.Add(1)
	s.conns[c] = struct{}{}
	s.counters.accepted.Add(1)
	return admitted
}

// idleConn is an eviction candidate and when it became idle.
type idleConn struct {
	at int64
	c  *conn
}

// evictIdle makes room at MaxConnections: it closes the connections that
// have been idle longest (at most s.batch of them, so that a flood of new
// connections pays for one scan per batch, not one per connection) and
// returns how many it closed. Idle means waiting for a request with nothing
// half-read and no answer pending (stateIdle); a connection still idle when
// chosen is switched to stateClosed and aborted as Shutdown does it (an
// event-loop socket is shut down, and its loop closes it), so one that has
// just begun a request is never cut. Its place in s.open is given up at
// once; its address's count when it is closed. s.mu is held.
func (s *Server) evictIdle() int {
	h := s.evictHeap[:0] // a max-heap on at: the s.batch oldest so far
	for c := range s.conns {
		if c.state.Load() != stateIdle {
			continue
		}
		at := c.idleAt.Load()
		switch {
		case len(h) < s.batch:
			h = append(h, idleConn{at, c})
			for i := len(h) - 1; i > 0; { // sift up
				p := (i - 1) / 2
				if h[p].at >= h[i].at {
					break
				}
				h[p], h[i] = h[i], h[p]
				i = p
			}
		case at < h[0].at:
			h[0] = idleConn{at, c}
			for i := 0; ; { // sift down
				l, m := 2*i+1, i
				if l < len(h) && h[l].at > h[m].at {
					m = l
				}
				if l+1 < len(h) && h[l+1].at > h[m].at {
					m = l + 1
				}
				if m == i {
					break
				}
				h[m], h[i] = h[i], h[m]
				i = m
			}
		}
	}
	n := 0
	for i := range h {
		if c := h[i].c; c.state.CompareAndSwap(stateIdle, stateClosed) {
			c.evicted = true
			c.abort()
			s.open.Add(-1)
			n++
		}
		h[i] = idleConn{}
	}
	s.evictHeap = h[:0]
	s.counters.evicted.Add(uint64(n))
	return n
}

// forget undoes admit once c is closed (or about to be: an event-loop
// socket is closed only after this, see conn.abort).
func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	if c.perIP {
		if n := s.perIP[c.remote] - 1; n > 0 {
			s.perIP[c.remote] = n
		} else {
			delete(s.perIP, c.remote)
		}
		c.perIP = false
	}
	if !c.evicted {
		s.open.Add(-1)
	}
	s.mu.Unlock()
}

func remoteAddr(nc net.Conn) netip.Addr {
	switch a := nc.RemoteAddr().(type) {
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap()
	case interface{ AddrPort() netip.AddrPort }:
		return a.AddrPort().Addr().Unmap()
	}
	if ap, err := netip.ParseAddrPort(nc.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// Shutdown stops accepting, closes idle keep-alive connections, lets the
// requests in flight finish (their answers say Connection: close) and
// returns once every connection is closed. When ctx ends first, the
// remaining connections are closed and ctx.Err() is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutting.Store(true)
	for ln := range s.listeners {
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

func (s *Server) serveConn(c *conn) {
	var b *connBufs
	defer func() {
		if p := recover(); p != nil {
			s.counters.panics.Add(1)
			s.log.Warn("panic serving a connection; closed it",
				zap.Stringer("remote", c.remote), zap.Any("panic", p),
				zap.ByteString("stack", debug.Stack()))
			b = nil // its state may be inconsistent: let the GC have it
		}
		c.nc.Close()
		if b != nil {
			s.putBufs(&s.bufs, b)
		}
		s.forget(c)
	}()
	b = s.getBufs(&s.bufs, c.nc, readBufSize)
	var rdl, wdl deadline
	waitFor := s.cfg.ReadTimeout // the first request: from accept
	for {
		// Wait for the next request's first byte (idle: Shutdown may close).
		if b.br.Buffered() == 0 {
			if s.shutting.Load() {
				return
			}
			if err := rdl.set(c.nc.SetReadDeadline, time.Now().Add(waitFor), waitFor); err != nil {
				return
			}
			if _, err := b.br.Peek(1); err != nil {
				return
			}
		}
		if c.state.Load() != stateActive && !c.state.CompareAndSwap(stateIdle, stateActive) {
			return // Shutdown closed it or it was evicted
		}
		// A head that is already whole in the buffer needs no more reads;
		// only one still arriving gets ReadTimeout to finish (slowloris).
		if !hasCompleteHead(b.br) {
			if err := rdl.set(c.nc.SetReadDeadline, time.Now().Add(s.cfg.ReadTimeout), s.cfg.ReadTimeout); err != nil {
				return
			}
		}
		keep, closeNow := s.serveRequest(c, b)
		if closeNow {
			return
		}
		// Pipelined requests: answer them in one write when the next head
		// is already complete in the buffer.
		if !keep || len(b.out) >= maxPipelinedOut || len(b.tail) > 0 || !hasCompleteHead(b.br) {
			if err := wdl.set(c.nc.SetWriteDeadline, time.Now().Add(s.cfg.WriteTimeout), s.cfg.WriteTimeout); err != nil {
				return
			}
			var err error
			if len(b.tail) > 0 {
				bufs := net.Buffers{b.out, b.tail}
				_, err = bufs.WriteTo(c.nc)
				b.tail = nil
			} else {
				_, err = c.nc.Write(b.out)
			}
			if err != nil {
				return
			}
			b.out = b.out[:0]
		}
		if !keep {
			return
		}
		// Idle (evictable, closed by Shutdown) only with nothing buffered:
		// a pipelined request stays in flight.
		if b.br.Buffered() == 0 {
			c.idleAt.Store(s.clock())
			c.state.Store(stateIdle)
		}
		waitFor = s.cfg.IdleTimeout
	}
}

// deadline is a connection's read or write deadline as last set. Setting a
// deadline updates a runtime timer (about 5% of a keep-alive announce's CPU
// when done three times per request), so set moves it only when it is off
// from the wanted time by more than an eighth of the timeout (at most a
// second): later than wanted, or earlier than wanted minus that slack. A
// busy keep-alive connection thus re-arms its timers about once a second,
// and a timeout fires between 7/8 of its length and its full length after
// the last activity.
type deadline struct{ at time.Time }

func (d *deadline) set(apply func(time.Time) error, want time.Time, timeout time.Duration) error {
	slack := min(timeout/8, time.Second)
	if !d.at.IsZero() && !d.at.After(want) && !d.at.Before(want.Add(-slack)) {
		return nil
	}
	d.at = want
	return apply(want)
}

// hasCompleteHead reports whether br already holds a whole request head,
// so that ReadRequest will not need to read from the connection.
func hasCompleteHead(br *bufio.Reader) bool {
	n := br.Buffered()
	if n == 0 {
		return false
	}
	buf, _ := br.Peek(n)
	return completeHead(buf)
}

// completeHead reports whether buf starts with a whole request head: a
// request line after any empty lines (which ReadRequest skips), then header
// lines up to an empty one. Lines end in LF or CRLF, as readLine takes them.
func completeHead(buf []byte) bool {
	i := 0
	for i < len(buf) && (buf[i] == '\n' || buf[i] == '\r' && i+1 < len(buf) && buf[i+1] == '\n') {
		if buf[i] == '\r' {
			i++
		}
		i++
	}
	for {
		j := bytes.IndexByte(buf[i:], '\n')
		if j < 0 {
			return false
		}
		i += j + 1
		if i < len(buf) && buf[i] == '\n' || i+1 < len(buf) && buf[i] == '\r' && buf[i+1] == '\n' {
			return true
		}
	}
}

// serveRequest reads one request head from b.br and appends the answer to
// b.out. keep reports whether the connection may serve another request;
// closeNow that it must be closed without writing anything (a read error, a
// denied socket address). While the tracker's log_access is on, every
// request is logged (see logAccess); otherwise nothing here allocates.
func (s *Server) serveRequest(c *conn, b *connBufs) (keep, closeNow bool) {
	b.status, b.failure, b.errText, b.client = 0, "", "", netip.Addr{}
	if !s.trk.Settings().LogAccess {
		return s.handleRequest(c, b)
	}
	start := time.Now()
	before := len(b.out)
	keep, closeNow = s.handleRequest(c, b)
	s.logAccess(c, b, time.Since(start), len(b.out)-before+len(b.tail))
	return keep, closeNow
}

// handleRequest is serveRequest without the access log.
func (s *Server) handleRequest(c *conn, b *connBufs) (keep, closeNow bool) {
	req := &b.req
	if err := ReadRequest(b.br, s.cfg.MaxRequestBytes, req); err != nil {
		he, ok := err.(*HeadError)
		if !ok {
			return false, true // EOF, timeout, reset: nothing to answer
		}
		req.ProtoMinor = 1 // the version may not have been read
		s.badHead(b, he, false)
		return false, false
	}
	if req.Method != "GET" {
		// HEAD would run an announce (a changed swarm, statistics to
		// write) for an answer never sent: it gets the 405 every other
		// method gets, on every path, without the body as HEAD wants.
		s.badHead(b, ErrMethodNotAllowed, true)
		return false, false
	}
	path := req.Path
	if !s.cfg.ServeAdmin {
		if passkey, k, ok := trackerPath(path); ok {
			var res result
			var gz bool
			switch k {
			case kindAnnounce:
				res, closeNow = s.announce(c, b, passkey)
			default:
				res, gz, closeNow = s.scrape(c, b, passkey)
			}
			if closeNow {
				return false, true
			}
			s.counters.request(k, res)
			keep = s.keepAlive(req)
			s.respond(b, 200, "", keep, gz, false)
			return keep, false
		}
	}
	switch string(path) {
	case "/statistics":
		if s.cfg.Status != nil {
			s.counters.request(kindStatistics, resultOK)
			b.body = s.appendStatistics(b.body[:0])
			keep = s.keepAlive(req)
			s.respond(b, 200, "text/html; charset=utf-8", keep, false, false)
			return keep, false
		}
	case "/metrics":
		if s.cfg.Metrics != nil {
			s.counters.request(kindMetrics, resultOK)
			var ct string
			b.body, ct = s.appendMetrics(b.body[:0])
			keep = s.keepAlive(req)
			s.respond(b, 200, ct, keep, false, false)
			return keep, false
		}
	}
	s.counters.request(kindOther, resultOK)
	keep = s.keepAlive(req)
	if !s.cfg.ServeAdmin {
		if u := s.trk.Settings().RedirectURL; u != "" {
			b.body = b.body[:0]
			b.out = s.appendRedirect(b.out, req, u, keep)
			b.status = 302
			return keep, false
		}
	}
	b.body = append(b.body[:0], "not found\n"...)
	s.respond(b, 404, "", keep, false, false)
	return keep, false
}

// badHead answers a refused request head (he's status, its reason as the
// text body; none for a HEAD request) and the connection closes after it.
func (s *Server) badHead(b *connBufs, he *HeadError, head bool) {
	s.counters.request(kindOther, resultBadRequest)
	b.body = append(b.body[:0], he.Reason...)
	b.body = append(b.body, '\n')
	b.errText = he.Reason
	s.respond(b, he.Status, "", false, false, head)
}

// logAccess writes log_access's line for the request just served: the
// socket's address (and the client's, when a trusted proxy named another),
// method, path with any passkey masked, status (0: closed unanswered),
// failure reason or error, bytes of the answer and the time taken to read
// and answer it (not to write it). Nothing is logged when no request was
// read (the client closed, or a read failed before a head was whole).
func (s *Server) logAccess(c *conn, b *connBufs, took time.Duration, n int) {
	if b.status == 0 && b.failure == "" {
		return
	}
	b.logPath = appendMaskedPath(b.logPath[:0], b.req.Path)
	fields := [9]zap.Field{
		zap.Stringer("remote", c.remote),
		zap.String("method", b.req.Method),
		zap.String("path", string(b.logPath)),
		zap.Int("status", b.status),
		zap.Int("bytes", n),
		zap.Duration("duration", took),
	}
	nf := 6
	if b.client.IsValid() && b.client != c.remote {
		fields[nf] = zap.Stringer("client", b.client)
		nf++
	}
	if b.failure != "" {
		fields[nf] = zap.String("failure", b.failure)
		nf++
	}
	if b.errText != "" {
		fields[nf] = zap.String("error", b.errText)
		nf++
	}
	s.log.Info("http request", fields[:nf]...)
}

// maskedSegment is how long a path segment may be before appendMaskedPath
// cuts it: a passkey is 32 bytes, every name the tracker serves is shorter.
const maskedSegment = 16

// appendMaskedPath appends p to dst with every segment longer than
// maskedSegment bytes (a passkey, even a damaged one) cut to its first 8
// bytes, which in a passkey are only the uid in hex, and "…".
func appendMaskedPath(dst, p []byte) []byte {
	for {
		i := bytes.IndexByte(p, '/')
		seg := p
		if i >= 0 {
			seg = p[:i]
		}
		if len(seg) > maskedSegment {
			dst = append(dst, seg[:8]...)
			dst = append(dst, "…"...)
		} else {
			dst = append(dst, seg...)
		}
		if i < 0 {
			return dst
		}
		dst = append(dst, '/')
		p = p[i+1:]
	}
}

// keepAlive decides, just before an answer's head is written, whether the
// connection stays open: the client wants it and no Shutdown has begun.
func (s *Server) keepAlive(req *Request) bool {
	return req.KeepAlive && !s.shutting.Load()
}

// trackerPath recognises /announce, /scrape, /<passkey>/announce and
// /<passkey>/scrape. The passkey is whatever 32 bytes sit there; the engine
// judges it.
func trackerPath(p []byte) (passkey []byte, k kind, ok bool) {
	switch string(p) {
	case "/announce":
		return nil, kindAnnounce, true
	case "/scrape":
		return nil, kindScrape, true
	}
	if len(p) < 1+32+1 || p[0] != '/' || p[33] != '/' {
		return nil, 0, false
	}
	switch string(p[33:]) {
	case "/announce":
		return p[1:33], kindAnnounce, true
	case "/scrape":
		return p[1:33], kindScrape, true
	}
	return nil, 0, false
}

// announce answers an announce into b.body.
func (s *Server) announce(c *conn, b *connBufs, passkey []byte) (res result, closeNow bool) {
	if err := ParseAnnounceExtras(b.req.Query, &b.ann, &b.ex); err != nil {
		b.failure = err.Error()
		b.body = AppendFailure(b.body[:0], b.failure)
		return resultBadRequest, false
	}
	addr, proxied := ClientAddr(c.remote, s.trusted, b.req.XForwardedFor, b.req.XRealIP, b.ex.IP)
	b.ann.Passkey = passkey
	b.ann.Addr = addr
	s.trk.Announce(&b.ann, &b.ares) // checks the deny list first
	b.ann.Passkey = nil
	b.failure = b.ares.Failure
	if proxied {
		b.client = addr
	}
	if b.ares.Failure == tracker.ErrHostDenied && !proxied {
		return 0, true // the socket's address was banned since accept: no answer, as at accept
	}
	b.body = AppendAnnounce(b.body[:0], &b.ares, b.ex.Compact, b.ex.NoPeerID)
	if b.ares.Failure != "" {
		return resultFailure, false
	}
	return resultOK, false
}

// scrape answers a scrape into b.body, gzipped when that is wanted.
func (s *Server) scrape(c *conn, b *connBufs, passkey []byte) (res result, gz, closeNow bool) {
	var err error
	b.sreq.InfoHashes, err = ParseScrape(b.req.Query, b.sreq.InfoHashes[:0])
	if err != nil {
		b.failure = err.Error()
		b.body = AppendFailure(b.body[:0], b.failure)
		return resultBadRequest, false, false
	}
	addr, proxied := ClientAddr(c.remote, s.trusted, b.req.XForwardedFor, b.req.XRealIP, netip.Addr{})
	b.sreq.Passkey = passkey
	b.sreq.Addr = addr
	s.trk.Scrape(&b.sreq, &b.sres) // checks the deny list first
	b.sreq.Passkey = nil
	b.failure = b.sres.Failure
	if proxied {
		b.client = addr
	}
	if b.sres.Failure == tracker.ErrHostDenied && !proxied {
		return 0, false, true
	}
	b.body = AppendScrape(b.body[:0], &b.sres)
	if b.sres.Failure != "" {
		return resultFailure, false, false
	}
	if b.sres.Full && b.req.AcceptGzip && s.trk.Settings().GzipScrape {
		b.body = gzipInPlace(b.body)
		gz = true
	}
	return resultOK, gz, false
}

var statusText = map[int]string{
	200: "OK",
	302: "Found",
	400: "Bad Request",
	404: "Not Found",
	405: "Method Not Allowed",
	431: "Request Header Fields Too Large",
	500: "Internal Server Error",
	505: "HTTP Version Not Supported",
}

func (s *Server) appendStatusLine(dst []byte, req *Request, status int) []byte {
	minor := byte('1')
	if req.ProtoMinor == 0 {
		minor = '0'
	}
	dst = append(dst, "HTTP/1."...)
	dst = append(dst, minor, ' ')
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	return append(dst, statusText[status]...)
}

func appendConnection(dst []byte, req *Request, keep bool) []byte {
	switch {
	case !keep:
		dst = append(dst, "\r\nConnection: close"...)
	case req.ProtoMinor == 0:
		dst = append(dst, "\r\nConnection: keep-alive"...)
	}
	return dst
}

// respond appends the answer with body b.body to b.out: a text/plain one
// unless contentType says otherwise, "Allow: GET" for a 405, without the
// body when head (the answer to a HEAD request). A body larger than
// maxInlineBody (a full scrape, say) is not copied: it goes in b.tail,
// written after b.out with writev.
func (s *Server) respond(b *connBufs, status int, contentType string, keep, gz, head bool) {
	req := &b.req
	b.status = status
	dst := s.appendStatusLine(b.out, req, status)
	dst = append(dst, "\r\nContent-Type: "...)
	if contentType == "" {
		contentType = "text/plain"
	}
	dst = append(dst, contentType...)
	dst = append(dst, "\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(b.body)), 10)
	if gz {
		dst = append(dst, "\r\nContent-Encoding: gzip"...)
	}
	if status == 405 {
		dst = append(dst, "\r\nAllow: GET"...)
	}
	dst = appendConnection(dst, req, keep)
	dst = append(dst, "\r\n\r\n"...)
	switch {
	case head:
	case len(b.body) > maxInlineBody:
		b.tail = b.body
	default:
		dst = append(dst, b.body...)
	}
	b.out = dst
}

func (s *Server) appendRedirect(dst []byte, req *Request, url string, keep bool) []byte {
	dst = s.appendStatusLine(dst, req, 302)
	dst = append(dst, "\r\nLocation: "...)
	for i := 0; i < len(url); i++ { // never let configuration split the header
		if c := url[i]; c >= ' ' && c != 0x7f {
			dst = append(dst, c)
		}
	}
	dst = append(dst, "\r\nContent-Type: text/plain\r\nContent-Length: 0"...)
	dst = appendConnection(dst, req, keep)
	return append(dst, "\r\n\r\n"...)
}
