package httpfront

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/xbt-tracker/xbt-tracker/passkey"
	"github.com/xbt-tracker/xbt-tracker/tracker"
)

func vectorNamed(tb testing.TB, name string) vector {
	for _, v := range loadVectors(tb) {
		if v.name == name {
			return v
		}
	}
	tb.Fatalf("no vector %q", name)
	return vector{}
}

func BenchmarkParseAnnounce(b *testing.B) {
	for _, name := range []string{
		"aria2/1.36.0  announce event=started left>0",       // upper-case escapes, raw bytes
		"Transmission/3.00  announce event=started left==0", // lower-case escapes
		"libtorrent/2.0.8.0  announce event=started left>0", // unescaped marks, most parameters
	} {
		q := bytes.Clone(readVector(b, vectorNamed(b, name)).Query)
		b.Run(strings.SplitN(name, "/", 2)[0], func(b *testing.B) {
			var a tracker.Announce
			var ex AnnounceExtras
			b.ReportAllocs()
			b.SetBytes(int64(len(q)))
			for b.Loop() {
				if err := ParseAnnounceExtras(q, &a, &ex); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkReadRequest(b *testing.B) {
	raw := []byte(vectorNamed(b, "Transmission/3.00  announce event=started left==0").raw)
	rd := bytes.NewReader(raw)
	br := bufio.NewReaderSize(rd, readBufSize)
	var r Request
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		rd.Reset(raw)
		br.Reset(rd)
		if err := ReadRequest(br, DefaultMaxRequestBytes, &r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeAnnounce(b *testing.B) {
	r := tracker.AnnounceResult{Complete: 120, Incomplete: 30, Interval: 1800, MinInterval: 1800,
		Peers4: make([]byte, 50*6), PeerIDs4: make([]tracker.PeerID, 50)}
	for i := range r.Peers4 {
		r.Peers4[i] = byte(i)
	}
	for _, bc := range []struct {
		name    string
		compact bool
	}{{"compact50", true}, {"dict50", false}} {
		b.Run(bc.name, func(b *testing.B) {
			buf := make([]byte, 0, 8192)
			b.ReportAllocs()
			for b.Loop() {
				buf = AppendAnnounce(buf[:0], &r, bc.compact, false)
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}

// handlerFixture is a real tracker with a 51-peer swarm and a server whose
// request path is driven from memory: no socket, so allocations and time
// are the server's alone.
type handlerFixture struct {
	s   *Server
	c   *conn
	b   *connBufs
	rd  *bytes.Reader
	raw []byte
}

func newHandlerFixture(tb testing.TB) *handlerFixture {
	const secret = "bench-secret"
	trk := tracker.New(tracker.Settings{Secret: secret, AnnounceInterval: 1800, DefaultNumWant: 50, MaxNumWant: 200}, tracker.Options{})
	trk.UpsertUser(tracker.User{UID: 1, CanLeech: true})
	var ih tracker.InfoHash
	copy(ih[:], "bench-info-hash-0001")
	trk.UpsertTorrent(tracker.Torrent{Fid: 1, InfoHash: ih})
	pk := []byte(passkey.Derive(secret, 0, 1, ih))
	for i := 0; i < 50; i++ {
		var a tracker.Announce
		a.Passkey, a.InfoHash, a.Port = pk, ih, uint16(20000+i)
		copy(a.PeerID[:], fmt.Sprintf("-BN0001-%012d", i))
		a.Addr = netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		var out tracker.AnnounceResult
		trk.Announce(&a, &out)
		if out.Failure != "" {
			tb.Fatal(out.Failure)
		}
	}
	s := New(trk, Config{})
	f := &handlerFixture{s: s, c: &conn{fd: -1, remote: netip.MustParseAddr("127.0.0.1")}, rd: bytes.NewReader(nil)}
	f.b = s.getBufs(&s.bufs, f.rd, readBufSize)
	f.raw = []byte("GET /" + string(pk) + "/announce?info_hash=" + urlEscape(ih[:]) +
		"&peer_id=-TR3000-xhe3ois5eq3v&port=57547&uploaded=0&downloaded=0&left=100&numwant=80&key=430f3ea9&compact=1&supportcrypto=1 HTTP/1.1\r\n" +
		"Host: 127.0.0.1:57023\r\nUser-Agent: Transmission/3.00\r\nAccept: */*\r\nAccept-Encoding: deflate, gzip, br, zstd\r\n\r\n")
	f.serve(tb) // first announce: adds the peer
	f.serve(tb) // warm
	return f
}

func urlEscape(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		fmt.Fprintf(&sb, "%%%02x", c)
	}
	return sb.String()
}

// serve runs one request through the server's request path.
func (f *handlerFixture) serve(tb testing.TB) {
	f.rd.Reset(f.raw)
	f.b.br.Reset(f.rd)
	f.b.out = f.b.out[:0]
	keep, closeNow := f.s.serveRequest(f.c, f.b)
	if !keep || closeNow || !bytes.HasPrefix(f.b.out, []byte("HTTP/1.1 200 OK\r\n")) ||
		bytes.Contains(f.b.out, []byte("failure")) {
		tb.Fatalf("keep=%v close=%v %q", keep, closeNow, f.b.out)
	}
}

// The whole server-side path of a warm announce (read head, parse, client
// address, engine, encode, response head) allocates nothing.
func TestServeAnnounceAllocs(t *testing.T) {
	f := newHandlerFixture(t)
	if n := testing.AllocsPerRun(200, func() { f.serve(t) }); n != 0 {
		t.Errorf("%v allocs per announce", n)
	}
	out := f.b.out
	if !bytes.Contains(out, []byte("5:peers300:")) || !bytes.Contains(out, []byte("8:completei50e10:incompletei1e")) {
		t.Errorf("%q", out)
	}
}

func BenchmarkServeAnnounce(b *testing.B) {
	f := newHandlerFixture(b)
	b.ReportAllocs()
	for b.Loop() {
		f.serve(b)
	}
}
