package httpfront_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/xbt-tracker/xbt-tracker/internal/conformance"
	"github.com/xbt-tracker/xbt-tracker/passkey"
	"github.com/xbt-tracker/xbt-tracker/tracker"
	"github.com/xbt-tracker/xbt-tracker/tracker/httpfront"
)

// benchClient is a keep-alive connection sending a prepared request and
// reading answers without allocating, so that allocs/op is the server's.
type benchClient struct {
	c   net.Conn
	br  *bufio.Reader
	req []byte
}

func (bc *benchClient) roundTrip() error {
	if _, err := bc.c.Write(bc.req); err != nil {
		return err
	}
	n := -1
	for {
		line, err := bc.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			n = 0
			for _, c := range bytes.TrimSpace(v) {
				n = n*10 + int(c-'0')
			}
		}
	}
	if n < 0 {
		return fmt.Errorf("no Content-Length")
	}
	_, err := bc.br.Discard(n)
	return err
}

// BenchmarkHTTPAnnounce: a warm announce (a leecher in a swarm of 50
// seeders, 50 peers answered) over a real keep-alive TCP connection to a
// Server on 127.0.0.1 with a real tracker. ns/op is the round trip through
// both kernels; allocs/op counts client and server (the client allocates
// nothing).
func BenchmarkHTTPAnnounce(b *testing.B) {
	trk := conformance.NewTracker(conformance.BaseSettings(), &conformance.Clock{})
	for i := 0; i < 50; i++ {
		a := tracker.Announce{
			Passkey: []byte(passkey.Derive(conformance.Secret, 0, 1, conformance.H1)), InfoHash: conformance.H1,
			PeerID: conformance.PeerID(i), Addr: netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), Port: 6881,
		}
		var out tracker.AnnounceResult
		trk.Announce(&a, &out)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := httpfront.New(trk, httpfront.Config{})
	go srv.Serve(ln)
	defer srv.Shutdown(b.Context())

	var next atomic.Int32
	dial := func() (*benchClient, error) {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			return nil, err
		}
		n := int(next.Add(1))
		path := announcePath(2, conformance.H1, 1000+n, 7000+n, 100, "&numwant=50&key=430f3ea9&compact=1&supportcrypto=1")
		req := "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port) +
			"\r\nUser-Agent: Transmission/3.00\r\nAccept: */*\r\nAccept-Encoding: deflate, gzip, br, zstd\r\n\r\n"
		bc := &benchClient{c: c, br: bufio.NewReaderSize(c, 8192), req: []byte(req)}
		return bc, bc.roundTrip() // the first announce adds the peer
	}

	b.Run("serial", func(b *testing.B) {
		bc, err := dial()
		if err != nil {
			b.Fatal(err)
		}
		defer bc.c.Close()
		b.ReportAllocs()
		for b.Loop() {
			if err := bc.roundTrip(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(8) // connections per GOMAXPROCS
		b.RunParallel(func(pb *testing.PB) {
			bc, err := dial()
			if err != nil {
				b.Error(err)
				return
			}
			defer bc.c.Close()
			for pb.Next() {
				if err := bc.roundTrip(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
