// A connection's state and reusable buffers, and the goroutine-per-connection
// loop.

package httpfront

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

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

// remoteAddr is nc's peer address, unmapped.
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
