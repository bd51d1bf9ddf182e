package udpfront

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	cf "github.com/xbt-tracker/xbt-tracker/internal/conformance"
	"github.com/xbt-tracker/xbt-tracker/passkey"
	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// fakeClock is a settable clock for Config.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2024, 1, 1, 0, 0, 30, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// testServer is a Server serving on 127.0.0.1 and, when the host has it,
// [::1], stopped at the end of the test.
type testServer struct {
	srv   *Server
	addr4 netip.AddrPort
	addr6 netip.AddrPort // invalid without IPv6 loopback
}

func startServer(t testing.TB, trk *tracker.Tracker, cfg Config) *testServer {
	t.Helper()
	srv := New(trk, cfg)
	ts := &testServer{srv: srv}
	var pcs []net.PacketConn
	pc4, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pcs = append(pcs, pc4)
	ts.addr4 = pc4.LocalAddr().(*net.UDPAddr).AddrPort()
	if pc6, err := net.ListenPacket("udp6", "[::1]:0"); err == nil {
		pcs = append(pcs, pc6)
		ts.addr6 = pc6.LocalAddr().(*net.UDPAddr).AddrPort()
	}
	done := make(chan error, len(pcs))
	for _, pc := range pcs {
		go func() { done <- srv.Serve(pc) }()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		for range pcs {
			if err := <-done; !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve: %v", err)
			}
		}
	})
	return ts
}

// udpClient speaks BEP 15 from one local socket to one server address.
type udpClient struct {
	t    testing.TB
	conn *net.UDPConn
	cid  uint64
	tid  uint32
}

func dial(t testing.TB, server netip.AddrPort) *udpClient {
	t.Helper()
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(server))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &udpClient{t: t, conn: conn, tid: uint32(time.Now().UnixNano())}
}

