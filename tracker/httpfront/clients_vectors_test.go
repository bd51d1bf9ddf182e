package httpfront

import (
	"bufio"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// clientVector is one request head from testdata/clients-e2e.txt: what
// aria2, libtorrent and Transmission sent to xbt-tracker in
// integration/clients_test.go, with the parameters Go's net/url decoded.
type clientVector struct {
	title  string
	expect map[string]string
	raw    string // request head, CRLF line ends, ending in an empty line
}

func loadClientVectors(tb testing.TB) []clientVector {
	tb.Helper()
	data, err := os.ReadFile("testdata/clients-e2e.txt")
	if err != nil {
		tb.Fatal(err)
	}
	var vs []clientVector
	var cur *clientVector
	var lines []string
	flush := func() {
		if cur != nil {
			if len(lines) == 0 || cur.expect == nil {
				tb.Fatalf("vector %q has no request or no expect line", cur.title)
			}
			cur.raw = strings.Join(lines, "\r\n") + "\r\n\r\n"
			vs = append(vs, *cur)
		}
		cur, lines = nil, nil
	}
	for _, l := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(l, "### "):
			flush()
			cur = &clientVector{title: strings.TrimPrefix(l, "### ")}
		case cur != nil && strings.HasPrefix(l, "# expect: "):
			cur.expect = map[string]string{}
			for _, kv := range strings.Fields(strings.TrimPrefix(l, "# expect: ")) {
				k, v, _ := strings.Cut(kv, "=")
				cur.expect[k] = v
			}
		case cur != nil && strings.TrimSpace(l) == "":
			flush()
		case cur != nil:
			lines = append(lines, l)
		}
	}
	flush()
	return vs
}

// TestClientVectorsFromEndToEnd parses every request the real clients sent
// to our own tracker and checks each parameter against what net/url made of
// it.
func TestClientVectorsFromEndToEnd(t *testing.T) {
	vs := loadClientVectors(t)
	if len(vs) < 20 {
		t.Fatalf("only %d vectors in testdata/clients-e2e.txt", len(vs))
	}
	agents := map[string]bool{}
	events := map[string]bool{}
	for _, v := range vs {
		t.Run(v.title, func(t *testing.T) {
			var r Request
			if err := ReadRequest(bufio.NewReader(strings.NewReader(v.raw)), DefaultMaxRequestBytes, &r); err != nil {
				t.Fatalf("ReadRequest: %v", err)
			}
			for _, l := range strings.Split(v.raw, "\r\n") {
				if ua, ok := strings.CutPrefix(l, "User-Agent: "); ok {
					agents[strings.Split(ua, "/")[0]] = true
				}
			}
			if string(r.Path) != v.expect["path"] {
				t.Fatalf("path %q, want %q", r.Path, v.expect["path"])
			}
			passkey, k, ok := trackerPath(r.Path)
			if !ok || len(passkey) != 32 {
				t.Fatalf("trackerPath(%q) = %q, %v, %v", r.Path, passkey, k, ok)
			}
			if want := unhexT(t, v.expect["info_hash"]); k == kindScrape {
				hs, err := ParseScrape(r.Query, nil)
				if err != nil || len(hs) != 1 || hs[0] != tracker.InfoHash(want) {
					t.Fatalf("ParseScrape = %x, %v; want %x", hs, err, want)
				}
				events["scrape"] = true
				return
			}
			var a tracker.Announce
			var ex AnnounceExtras
			if err := ParseAnnounceExtras(r.Query, &a, &ex); err != nil {
				t.Fatalf("ParseAnnounceExtras: %v", err)
			}
			if a.InfoHash != tracker.InfoHash(unhexT(t, v.expect["info_hash"])) {
				t.Errorf("info_hash %x, want %s", a.InfoHash, v.expect["info_hash"])
			}
			if got := hex.EncodeToString(a.PeerID[:]); got != v.expect["peer_id"] {
				t.Errorf("peer_id %s, want %s", got, v.expect["peer_id"])
			}
			for name, got := range map[string]uint64{
				"port": uint64(a.Port), "uploaded": a.Uploaded, "downloaded": a.Downloaded, "left": a.Left,
			} {
				if want, err := strconv.ParseUint(v.expect[name], 10, 64); err != nil || got != want {
					t.Errorf("%s = %d, want %s", name, got, v.expect[name])
				}
			}
			wantEvent := map[string]tracker.Event{"": tracker.EventNone, "started": tracker.EventStarted,
				"completed": tracker.EventCompleted, "stopped": tracker.EventStopped}[v.expect["event"]]
			if a.Event != wantEvent {
				t.Errorf("event %v, want %q", a.Event, v.expect["event"])
			}
			events["announce "+v.expect["event"]] = true
			if n, ok := v.expect["numwant"]; ok && strconv.Itoa(a.NumWant) != n {
				t.Errorf("numwant %d, want %s", a.NumWant, n)
			}
			if !ex.Compact || a.WantPeerID {
				t.Errorf("compact %v, WantPeerID %v: every client asked for compact peers", ex.Compact, a.WantPeerID)
			}
			if ex.NoPeerID != (v.expect["no_peer_id"] == "1") {
				t.Errorf("no_peer_id %v, want %q", ex.NoPeerID, v.expect["no_peer_id"])
			}
		})
	}
	for _, want := range []string{"aria2", "libtorrent", "Transmission"} {
		if !agents[want] {
			t.Errorf("no request from %s in testdata/clients-e2e.txt", want)
		}
	}
	for _, want := range []string{"announce started", "announce completed", "announce stopped", "announce ", "scrape"} {
		if !events[want] {
			t.Errorf("no %q request in testdata/clients-e2e.txt", want)
		}
	}
}
