package udpfront

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// Config tunes a Server. Zero values take the defaults.
type Config struct {
	// Logger gets warnings (panics, socket errors); nil discards them.
	// Packets are never logged.
	Logger *zap.Logger
	// ConnIDKey is the secret connection ids are derived from. Empty (the
	// normal case): 16 random bytes drawn by New, so ids die with the
	// process and clients simply connect again.
	ConnIDKey []byte
	// ConnIDWindow is the time window of connection ids (default
	// DefaultConnIDWindow): an id is accepted in its window and the next.
	ConnIDWindow time.Duration
	// Now is the clock of connection ids; nil means time.Now. (The engine
	// has its own clock, tracker.Options.Now.)
	Now func() time.Time
	// MaxPacket is the largest request accepted (default DefaultMaxPacket);
	// larger ones are dropped unread. It also bounds a scrape's hashes and
	// an announce's BEP 41 options.
	MaxPacket int
	// Workers is the number of goroutines reading each PacketConn given to
	// Serve (default GOMAXPROCS).
	Workers int

	// NoBatch makes every worker read one packet at a time through
	// net.UDPConn, as on systems without recvmmsg (tests compare both);
	// on Linux a *net.UDPConn is otherwise read in batches (batch_linux.go).
	NoBatch bool
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("udpfront: server closed")

// maxAnswer is the largest UDP payload over IPv4; answers never exceed it.
const maxAnswer = 65507

// Server is the UDP frontend (BEP 15 with BEP 41 URL data). It keeps no
// per-client state. One Server may Serve several PacketConns (the IPv4 and
// IPv6 listeners).
type Server struct {
	trk       *tracker.Tracker
	cfg       Config
	log       *zap.Logger
	ids       *connIDs
	maxPacket int
	workers   int

	shutting atomic.Bool
	counters counters
	coll     *collector

	mu      sync.Mutex
	conns   map[net.PacketConn]struct{}
	serving sync.WaitGroup // one per running Serve
}

// New returns a Server answering for t.
func New(t *tracker.Tracker, cfg Config) *Server {
	if cfg.ConnIDWindow <= 0 {
		cfg.ConnIDWindow = DefaultConnIDWindow
	}
	if cfg.MaxPacket <= 0 {
		cfg.MaxPacket = DefaultMaxPacket
	}
	if cfg.MaxPacket > maxAnswer {
		cfg.MaxPacket = maxAnswer
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	s := &Server{
		trk:       t,
		cfg:       cfg,
		log:       cfg.Logger,
		ids:       newConnIDs(cfg.ConnIDKey, cfg.ConnIDWindow, cfg.Now),
		maxPacket: cfg.MaxPacket,
		workers:   cfg.Workers,
		conns:     make(map[net.PacketConn]struct{}),
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	s.coll = newCollector(s)
	return s
}

// Collector exports xbt_udp_packets_total{action,result} and
// xbt_udp_errors_total{reason}.
func (s *Server) Collector() prometheus.Collector { return s.coll }

// bufs is one worker's reusable state: a warm announce allocates nothing.
type bufs struct {
	in   []byte // MaxPacket+1: a read that fills it was oversized
	out  []byte
	req  Request
	ann  tracker.Announce
	ares tracker.AnnounceResult
	sreq tracker.ScrapeRequest
	sres tracker.ScrapeResult
}

func (s *Server) newBufs() *bufs {
	b := &bufs{
		in:  make([]byte, s.maxPacket+1),
		out: make([]byte, 0, 2048),
	}
	b.req.URLData = make([]byte, 0, 256)
	b.req.InfoHashes = make([]tracker.InfoHash, 0, MaxScrapeHashes)
	b.ares.Peers4 = make([]byte, 0, 200*6)
	b.ares.Peers6 = make([]byte, 0, 50*18)
	b.sres.Files = make([]tracker.ScrapeFile, 0, MaxScrapeHashes)
	return b
}

// Serve reads packets from pc with Config.Workers goroutines and answers
// them until pc fails or Shutdown is called (then it returns
// ErrServerClosed; Shutdown closes pc).
func (s *Server) Serve(pc net.PacketConn) error {
	s.mu.Lock()
	if s.shutting.Load() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.conns[pc] = struct{}{}
	s.serving.Add(1)
	s.mu.Unlock()
	defer s.serving.Done()

	errs := make(chan error, s.workers)
	for range s.workers {
		go func() { errs <- s.worker(pc) }()
	}
	var first error
	for range s.workers {
		if err := <-errs; err != nil && first == nil {
			first = err
			// One worker's fatal error ends the others too.
			pc.SetReadDeadline(time.Now())
		}
	}
	if s.shutting.Load() {
		return ErrServerClosed
	}
	s.mu.Lock()
	delete(s.conns, pc)
	s.mu.Unlock()
	return first
}

type addrPortConn interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
}

func (s *Server) worker(pc net.PacketConn) error {
	if uc, ok := pc.(*net.UDPConn); ok && !s.cfg.NoBatch {
		if ok, err := s.batchWorker(uc); ok {
			return err
		}
	}
	b := s.newBufs()
	fast, _ := pc.(addrPortConn) // *net.UDPConn: reads and writes without allocating
	var backoff time.Duration
	for {
		var n int
		var from netip.AddrPort
		var err error
		if fast != nil {
			n, from, err = fast.ReadFromUDPAddrPort(b.in)
		} else {
			var a net.Addr
			n, a, err = pc.ReadFrom(b.in)
			from = addrPortOf(a)
		}
		if err != nil {
			if s.shutting.Load() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) {
				return err
			}
			s.readFailed(err, &backoff)
			continue
		}
		backoff = 0
		if n > s.maxPacket {
			s.counters.error(reasonOversized)
			s.counters.packet(actOther, resDropped)
			continue
		}
		if !from.IsValid() {
			continue
		}
		out := s.handlePacket(b, b.in[:n], from)
		if len(out) == 0 {
			continue
		}
		if fast != nil {
			_, err = fast.WriteToUDPAddrPort(out, from)
		} else {
			_, err = pc.WriteTo(out, net.UDPAddrFromAddrPort(from))
		}
		if err != nil {
			s.counters.error(reasonWrite)
		}
	}
}

// readFailed handles a transient read error (an ICMP report, a full
// buffer): it counts and logs it and waits a little (1 ms after the first
// in a row, doubling up to 1 s) rather than give up the port.
func (s *Server) readFailed(err error, backoff *time.Duration) {
	s.counters.error(reasonRead)
	*backoff = max(min(2**backoff, time.Second), time.Millisecond)
	s.log.Warn("UDP read failed; retrying", zap.Error(err), zap.Duration("backoff", *backoff))
	time.Sleep(*backoff)
}

func addrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort()
	case nil:
		return netip.AddrPort{}
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// Shutdown stops reading, lets the packets being handled be answered, then
// closes every PacketConn given to Serve and returns. When ctx ends first,
// the PacketConns are closed at once and ctx.Err() is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutting.Store(true)
	for pc := range s.conns {
		pc.SetReadDeadline(time.Now()) // wakes the readers; a write still works
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { s.serving.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.mu.Lock()
	for pc := range s.conns {
		pc.Close()
		delete(s.conns, pc)
	}
	s.mu.Unlock()
	return err
}

// handlePacket answers one packet into b.out and returns the answer, or nil
// for no answer. A panic is recovered, counted and logged: the packet gets
// no answer and the server goes on.
func (s *Server) handlePacket(b *bufs, pkt []byte, from netip.AddrPort) (out []byte) {
	defer func() {
		if p := recover(); p != nil {
			s.counters.error(reasonPanic)
			s.log.Warn("panic serving a UDP packet; dropped it",
				zap.Stringer("remote", from), zap.Any("panic", p),
				zap.ByteString("stack", debug.Stack()))
			b.ann.Passkey = nil
			out = nil
		}
	}()
	return s.handle(b, pkt, from)
}

func (s *Server) drop(a action, r reason) []byte {
	s.counters.error(r)
	s.counters.packet(a, resDropped)
	return nil
}

// handle is the whole request path of one packet: deny list, parse,
// connection id, engine, answer.
func (s *Server) handle(b *bufs, pkt []byte, from netip.AddrPort) []byte {
	addr := from.Addr().Unmap()
	if s.trk.Denied(addr) {
		// No answer to a banned address, as the HTTP frontend closes its
		// connections at accept (XBT).
		return s.drop(actionOfPacket(pkt), reasonDenied)
	}
	req := &b.req
	err := ParsePacket(pkt, req)
	switch {
	case errors.Is(err, ErrShort):
		return s.drop(actOther, reasonShort)
	case errors.Is(err, ErrUnknownAction):
		return s.drop(actOther, reasonUnknownAction)
	case errors.Is(err, ErrBadMagic):
		return s.drop(actConnect, reasonProtocolID)
	}
	if req.Action == ActionConnect {
		s.counters.packet(actConnect, resOK)
		b.out = AppendConnect(b.out[:0], req.TransactionID, s.ids.issue(from))
		return b.out
	}
	act := actionOf(req.Action)
	// Only a client that proved it receives at its address gets anything
	// more than a 16-byte connect answer: no reflection, no amplification.
	if !s.ids.valid(req.ConnectionID, from) {
		return s.drop(act, reasonConnectionID)
	}
	if err != nil {
		s.counters.packet(act, resBadRequest)
		b.out = AppendError(b.out[:0], req.TransactionID, err.Error())
		return b.out
	}
	if act == actAnnounce {
		return s.announce(b, addr)
	}
	return s.scrape(b, addr)
}

// actionOfPacket is the action label of a packet not parsed yet.
func actionOfPacket(pkt []byte) action {
	if len(pkt) < HeaderSize {
		return actOther
	}
	return actionOf(uint32(pkt[8])<<24 | uint32(pkt[9])<<16 | uint32(pkt[10])<<8 | uint32(pkt[11]))
}

func (s *Server) announce(b *bufs, addr netip.Addr) []byte {
	req, a := &b.req, &b.ann
	*a = tracker.Announce{
		Passkey:    PasskeyFromURLData(req.URLData),
		InfoHash:   req.InfoHash,
		PeerID:     req.PeerID,
		Addr:       addr, // the packet's source; the IP field is ignored
		Port:       req.Port,
		Uploaded:   req.Uploaded,
		Downloaded: req.Downloaded,
		Left:       req.Left,
		Event:      req.Event,
		NumWant:    req.NumWant,
	}
	s.trk.Announce(a, &b.ares) // checks the deny list first
	a.Passkey = nil
	if b.ares.Failure == tracker.ErrHostDenied {
		return s.drop(actAnnounce, reasonDenied) // banned since the check above
	}
	ipv6 := addr.Is6()
	size := 6
	if ipv6 {
		size = 18
	}
	b.out = AppendAnnounce(b.out[:0], req.TransactionID, &b.ares, ipv6, (maxAnswer-20)/size)
	if b.ares.Failure != "" {
		s.counters.packet(actAnnounce, resFailure)
	} else {
		s.counters.packet(actAnnounce, resOK)
	}
	return b.out
}

// scrape answers a scrape. BEP 15 gives a scrape no room for a passkey, so
// it is always anonymous: refused ("unregistered torrent pass") unless
// anonymous_scrape is on.
func (s *Server) scrape(b *bufs, addr netip.Addr) []byte {
	req := &b.req
	b.sreq = tracker.ScrapeRequest{InfoHashes: req.InfoHashes, Addr: addr}
	s.trk.Scrape(&b.sreq, &b.sres)
	b.sreq.InfoHashes = nil
	if b.sres.Failure == tracker.ErrHostDenied {
		return s.drop(actScrape, reasonDenied)
	}
	b.out = AppendScrape(b.out[:0], req.TransactionID, req.InfoHashes, &b.sres)
	if b.sres.Failure != "" {
		s.counters.packet(actScrape, resFailure)
	} else {
		s.counters.packet(actScrape, resOK)
	}
	return b.out
}
