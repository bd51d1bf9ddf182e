package udpfront

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/xbt-tracker/xbt-tracker/passkey"
	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// handlerFixture is a real tracker with a 51-peer swarm and a server whose
// request path is driven from memory: no socket, so allocations and time
// are the server's alone.
type handlerFixture struct {
	srv  *Server
	b    *bufs
	pkt  []byte
	from netip.AddrPort
	want int // answer length
}

func newHandlerFixture(tb testing.TB, ipv6 bool) *handlerFixture {
	const secret = "bench-secret"
	trk := tracker.New(tracker.Settings{Secret: secret, AnnounceInterval: 1800, DefaultNumWant: 50, MaxNumWant: 200}, tracker.Options{})
	trk.UpsertUser(tracker.User{UID: 1, CanLeech: true})
	var ih tracker.InfoHash
	copy(ih[:], "bench-info-hash-0001")
	trk.UpsertTorrent(tracker.Torrent{Fid: 1, InfoHash: ih})
	pk := passkey.Derive(secret, 0, 1, ih)
	for i := range 50 {
		a := tracker.Announce{Passkey: []byte(pk), InfoHash: ih, Port: uint16(20000 + i), NumWant: -1}
		copy(a.PeerID[:], fmt.Sprintf("-BN0001-%012d", i))
		a.Addr = netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		if ipv6 {
			a.Addr = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)})
		}
		var out tracker.AnnounceResult
		trk.Announce(&a, &out)
		if out.Failure != "" {
			tb.Fatal(out.Failure)
		}
	}
	f := &handlerFixture{srv: New(trk, Config{}), from: netip.MustParseAddrPort("127.0.0.1:51413"), want: 20 + 50*6}
	if ipv6 {
		f.from, f.want = netip.MustParseAddrPort("[2001:db8::ffff]:51413"), 20+50*18
	}
	f.b = f.srv.newBufs()
	a := ann{InfoHash: ih, Left: 100, NumWant: 200, Port: 51413, Key: 0x430f3ea9}
	copy(a.PeerID[:], "-lt2080-xhe3ois5eq3v")
	// What libtorrent sends: one URLData option, no EndOfOptions.
	f.pkt = announcePacket(f.srv.ids.issue(f.from), 0x1234, a.withPath("/"+pk+"/announce"))
	f.serve(tb) // first announce: adds the peer
	f.serve(tb) // warm
	return f
}

func (f *handlerFixture) serve(tb testing.TB) {
	out := f.srv.handle(f.b, f.pkt, f.from)
	if len(out) != f.want || binary.BigEndian.Uint32(out) != ActionAnnounce {
		tb.Fatalf("answer %x", out)
	}
}

// The whole server-side path of a warm announce (parse, connection id,
// passkey, engine, answer) allocates nothing.
func TestUDPAnnounceAllocs(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		f := newHandlerFixture(t, v6)
		if n := testing.AllocsPerRun(200, func() { f.serve(t) }); n != 0 {
			t.Errorf("IPv6 %v: %v allocs per announce", v6, n)
		}
	}
}

func BenchmarkUDPAnnounce(b *testing.B) {
	for _, v6 := range []bool{false, true} {
		name := "ipv4"
		if v6 {
			name = "ipv6"
		}
		b.Run(name, func(b *testing.B) {
			f := newHandlerFixture(b, v6)
			b.ReportAllocs()
			for b.Loop() {
				f.serve(b)
			}
		})
	}
}

// A round trip through the kernel: a client on 127.0.0.1 sends the warm
// announce and waits for its answer, one at a time.
func BenchmarkUDPAnnounceSocket(b *testing.B) {
	f := newHandlerFixture(b, false)
	ts := startServer(b, f.srv.trk, Config{Workers: 1})
	c := dial(b, ts.addr4)
	c.connect()
	binary.BigEndian.PutUint64(f.pkt, c.cid)
	buf := make([]byte, 2048)
	c.conn.SetReadDeadline(time.Time{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.conn.Write(f.pkt); err != nil {
			b.Fatal(err)
		}
		n, err := c.conn.Read(buf)
		if err != nil || n != f.want {
			b.Fatalf("%d bytes, %v", n, err)
		}
	}
}

func BenchmarkConnID(b *testing.B) {
	ids := newConnIDs(nil, DefaultConnIDWindow, nil)
	a := netip.MustParseAddrPort("192.0.2.1:6881")
	id := ids.issue(a)
	b.ReportAllocs()
	for b.Loop() {
		if !ids.valid(id, a) {
			b.Fatal("refused")
		}
	}
}

func BenchmarkParsePacket(b *testing.B) {
	f := newHandlerFixture(b, false)
	var r Request
	b.ReportAllocs()
	b.SetBytes(int64(len(f.pkt)))
	for b.Loop() {
		if err := ParsePacket(f.pkt, &r); err != nil {
			b.Fatal(err)
		}
	}
}