func (c *udpClient) localAddr() netip.AddrPort {
	return c.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

func (c *udpClient) nextTID() uint32 { c.tid++; return c.tid }

// send sends pkt as it is.
func (c *udpClient) send(pkt []byte) {
	c.t.Helper()
	if _, err := c.conn.Write(pkt); err != nil {
		c.t.Fatal(err)
	}
}

// recv waits up to d for a packet; nil on timeout.
func (c *udpClient) recv(d time.Duration) []byte {
	c.t.Helper()
	buf := make([]byte, 70000)
	c.conn.SetReadDeadline(time.Now().Add(d))
	n, err := c.conn.Read(buf)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	if err != nil {
		c.t.Fatal(err)
	}
	return buf[:n]
}

// roundTrip sends pkt (whose transaction id is tid) and returns the answer
// carrying tid; error on timeout.
func (c *udpClient) roundTrip(pkt []byte, tid uint32) ([]byte, error) {
	c.t.Helper()
	c.send(pkt)
	deadline := time.Now().Add(3 * time.Second)
	for {
		d := time.Until(deadline)
		if d <= 0 {
			return nil, fmt.Errorf("no answer to action %d", binary.BigEndian.Uint32(pkt[8:12]))
		}
		ans := c.recv(d)
		if ans == nil {
			continue
		}
		if len(ans) >= 8 && binary.BigEndian.Uint32(ans[4:8]) == tid {
			return ans, nil
		}
	}
}

func connectPacket(tid uint32) []byte {
	p := binary.BigEndian.AppendUint64(nil, ProtocolID)
	p = binary.BigEndian.AppendUint32(p, ActionConnect)
	return binary.BigEndian.AppendUint32(p, tid)
}

// connect obtains a connection id and keeps it for the next requests.
func (c *udpClient) connect() uint64 {
	c.t.Helper()
	tid := c.nextTID()
	ans, err := c.roundTrip(connectPacket(tid), tid)
	if err != nil {
		c.t.Fatal(err)
	}
	if len(ans) != 16 || binary.BigEndian.Uint32(ans[0:4]) != ActionConnect {
		c.t.Fatalf("connect answer %x", ans)
	}
	c.cid = binary.BigEndian.Uint64(ans[8:16])
	return c.cid
}

// ann is an announce as a test builds it.
type ann struct {
	InfoHash   tracker.InfoHash
	PeerID     tracker.PeerID
	Downloaded int64
	Left       int64
	Uploaded   int64
	Event      uint32 // BEP 15 codes: 0 none, 1 completed, 2 started, 3 stopped
	IP         [4]byte
	Key        uint32
	NumWant    int32 // -1 default
	Port       uint16
	Options    []byte // raw BEP 41 options
}

// withPath sets the options to one URLData option holding path.
func (a ann) withPath(path string) ann {
	a.Options = urlDataOption(path)
	return a
}

func urlDataOption(path string) []byte {
	var o []byte
	for len(path) > 0 {
		n := min(len(path), 255)
		o = append(o, optURLData, byte(n))
		o = append(o, path[:n]...)
		path = path[n:]
	}
	return o
}

func announcePacket(cid uint64, tid uint32, a ann) []byte {
	p := binary.BigEndian.AppendUint64(nil, cid)
	p = binary.BigEndian.AppendUint32(p, ActionAnnounce)
	p = binary.BigEndian.AppendUint32(p, tid)
	p = append(p, a.InfoHash[:]...)
	p = append(p, a.PeerID[:]...)
	p = binary.BigEndian.AppendUint64(p, uint64(a.Downloaded))
	p = binary.BigEndian.AppendUint64(p, uint64(a.Left))
	p = binary.BigEndian.AppendUint64(p, uint64(a.Uploaded))
	p = binary.BigEndian.AppendUint32(p, a.Event)
	p = append(p, a.IP[:]...)
	p = binary.BigEndian.AppendUint32(p, a.Key)
	p = binary.BigEndian.AppendUint32(p, uint32(a.NumWant))
	p = binary.BigEndian.AppendUint16(p, a.Port)
	return append(p, a.Options...)
}

func scrapePacket(cid uint64, tid uint32, hashes ...tracker.InfoHash) []byte {
	p := binary.BigEndian.AppendUint64(nil, cid)
	p = binary.BigEndian.AppendUint32(p, ActionScrape)
	p = binary.BigEndian.AppendUint32(p, tid)
	for _, h := range hashes {
		p = append(p, h[:]...)
	}
	return p
}

// answer is a decoded answer packet.
type answer struct {
	Action             uint32
	Error              string // action 3
	Interval           uint32
	Leechers, Seeders  uint32
	Peers              []netip.AddrPort
	Scrape             [][3]uint32 // seeders, completed, leechers
	raw                []byte
	peerSize, peerTail int
}

// decode decodes an answer; peerSize is 6 or 18 (announce).
func decode(t testing.TB, ans []byte, peerSize int) answer {
	t.Helper()
	if len(ans) < 8 {
		t.Fatalf("answer of %d bytes", len(ans))
	}
	a := answer{Action: binary.BigEndian.Uint32(ans[0:4]), raw: ans}
	body := ans[8:]
	switch a.Action {
	case ActionError:
		a.Error = string(body)
	case ActionAnnounce:
		if len(body) < 12 {
			t.Fatalf("announce answer %x", ans)
		}
		a.Interval = binary.BigEndian.Uint32(body[0:4])
		a.Leechers = binary.BigEndian.Uint32(body[4:8])
		a.Seeders = binary.BigEndian.Uint32(body[8:12])
		peers := body[12:]
		if len(peers)%peerSize != 0 {
			t.Fatalf("%d peer bytes, not a multiple of %d", len(peers), peerSize)
		}
		for i := 0; i < len(peers); i += peerSize {
			var ip netip.Addr
			if peerSize == 6 {
				ip = netip.AddrFrom4([4]byte(peers[i : i+4]))
			} else {
				ip = netip.AddrFrom16([16]byte(peers[i : i+16]))
			}
			a.Peers = append(a.Peers, netip.AddrPortFrom(ip, binary.BigEndian.Uint16(peers[i+peerSize-2:])))
		}
	case ActionScrape:
		if len(body)%12 != 0 {
			t.Fatalf("scrape answer %x", ans)
		}
		for i := 0; i < len(body); i += 12 {
			a.Scrape = append(a.Scrape, [3]uint32{binary.BigEndian.Uint32(body[i:]),
				binary.BigEndian.Uint32(body[i+4:]), binary.BigEndian.Uint32(body[i+8:])})
		}
	default:
		t.Fatalf("answer action %d", a.Action)
	}
	return a
}

// announce sends a and decodes the answer (peer size from the server's
// address family).
func (c *udpClient) announce(a ann) answer {
	c.t.Helper()
	tid := c.nextTID()
	ans, err := c.roundTrip(announcePacket(c.cid, tid, a), tid)
	if err != nil {
		c.t.Fatal(err)
	}
	size := 6
	if c.localAddr().Addr().Is6() && !c.localAddr().Addr().Is4In6() {
		size = 18
	}
	return decode(c.t, ans, size)
}

func (c *udpClient) scrape(hashes ...tracker.InfoHash) answer {
	c.t.Helper()
	tid := c.nextTID()
	ans, err := c.roundTrip(scrapePacket(c.cid, tid, hashes...), tid)
	if err != nil {
		c.t.Fatal(err)
	}
	return decode(c.t, ans, 6)
}

// waitFor polls cond until it holds (the server handled a packet it does not
// answer), failing after a few seconds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// expectDrop sends pkt and requires that the server counts it under
// reason r and sends nothing back.
func (c *udpClient) expectDrop(s *Server, pkt []byte, r reason) {
	c.t.Helper()
	before := s.counters.errors[r].Load()
	c.send(pkt)
	waitFor(c.t, "drop reason "+reasonNames[r], func() bool { return s.counters.errors[r].Load() > before })
	// The server counts before it would have answered; give a stray answer
	// time to arrive.
	if ans := c.recv(100 * time.Millisecond); ans != nil {
		c.t.Errorf("dropped packet (%s) was answered: %x", reasonNames[r], ans)
	}
}

// passkeyOf is u's passkey for h under the conformance fixtures' secret.
func passkeyOf(u tracker.User, h tracker.InfoHash) string {
	return passkey.Derive(cf.Secret, u.TorrentPassVersion, u.UID, h)
}
