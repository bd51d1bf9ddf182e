package conformance

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/xbt-tracker/xbt-tracker/passkey"
	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// Fixtures every case starts from.
const (
	Secret   = "conformance-secret" //nolint:gosec // G101: a test vector, not a credential
	Interval = 1800
)

// Info hashes of the preloaded torrents (fid 1, 2, 3), holding bytes a URL
// must escape (space, '+', '%', '&', '=', '#', '?', NUL, 0xff) and a hash
// that is not loaded.
var (
	H1      = tracker.InfoHash([]byte("\x00 +%&=#?\xff\x01conform-01"))
	H2      = tracker.InfoHash([]byte("(*)!'~-_.\x7fconform-02"))
	H3      = tracker.InfoHash([]byte("\xfe\xfd\xfcconform-3-abcdefg"))
	Unknown = tracker.InfoHash([]byte("unknown-info-hash-00"))
)

// Epoch is the fake clock's start; the torrents' ctime is a day before.
var Epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Clock is a settable clock for tracker.Options.Now.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// Env is what a case runs with: a fresh tracker holding the fixtures and a
// client of the implementation under test.
type Env struct {
	T       *testing.T
	Tracker *tracker.Tracker
	Client  Client
	Clock   *Clock
}

// PK returns uid's passkey for torrent h (torrent_pass_version 0).
func (e *Env) PK(uid uint32, h tracker.InfoHash) string {
	u, ok := e.Tracker.User(uid)
	if !ok {
		e.T.Fatalf("no user %d", uid)
	}
	return passkey.Derive(Secret, u.TorrentPassVersion, uid, h)
}

// PeerID returns a distinct, Transmission-like peer id.
func PeerID(n int) tracker.PeerID {
	return tracker.PeerID([]byte(fmt.Sprintf("-CF0001-%012d", n)))
}

// Announce sends r and parses the answer, failing the test on transport
// errors or a malformed answer.
func (e *Env) Announce(r AnnounceRequest) Answer {
	e.T.Helper()
	m, err := e.Client.Announce(r)
	if err != nil {
		e.T.Fatalf("announce: %v", err)
	}
	a, err := ParseAnswer(m, r.Dict)
	if err != nil {
		e.T.Fatalf("announce answer %v: %v", m, err)
	}
	return a
}

// MustAnnounce is Announce for a request that must succeed.
func (e *Env) MustAnnounce(r AnnounceRequest) Answer {
	e.T.Helper()
	a := e.Announce(r)
	if a.Failure != "" {
		e.T.Fatalf("announce refused: %q", a.Failure)
	}
	return a
}

// WantFailure announces r and requires the failure reason want.
func (e *Env) WantFailure(r AnnounceRequest, want tracker.Failure) {
	e.T.Helper()
	if a := e.Announce(r); a.Failure != want {
		e.T.Errorf("failure reason %q, want %q (answer %+v)", a.Failure, want, a)
	}
}

// Scrape sends r and returns the decoded answer.
func (e *Env) Scrape(r ScrapeRequest) map[string]any {
	e.T.Helper()
	m, err := e.Client.Scrape(r)
	if err != nil {
		e.T.Fatalf("scrape: %v", err)
	}
	return m
}

// ScrapeFiles scrapes and returns the files dict, failing on a refusal.
func (e *Env) ScrapeFiles(r ScrapeRequest) map[tracker.InfoHash]FileStats {
	e.T.Helper()
	m := e.Scrape(r)
	files, err := ParseScrapeFiles(m)
	if err != nil {
		e.T.Fatalf("scrape answer %v: %v", m, err)
	}
	return files
}

// Peer is one entry of an announce answer's peer list.
type Peer struct {
	Addr netip.AddrPort
	ID   string // "" when the answer carried no peer id
}

// Answer is a parsed announce answer.
type Answer struct {
	Failure                                     tracker.Failure
	Complete, Incomplete, Interval, MinInterval int64
	Peers                                       []Peer // IPv4 and IPv6, sorted by address
	V6InPeers6                                  int    // how many came in the compact peers6 string
}

