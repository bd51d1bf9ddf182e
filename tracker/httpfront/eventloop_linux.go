//go:build linux

package httpfront

import (
	"bufio"
	"errors"
	"net"
	"os"
	"runtime"
	"runtime/debug"
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

// Why the loops accept: a connection accepted by Go's net.Listener and then
// handed to a loop cost, besides the accept itself, the netpoller's
// registration and removal, Go's socket options (keep-alive: three
// setsockopt calls), a dup, two fcntl calls, a close, the loop's own
// registration and two goroutine wake-ups; with a new connection per
// announce (what real clients do, once every announce_interval) that was
// as much as the request itself. So each loop watches its own duplicate of
// the listening socket (EPOLLEXCLUSIVE: one loop is woken per connection)
// and accepts with accept4 straight into its epoll set. Serve's goroutine
// only waits for Shutdown or for the listener to be closed.

// loopSet is the event loops serving one listener.
type loopSet struct {
	s     *Server
	loops []*loop
	// lfd is one more duplicate of the listening socket, for stop: the
	// listener's own descriptor may be closed already, and a loop's is the
	// loop's to close.
	lfd int
}

// startLoops starts GOMAXPROCS event loops accepting on ln, or returns nil
// when ln is not a *net.TCPListener or the loops cannot be set up (then
// Serve accepts and gives every connection its own goroutine).
func (s *Server) startLoops(ln net.Listener) *loopSet {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil
	}
	lfd, err := dupSocket(tl)
	if err != nil {
		s.log.Warn("event loops unavailable; serving a goroutine per connection", zap.Error(err))
		return nil
	}
	deferAccept(lfd)
	ls := &loopSet{s: s, loops: make([]*loop, runtime.GOMAXPROCS(0)), lfd: lfd}
	for i := range ls.loops {
		l, err := newLoop(s, tl)
		if err != nil {
			for _, l := range ls.loops[:i] {
				l.closeListener()
				l.file.Close()
			}
			syscall.Close(lfd)
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

// stop tells the loops to stop accepting and ends the listening socket at
// once, even while a loop is busy with a request (each closes its own
// duplicate when it is next free, and ends once its connections are
// closed).
func (ls *loopSet) stop() {
	for _, l := range ls.loops {
		l.acceptDone.Store(true)
	}
	// Set before, so that no loop takes the shut-down socket's EINVAL for
	// an accept failure.
	stopListening(ls.lfd)
	syscall.Close(ls.lfd)
	for _, l := range ls.loops {
		l.wake()
	}
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
	watched  bool  // in the loop's epoll set
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

	// lfd is the loop's own duplicate of the listening socket (-1 once
	// closed); while accepting fails for lack of descriptors it is out of
	// the epoll set until acceptAgain (loop clock).
	lfd           int
	acceptAgain   int64
	acceptBackoff time.Duration
	acceptDone    atomic.Bool // set by loopSet.stop
}

func newLoop(s *Server, ln *net.TCPListener) (*loop, error) {
	lfd, err := dupSocket(ln)
	if err != nil {
		return nil, err
	}
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		syscall.Close(lfd)
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		syscall.Close(lfd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	if err := rawEpollCtl(epfd, syscall.EPOLL_CTL_ADD, lfd, listenEvents); err != nil {
		syscall.Close(epfd)
		syscall.Close(lfd)
		return nil, err
	}
	f := os.NewFile(uintptr(epfd), "epoll")
	rc, err := f.SyscallConn()
	if err == nil {
		// Fails (os.ErrNoDeadline) when the netpoller did not take epfd.
		err = f.SetReadDeadline(time.Time{})
	}
	if err != nil {
		f.Close()
		syscall.Close(lfd)
		return nil, err
	}
	// A timeout fires between its length and that plus a sweep interval.
	sweep := min(s.cfg.ReadTimeout, s.cfg.IdleTimeout, s.cfg.WriteTimeout) / 8
	sweep = max(min(sweep, time.Second), 5*time.Millisecond)
	l := &loop{s: s, epfd: epfd, file: f, rc: rc, start: s.start, // the server's clock: conn.idleAt
		events: make([]syscall.EpollEvent, 256), sweepEvery: sweep, lfd: lfd}
	l.poll = l.pollOnce
	return l, nil
}

// clock is the loop's monotonic clock, safe to call from any goroutine.
func (l *loop) clock() int64 { return int64(time.Since(l.start)) }

// wake makes the loop leave its wait and check acceptDone and Shutdown.
func (l *loop) wake() { l.file.SetReadDeadline(time.Now()) }

// listenEvents is the interest in the listening socket: EPOLLEXCLUSIVE
// wakes one loop per connection, not all of them.
const listenEvents = syscall.EPOLLIN | epollExclusive

// acceptBatch bounds the connections one wake-up accepts, so that a flood
// of connections cannot starve the requests of the connections already
// open (level-triggered: the rest are reported again).
const acceptBatch = 64

// accept takes the connections waiting on the listening socket into the
// loop.
func (l *loop) accept() {
	s := l.s
	for range acceptBatch {
		if l.acceptDone.Load() || s.shutting.Load() {
			l.closeListener()
			return
		}
		fd, remote, errno := rawAccept4(l.lfd)
		switch errno {
		case 0:
		case syscall.EAGAIN:
			return
		case syscall.EINTR, syscall.ECONNABORTED, syscall.EPROTO:
			continue // that connection is gone; look for the next
		default:
			// Out of descriptors or memory, most likely: wait it out, as
			// Serve does after failed accepts, with the listening socket
			// out of the epoll set (it stays readable).
			l.acceptBackoff = acceptBackoff(l.acceptBackoff)
			l.acceptAgain = l.now + int64(l.acceptBackoff)
			s.log.Warn("accept failed; retrying", zap.Error(os.NewSyscallError("accept4", errno)), zap.Duration("backoff", l.acceptBackoff))
			if err := rawEpollCtl(l.epfd, syscall.EPOLL_CTL_DEL, l.lfd, 0); err != nil {
				l.closeListener() // cannot happen; never spin on it
			}
			return
		}
		l.acceptBackoff = 0
		setNoDelay(fd)
		c := &econn{conn: conn{fd: fd, remote: remote}}
		if a := s.admit(&c.conn); a != admitted {
			rawClose(fd)
			if a == closing {
				l.closeListener()
				return
			}
			continue
		}
		l.adopt(c)
	}
}

// adopt makes c, just accepted and admitted, one of the loop's connections,
// and serves the request it has sent: with TCP_DEFER_ACCEPT the kernel
// reports a connection once its first bytes are in. Only a connection that
// stays open after that (keep-alive, a request not whole yet, an answer
// the socket has not taken) joins the epoll set: one that asked for
// Connection: close is served and closed without an epoll_ctl.
func (l *loop) adopt(c *econn) {
	c.rd.fd = c.fd
	c.deadline = l.now + int64(l.s.cfg.ReadTimeout)
	if c.fd >= len(l.conns) {
		l.conns = append(l.conns, make([]*econn, c.fd+1-len(l.conns))...)
	}
	c.b = l.s.getBufs(&l.s.loopBufs, &c.rd, l.s.cfg.MaxRequestBytes+1)
	l.conns[c.fd] = c
	l.n++
	l.handle(c, syscall.EPOLLIN)
	if l.conns[c.fd] != c || c.watched {
		return // closed, or waiting for EPOLLOUT
	}
	if err := l.interest(c, syscall.EPOLLIN); err != nil {
		l.s.log.Warn("cannot watch a new connection; closing it", zap.Error(err))
		l.close(c)
	}
}

// resumeAccept puts the listening socket back in the epoll set once the
// backoff after a failed accept has passed.
func (l *loop) resumeAccept() {
	if l.lfd < 0 || l.acceptAgain == 0 || l.now < l.acceptAgain {
		return
	}
	l.acceptAgain = 0
	if err := rawEpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, l.lfd, listenEvents); err != nil {
		l.s.log.Error("event loop stopped accepting", zap.Error(err))
		l.closeListener()
	}
}

// closeListener closes the loop's listening socket (it leaves the epoll
// set with it). Only the loop's goroutine calls it once the loop runs, so
// an event already read for it is never taken for a connection that got
// the same number.
func (l *loop) closeListener() {
	if l.lfd >= 0 {
		syscall.Close(l.lfd)
		l.lfd = -1
	}
}

func (l *loop) run() {
	defer l.file.Close()
	defer l.closeListener()
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
		if l.acceptDone.Load() || l.s.shutting.Load() {
			l.closeListener()
		}
		l.resumeAccept()
		l.sweep()
		if l.acceptDone.Load() && l.n == 0 {
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
	accept := false
	for i := range l.events[:n] {
		ev := &l.events[i]
		switch fd := int(ev.Fd); {
		case fd == l.lfd:
			accept = true // after the requests already open
		case fd < len(l.conns) && l.conns[fd] != nil:
			l.handle(l.conns[fd], ev.Events)
		}
	}
	if accept {
		l.accept()
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

// interest sets what the loop waits for on c, adding c to the epoll set
// the first time.
func (l *loop) interest(c *econn, events uint32) error {
	op := syscall.EPOLL_CTL_MOD
	if !c.watched {
		op = syscall.EPOLL_CTL_ADD
	}
	if err := rawEpollCtl(l.epfd, op, c.fd, events); err != nil {
		return err
	}
	c.watched = true
	return nil
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
	rawClose(c.fd) // also leaves the epoll set
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
	l.closeListener()
	for _, c := range l.conns {
		if c != nil {
			l.close(c)
		}
	}
}
