package udpfront

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"slices"
	"testing"

	cf "github.com/xbt-tracker/xbt-tracker/internal/conformance"
	"github.com/xbt-tracker/xbt-tracker/tracker"
)

func seedPackets(f *testing.F) {
	a := ann{InfoHash: cf.H1, PeerID: cf.PeerID(1), Left: 10, NumWant: -1, Port: 6881, Event: 2}
	for _, p := range [][]byte{
		connectPacket(1),
		announcePacket(1, 2, a),
		announcePacket(1, 2, a.withPath("/"+testPK+"/announce")),
		announcePacket(1, 2, a.withPath("/announce?passkey=x")),
		append(announcePacket(1, 2, a), optNOP, optURLData, 3, '/', 'a', 'b', optEndOfOptions, 0xff),
		append(announcePacket(1, 2, a), 0x42, 0),
		append(announcePacket(1, 2, a), optURLData, 200),
		scrapePacket(1, 3, cf.H1, cf.H2),
		scrapePacket(1, 3),
		{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 1},
	} {
		f.Add(p, false)
		f.Add(p, true)
	}
}

// FuzzParsePacket feeds arbitrary packets to ParsePacket. It must not
// panic, a parse must not depend on what the reused Request held before,
// accepted packets must be what BEP 15 allows (announces re-encode to the
// same bytes, passkeys are 32 bytes), and the encoders must take whatever
// the parse produced.
func FuzzParsePacket(f *testing.F) {
	seedPackets(f)
	var dirty Request
	dirty.URLData = append(dirty.URLData, "/leftover/announce"...)
	dirty.InfoHashes = append(dirty.InfoHashes, cf.H3)
	var out []byte
	f.Fuzz(func(t *testing.T, pkt []byte, _ bool) {
		if len(pkt) > 512 {
			// Longer packets are only longer option lists and scrapes; a
			// bound keeps the fuzzer from spending its time minimizing
			// huge inputs.
			return
		}
		var fresh Request
		err := ParsePacket(pkt, &fresh)
		err2 := ParsePacket(pkt, &dirty)
		if err != err2 || !sameRequest(&fresh, &dirty) {
			t.Fatalf("reused Request parses differently: %v/%v %+v vs %+v", err, err2, fresh, dirty)
		}
		if err != nil {
			return
		}
		checkRequest(t, pkt, &fresh)
		switch fresh.Action {
		case ActionConnect:
			out = AppendConnect(out[:0], fresh.TransactionID, 1)
		case ActionAnnounce:
			// Any URL data as peers: the encoder never reads past them.
			res := tracker.AnnounceResult{Peers4: fresh.URLData, Peers6: fresh.URLData, Interval: int(fresh.Key)}
			out = AppendAnnounce(out[:0], fresh.TransactionID, &res, fresh.Port%2 == 1, fresh.NumWant)
		case ActionScrape:
			files := make([]tracker.ScrapeFile, len(fresh.InfoHashes))
			for i, h := range fresh.InfoHashes {
				files[i] = tracker.ScrapeFile{InfoHash: h, Complete: i}
			}
			slices.SortFunc(files, func(a, b tracker.ScrapeFile) int { return cmpHash(&a.InfoHash, &b.InfoHash) })
			out = AppendScrape(out[:0], fresh.TransactionID, fresh.InfoHashes, &tracker.ScrapeResult{Files: files})
		}
		checkAnswer(t, pkt, out)
	})
}

// FuzzHandlePacket runs arbitrary packets through a Server's whole request
// path (deny list, parse, connection id, engine, answer) on a fresh
// tracker each time, with a valid connection id patched in when useID is
// set so that announces and scrapes reach the engine. Nothing may panic (a
// recovered panic counts as a failure) and every answer is well formed.
func FuzzHandlePacket(f *testing.F) {
	seedPackets(f)
	s := cf.BaseSettings()
	s.AutoRegister = true // random hashes reach the swarm code too
	s.AnonymousAnnounce = true
	s.AnonymousScrape = true
	srv := New(nil, Config{})
	b := srv.newBufs()
	from := netip.MustParseAddrPort("198.51.100.7:51413")
	f.Fuzz(func(t *testing.T, pkt []byte, useID bool) {
		if len(pkt) > 512 {
			return // as in FuzzParsePacket: longer inputs only cost minimization time
		}
		srv.trk = cf.NewTracker(s, &cf.Clock{}) // no state carried between inputs
		if useID && len(pkt) >= 8 {
			pkt = bytes.Clone(pkt)
			binary.BigEndian.PutUint64(pkt, srv.ids.issue(from))
		}
		out := srv.handlePacket(b, pkt, from)
		if n := srv.counters.errors[reasonPanic].Load(); n != 0 {
			t.Fatalf("handling %x panicked", pkt)
		}
		checkAnswer(t, pkt, out)
		// The same packet again (a retransmission) is answered alike.
		out2 := srv.handlePacket(b, pkt, from)
		if (out == nil) != (out2 == nil) {
			t.Fatalf("retransmission answered differently")
		}
		checkAnswer(t, pkt, out2)
	})
}