// ParseAnswer checks an announce answer's shape (compact or dict, as
// asked) and returns its contents.
func ParseAnswer(m map[string]any, dict bool) (Answer, error) {
	var a Answer
	if f, ok := m["failure reason"]; ok {
		s, ok := f.(string)
		if !ok || len(m) != 1 {
			return a, fmt.Errorf("failure answer with other keys or a non-string reason")
		}
		a.Failure = tracker.Failure(s)
		return a, nil
	}
	ints := []struct {
		key string
		dst *int64
	}{{"complete", &a.Complete}, {"incomplete", &a.Incomplete}, {"interval", &a.Interval}, {"min interval", &a.MinInterval}}
	for _, f := range ints {
		v, ok := m[f.key].(int64)
		if !ok {
			return a, fmt.Errorf("%q missing or not an integer", f.key)
		}
		*f.dst = v
	}
	switch p := m["peers"].(type) {
	case string:
		if dict {
			return a, fmt.Errorf("compact peers in answer to compact=0")
		}
		if len(p)%6 != 0 {
			return a, fmt.Errorf("peers length %d", len(p))
		}
		for i := 0; i < len(p); i += 6 {
			a.Peers = append(a.Peers, Peer{Addr: netip.AddrPortFrom(
				netip.AddrFrom4([4]byte([]byte(p[i:i+4]))), binary.BigEndian.Uint16([]byte(p[i+4:i+6])))})
		}
	case []any:
		if !dict {
			return a, fmt.Errorf("dict peers in answer to a compact request")
		}
		for _, e := range p {
			d, ok := e.(map[string]any)
			if !ok {
				return a, fmt.Errorf("peer %v is not a dict", e)
			}
			ips, _ := d["ip"].(string)
			ip, err := netip.ParseAddr(ips)
			if err != nil {
				return a, fmt.Errorf("peer ip %q", ips)
			}
			port, ok := d["port"].(int64)
			if !ok || port < 0 || port > 65535 {
				return a, fmt.Errorf("peer port %v", d["port"])
			}
			pe := Peer{Addr: netip.AddrPortFrom(ip, uint16(port))}
			if v, ok := d["peer id"]; ok {
				id, ok := v.(string)
				if !ok || len(id) != 20 {
					return a, fmt.Errorf("peer id %q", v)
				}
				pe.ID = id
			}
			for k := range d {
				if k != "ip" && k != "port" && k != "peer id" {
					return a, fmt.Errorf("peer key %q", k)
				}
			}
			a.Peers = append(a.Peers, pe)
		}
	default:
		return a, fmt.Errorf("peers is %T", m["peers"])
	}
	if p6, ok := m["peers6"]; ok {
		p, ok := p6.(string)
		if !ok || dict || len(p)%18 != 0 || len(p) == 0 {
			return a, fmt.Errorf("bad peers6 %q", p6)
		}
		for i := 0; i < len(p); i += 18 {
			a.Peers = append(a.Peers, Peer{Addr: netip.AddrPortFrom(
				netip.AddrFrom16([16]byte([]byte(p[i:i+16]))), binary.BigEndian.Uint16([]byte(p[i+16:i+18])))})
			a.V6InPeers6++
		}
	}
	slices.SortFunc(a.Peers, func(x, y Peer) int { return x.Addr.Compare(y.Addr) })
	return a, nil
}

// FileStats is one torrent of a scrape answer.
type FileStats struct{ Complete, Downloaded, Incomplete int64 }

// ParseScrapeFiles returns a successful scrape answer's files.
func ParseScrapeFiles(m map[string]any) (map[tracker.InfoHash]FileStats, error) {
	if f, ok := m["failure reason"]; ok {
		return nil, fmt.Errorf("scrape refused: %v", f)
	}
	files, ok := m["files"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("no files dict")
	}
	out := make(map[tracker.InfoHash]FileStats, len(files))
	for k, v := range files {
		if len(k) != 20 {
			return nil, fmt.Errorf("files key %q", k)
		}
		d, ok := v.(map[string]any)
		if !ok || len(d) != 3 {
			return nil, fmt.Errorf("file %x: %v", k, v)
		}
		c, ok1 := d["complete"].(int64)
		dl, ok2 := d["downloaded"].(int64)
		ic, ok3 := d["incomplete"].(int64)
		if !ok1 || !ok2 || !ok3 {
			return nil, fmt.Errorf("file %x: %v", k, v)
		}
		out[tracker.InfoHash([]byte(k))] = FileStats{c, dl, ic}
	}
	return out, nil
}

// Case is one behaviour: Settings adjusts the fixtures' settings, Setup
// adds users or torrents, Run exercises the client.
type Case struct {
	Name     string
	Needs    []Feature
	Settings func(*tracker.Settings)
	Setup    func(*tracker.Tracker)
	Run      func(e *Env)
}

// BaseSettings are the settings every case starts from.
func BaseSettings() tracker.Settings {
	return tracker.Settings{
		AnnounceInterval: Interval,
		Secret:           Secret,
		DefaultNumWant:   50,
		MaxNumWant:       200,
		GzipScrape:       true,
	}
}

// NewTracker builds a tracker holding the fixtures: users 1 and 2 (allowed
// to leech, no limits), torrents H1, H2, H3 (fid 1, 2, 3) created a day
// before the clock's start.
func NewTracker(s tracker.Settings, clock *Clock) *tracker.Tracker {
	trk := tracker.New(s, tracker.Options{Now: clock.Now})
	trk.UpsertUser(tracker.User{UID: 1, CanLeech: true})
	trk.UpsertUser(tracker.User{UID: 2, CanLeech: true})
	ctime := Epoch.Add(-24 * time.Hour).Unix()
	for i, h := range []tracker.InfoHash{H1, H2, H3} {
		trk.UpsertTorrent(tracker.Torrent{Fid: uint32(i + 1), InfoHash: h, Ctime: ctime})
	}
	return trk
}

// Run runs every case against clients made by newClient, each case on a
// fresh tracker.
func Run(t *testing.T, newClient func(t *testing.T, trk *tracker.Tracker) Client) {
	for _, c := range Cases {
		t.Run(c.Name, func(t *testing.T) {
			clock := &Clock{t: Epoch}
			s := BaseSettings()
			if c.Settings != nil {
				c.Settings(&s)
			}
			trk := NewTracker(s, clock)
			if c.Setup != nil {
				c.Setup(trk)
			}
			cl := newClient(t, trk)
			for _, f := range c.Needs {
				if !cl.Supports(f) {
					t.Skipf("client lacks feature %d", f)
				}
			}
			c.Run(&Env{T: t, Tracker: trk, Client: cl, Clock: clock})
		})
	}
}
