//go:build linux

package httpfront

import (
	"bufio"
	"errors"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Why event loops: with a goroutine per keep-alive connection, every
// announce costs a read that finds nothing (EAGAIN), a park, a netpoller
// wake-up and a goroutine switch besides the read and write that carry it.
// A loop reads only the sockets epoll reported readable and answers all of
// them per wake-up, so an announce costs one read and one write. The loop's
// own epoll descriptor is registered with Go's netpoller, so an idle loop
// parks like any goroutine blocked on a socket (no thread is held in
// epoll_wait) and its sweep timer is a plain read deadline.
//
// Handling is synchronous in the loop, as in XBT: the engine answers from
// memory, and nothing on the request path waits for I/O.

// loopSet is the event loops serving one listener.
type loopSet struct {
	s       *Server
	loops   []*loop
	next    int
	backoff time.Duration // after failed dups, as Serve's after failed accepts
}

// startLoops starts GOMAXPROCS event loops for ln, or returns nil when ln
// is not a *net.TCPListener or the loops cannot be set up (then Serve gives
// every connection its own goroutine).
func (s *Server) startLoops(ln net.Listener) *loopSet {
	if _, ok := ln.(*net.TCPListener); !ok {
		return nil
	}
	ls := &loopSet{s: s, loops: make([]*loop, runtime.GOMAXPROCS(0))}
	for i := range ls.loops {
		l, err := newLoop(s)
		if err != nil {
			for _, l := range ls.loops[:i] {
				l.file.Close()
			}
			s.log.Warn("event loops unavailable; serving a goroutine per connection", zap.Error(err))
			return nil
		}
		ls.loops[i] = l
	}
	for _, l := range ls.loops {
		go l.run()
	}
	return ls
}

// stop tells the loops that no more connections come: each ends once its
// connections are closed.
func (ls *loopSet) stop() {
	for _, l := range ls.loops {
		l.acceptDone.Store(true)
		l.wake()
	}
}

// serve takes nc, accepted by Go, off Go's netpoller (its socket is
// duplicated and nc closed) and gives it to the next loop. Accepting
// through net.Listener keeps Serve's semantics (closing ln stops it) at
// the price of a dup and a close per connection.
func (ls *loopSet) serve(nc net.Conn) admission {
	s := ls.s
	remote := remoteAddr(nc)
	fd, err := dupSocket(nc)
	nc.Close()
	if err != nil {
		// Out of descriptors, most likely: wait it out, as for accept.
		ls.backoff = acceptBackoff(ls.backoff)
		s.log.Warn("cannot take over a new connection; closed it", zap.Error(err), zap.Duration("backoff", ls.backoff))
		time.Sleep(ls.backoff)
		return refused
	}
	ls.backoff = 0
	c := &econn{conn: conn{fd: fd, remote: remote}}
	switch a := s.admit(&c.conn); a {
	case refused, closing:
		syscall.Close(fd)
		return a
	}
	l := ls.loops[ls.next]
	ls.next = (ls.next + 1) % len(ls.loops)
	if err := l.add(c); err != nil {
		s.log.Warn("cannot watch a new connection; closing it", zap.Error(err))
	}
	return admitted
}

// econn is a connection owned by a loop.
type econn struct {
	conn
	rd       fdReader
	b        *connBufs
	deadline int64 // loop clock (ns): close the connection when it passes
	partial  bool  // a request head has begun arriving
	eof      bool  // the peer closed or reset its side
	last     bool  // close once the answers written so far are out
	writing  bool  // answers are waiting for the socket to take them (EPOLLOUT)
	pending  [2][]byte
}

// loop is one event loop: an epoll set of connections, served by one
// goroutine.
type loop struct {
	s      *Server
	epfd   int
	file   *os.File // epfd, in Go's netpoller
	rc     syscall.RawConn
	start  time.Time
	now    int64 // ns since start, refreshed per wake-up
	events []syscall.EpollEvent
	conns  []*econn // by socket number
	n      int      // how many of conns are not nil
	poll   func(uintptr) bool

	sweepEvery time.Duration

	// Written by the accept goroutine.
	mu         sync.Mutex
	incoming   []*econn
	hasNew     atomic.Bool
	acceptDone atomic.Bool
}

func newLoop(s *Server) (*loop, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	f := os.NewFile(uintptr(epfd), "epoll")
	rc, err := f.SyscallConn()
	if err == nil {
		// Fails (os.ErrNoDeadline) when the netpoller did not take epfd.
		err = f.SetReadDeadline(time.Time{})
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	// A timeout fires between its length and that plus a sweep interval.
	sweep := min(s.cfg.ReadTimeout, s.cfg.IdleTimeout, s.cfg.WriteTimeout) / 8
	sweep = max(min(sweep, time.Second), 5*time.Millisecond)
	l := &loop{s: s, epfd: epfd, file: f, rc: rc, start: s.start, // the server's clock: conn.idleAt
		events: make([]syscall.EpollEvent, 256), sweepEvery: sweep}
	l.poll = l.pollOnce
	return l, nil
}

// clock is the loop's monotonic clock, safe to call from any goroutine.
func (l *loop) clock() int64 { return int64(time.Since(l.start)) }

// wake makes the loop leave its wait and check acceptDone and Shutdown.
func (l *loop) wake() { l.file.SetReadDeadline(time.Now()) }

// add hands a new connection to the loop (from the accept goroutine).
func (l *loop) add(c *econn) error {
	c.rd.fd = c.fd
	c.deadline = l.clock() + int64(l.s.cfg.ReadTimeout)
	l.mu.Lock()
	l.incoming = append(l.incoming, c)
	l.hasNew.Store(true)
	l.mu.Unlock()
	// Registered after it is queued, so its first event finds it. When
	// that fails, the loop closes it at its next sweep: the loop owns it.
	err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, c.fd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(c.fd)})
	if err != nil {
		c.state.Store(stateClosed)
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

func (l *loop) adopt() {
	l.mu.Lock()
	l.hasNew.Store(false)
	in := l.incoming
	l.incoming = l.incoming[:0]
	for i, c := range in {
		in[i] = nil
		if c.fd >= len(l.conns) {
			l.conns = append(l.conns, make([]*econn, c.fd+1-len(l.conns))...)
		}
		if c.b == nil {
			c.b = l.s.getBufs(&l.s.loopBufs, &c.rd, l.s.cfg.MaxRequestBytes+1)
		}
		l.conns[c.fd] = c
		l.n++
	}
	l.mu.Unlock()
}

func (l *loop) run() {
	defer l.file.Close()
	l.file.SetReadDeadline(time.Now().Add(l.sweepEvery))
	for {
		err := l.rc.Read(l.poll)
		if err == nil {
			continue
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			l.s.log.Error("event loop stopped; its connections are closed", zap.Error(err))
			l.closeAll()
			return
		}
		l.file.SetReadDeadline(time.Now().Add(l.sweepEvery))
		l.now = l.clock()
		if l.hasNew.Load() {
			l.adopt()
		}
		l.sweep()
		if l.acceptDone.Load() && l.n == 0 && !l.hasNew.Load() {
			return
		}
	}
}

// pollOnce serves the connections epoll reports ready; false (nothing was)
// parks the loop until its epoll descriptor is readable or the deadline.
func (l *loop) pollOnce(uintptr) bool {
	n, err := rawEpollWait(l.epfd, l.events)
	if n <= 0 {
		return err == syscall.EINTR
	}
	l.now = l.clock()
	if l.hasNew.Load() {
		l.adopt()
	}
	for i := range l.events[:n] {
		ev := &l.events[i]
		if fd := int(ev.Fd); fd < len(l.conns) && l.conns[fd] != nil {
			l.handle(l.conns[fd], ev.Events)
		}
	}
	return true
}

func (l *loop) handle(c *econn, events uint32) {
	defer func() {
		if p := recover(); p != nil {
			l.s.counters.panics.Add(1)
			l.s.log.Warn("panic serving a connection; closed it",
				zap.Stringer("remote", c.remote), zap.Any("panic", p),
				zap.ByteString("stack", debug.Stack()))
			c.b = nil // its state may be inconsistent: let the GC have it
			l.close(c)
		}
	}()
	if c.state.Load() == stateClosed {
		l.close(c)
		return
	}
	if c.writing {
		if events&(syscall.EPOLLOUT|syscall.EPOLLERR|syscall.EPOLLHUP) != 0 && l.flush(c) && !c.writing {
			l.serve(c) // the requests pipelined behind, if any, and settle
		}
		return
	}
	// One read per readiness report: level-triggered epoll reports again
	// what is left.
	switch _, err := c.b.br.Peek(c.b.br.Buffered() + 1); {
	case err == nil, errors.Is(err, bufio.ErrBufferFull):
	case errors.Is(err, errWouldBlock):
		if c.b.br.Buffered() == 0 {
			return // nothing after all; the deadline stands
		}
	default:
		c.eof = true // EOF, reset: answer what is whole, then close
	}
	l.serve(c)
}

// serve answers the complete request heads in c's buffer, then writes the
// answers and settles c: idle, waiting for the rest of a head, waiting for
// the socket to take the answers, or closed.
func (l *loop) serve(c *econn) {
	s, b := l.s, c.b
	for b.br.Buffered() > 0 && !c.last {
		if c.state.Load() != stateActive && !c.state.CompareAndSwap(stateIdle, stateActive) {
			l.close(c) // Shutdown closed it or it was evicted
			return
		}
		// A full buffer without the head's end is over MaxRequestBytes,
		// and at EOF the head will not grow: ReadRequest answers both.
		if !hasCompleteHead(b.br) && b.br.Buffered() < b.br.Size() && !c.eof {
			if !c.partial {
				c.partial = true
				c.deadline = l.now + int64(s.cfg.ReadTimeout)
			}
			break
		}
		c.partial = false
		keep, closeNow := s.serveRequest(&c.conn, b)
		if closeNow {
			l.close(c)
			return
		}
		c.last = !keep
		if len(b.out) >= maxPipelinedOut || len(b.tail) > 0 {
			if !l.write(c) || c.writing {
				return
			}
		}
	}
	if len(b.out) > 0 && (!l.write(c) || c.writing) {
		return
	}
	switch {
	case c.last || c.eof && b.br.Buffered() == 0:
		l.close(c)
	case b.br.Buffered() == 0:
		if s.shutting.Load() {
			l.close(c)
			return
		}
		c.idleAt.Store(l.now)
		c.state.Store(stateIdle) // evictable from here on, see Server.evictIdle
		c.deadline = l.now + int64(s.cfg.IdleTimeout)
	}
}

// write starts writing b.out (and b.tail); false means c was closed. When
// the socket does not take it all, c waits for EPOLLOUT with the rest.
func (l *loop) write(c *econn) bool {
	c.pending = [2][]byte{c.b.out, c.b.tail}
	return l.flush(c)
}

// flush writes what is pending; false means c was closed.
func (l *loop) flush(c *econn) bool {
	for i := range c.pending {
		for len(c.pending[i]) > 0 {
			n, err := rawWrite(c.fd, c.pending[i])
			switch {
			case err == 0:
				c.pending[i] = c.pending[i][n:]
			case err == syscall.EINTR:
			case err == syscall.EAGAIN:
				if !c.writing {
					c.writing = true
					c.deadline = l.now + int64(l.s.cfg.WriteTimeout)
					if l.interest(c, syscall.EPOLLOUT) != nil {
						l.close(c)
						return false
					}
				}
				return true
			default:
				l.close(c)
				return false
			}
		}
	}
	c.pending = [2][]byte{}
	c.b.out, c.b.tail = c.b.out[:0], nil
	if c.writing {
		c.writing = false
		if l.interest(c, syscall.EPOLLIN) != nil {
			l.close(c)
			return false
		}
	}
	return true
}

func (l *loop) interest(c *econn, events uint32) error {
	return syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_MOD, c.fd, &syscall.EpollEvent{Events: events, Fd: int32(c.fd)})
}

// close closes c. It leaves Server.conns first, so Shutdown never shuts
// down a socket number the kernel may already have given to a new
// connection.
func (l *loop) close(c *econn) {
	if l.conns[c.fd] != c {
		return
	}
	l.s.forget(&c.conn)
	l.conns[c.fd] = nil
	l.n--
	syscall.Close(c.fd) // also leaves the epoll set
	if c.b != nil {
		l.s.putBufs(&l.s.loopBufs, c.b)
		c.b = nil
	}
}

// sweep closes the connections whose time is up (read, idle and write
// timeouts) and, once Shutdown has begun, the idle ones.
func (l *loop) sweep() {
	shutting := l.s.shutting.Load()
	for _, c := range l.conns {
		if c == nil {
			continue
		}
		switch {
		case l.now >= c.deadline, c.state.Load() == stateClosed:
			l.close(c)
		case shutting && !c.writing && c.b.br.Buffered() == 0 && c.state.CompareAndSwap(stateIdle, stateClosed):
			l.close(c)
		}
	}
}

func (l *loop) closeAll() {
	l.adopt()
	for _, c := range l.conns {
		if c != nil {
			l.close(c)
		}
	}
}