func sameRequest(a, b *Request) bool {
	return a.ConnectionID == b.ConnectionID && a.Action == b.Action && a.TransactionID == b.TransactionID &&
		a.InfoHash == b.InfoHash && a.PeerID == b.PeerID && a.Downloaded == b.Downloaded &&
		a.Left == b.Left && a.Uploaded == b.Uploaded && a.Event == b.Event && a.IP == b.IP &&
		a.Key == b.Key && a.NumWant == b.NumWant && a.Port == b.Port && a.Options == b.Options &&
		bytes.Equal(a.URLData, b.URLData) && len(a.InfoHashes) == len(b.InfoHashes) &&
		bytes.Equal(hashBytes(a.InfoHashes), hashBytes(b.InfoHashes))
}

func hashBytes(hs []tracker.InfoHash) []byte {
	var out []byte
	for _, h := range hs {
		out = append(out, h[:]...)
	}
	return out
}

func checkRequest(t *testing.T, pkt []byte, r *Request) {
	switch r.Action {
	case ActionConnect:
		if r.ConnectionID != ProtocolID || len(pkt) < ConnectSize {
			t.Fatalf("bad connect accepted: %x", pkt)
		}
	case ActionAnnounce:
		if len(pkt) < AnnounceSize || len(r.URLData) > MaxURLData || r.Options > len(pkt)-AnnounceSize ||
			r.NumWant < -1 || r.Event > tracker.EventStopped || int64(r.Left) < 0 {
			t.Fatalf("bad announce accepted: %+v", r)
		}
		var ev uint32
		switch r.Event {
		case tracker.EventCompleted:
			ev = 1
		case tracker.EventStarted:
			ev = 2
		case tracker.EventStopped:
			ev = 3
		}
		nw := int32(r.NumWant)
		if nw == -1 {
			nw = int32(binary.BigEndian.Uint32(pkt[92:96])) // any negative value
		}
		re := announcePacket(r.ConnectionID, r.TransactionID, ann{InfoHash: r.InfoHash, PeerID: r.PeerID,
			Downloaded: int64(r.Downloaded), Left: int64(r.Left), Uploaded: int64(r.Uploaded), Event: ev,
			IP: r.IP, Key: r.Key, NumWant: nw, Port: r.Port})
		if !bytes.Equal(re, pkt[:AnnounceSize]) {
			t.Fatalf("announce re-encodes to %x, was %x", re, pkt[:AnnounceSize])
		}
		if pk := PasskeyFromURLData(r.URLData); pk != nil && (len(pk) != 32 || bytes.IndexByte(pk, '/') >= 0) {
			t.Fatalf("passkey %q from %q", pk, r.URLData)
		}
	case ActionScrape:
		if n := len(r.InfoHashes); n == 0 || n != (len(pkt)-HeaderSize)/20 ||
			!bytes.Equal(hashBytes(r.InfoHashes), pkt[HeaderSize:HeaderSize+20*n]) {
			t.Fatalf("scrape hashes %d from %d bytes", n, len(pkt))
		}
	default:
		t.Fatalf("action %d accepted", r.Action)
	}
}

func checkAnswer(t *testing.T, pkt, out []byte) {
	if out == nil {
		return
	}
	if len(pkt) < HeaderSize || len(out) < 8 || !bytes.Equal(out[4:8], pkt[12:16]) {
		t.Fatalf("answer %x to %x: transaction id not echoed", out, pkt)
	}
	switch binary.BigEndian.Uint32(out[0:4]) {
	case ActionConnect:
		if len(out) != 16 {
			t.Fatalf("connect answer %x", out)
		}
	case ActionAnnounce:
		if len(out) < 20 || (len(out)-20)%6 != 0 {
			t.Fatalf("announce answer %x", out)
		}
	case ActionScrape:
		if n := (len(pkt) - HeaderSize) / 20; len(out) != 8+12*n {
			t.Fatalf("scrape answer of %d bytes for %d hashes", len(out), n)
		}
	case ActionError:
		if len(out) == 8 {
			t.Fatalf("error answer without a message")
		}
	default:
		t.Fatalf("answer %x", out)
	}
}
