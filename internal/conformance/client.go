// Package conformance is one table of tracker behaviours (XBT's announce and
// scrape contract, see docs/XBT-COMPAT.md §4 and §6) run against any way of
// talking to a tracker.Tracker: the Go API, the HTTP frontend and the UDP
// frontend (tracker/udpfront's TestConformance). A frontend passes if a
// client speaking its protocol gets the same answers as a client calling the
// engine directly; a Client declares (Supports) what its protocol cannot
// express, and the cases needing it are skipped.
package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/xbt-tracker/xbt-tracker/tracker"
	"github.com/xbt-tracker/xbt-tracker/tracker/httpfront"
)

// AnnounceRequest is one announce as a test means it; a Client turns it into
// its protocol.
type AnnounceRequest struct {
	Passkey    string // "": the anonymous /announce path
	InfoHash   tracker.InfoHash
	PeerID     tracker.PeerID
	Port       uint16
	Uploaded   uint64
	Downloaded uint64
	Left       uint64
	Event      tracker.Event
	NumWant    *int // nil: not sent (see Want)
	Dict       bool // ask for the dict form (compact=0)
	NoPeerID   bool // no_peer_id=1
	IPv6       bool // announce from ::1 instead of 127.0.0.1
}

// Want returns a pointer to n, for AnnounceRequest.NumWant.
func Want(n int) *int { return &n }

// ScrapeRequest is one scrape; no InfoHashes asks for a full scrape.
type ScrapeRequest struct {
	Passkey    string
	InfoHashes []tracker.InfoHash
}

// Feature is something a protocol may be unable to express; the cases that
// need it are skipped for a Client that lacks it.
type Feature int

// The Features a Client may lack, each described on its line.
const (
	FeatureDictPeers     Feature = iota // compact=0 and no_peer_id answers
	FeatureIPv6                         // announcing from ::1
	FeatureFullScrape                   // a scrape without info_hash
	FeatureScrapeFlags                  // the "flags" dict of a scrape answer
	FeatureScrapePasskey                // a scrape carrying a passkey (a BEP 15 scrape has no room for one)
	FeatureScrapeByName                 // a scrape answer naming its torrents: unknown ones left out, repeats once (BEP 15 answers by position)
	FeatureMixedFamilies                // an IPv6 requester also gets IPv4 peers (BEP 15: peers follow the packet's address family)
)

// Client talks to one tracker. Answers are the decoded bencoded dictionary
// a BitTorrent client would get (a failure is {"failure reason": ...});
// clients of binary protocols translate their answers to that shape. err is
// for transport trouble only.
type Client interface {
	Announce(r AnnounceRequest) (map[string]any, error)
	Scrape(r ScrapeRequest) (map[string]any, error)
	Supports(f Feature) bool
}

// Loopback addresses the clients announce from.
var (
	Addr4 = netip.MustParseAddr("127.0.0.1")
	Addr6 = netip.MustParseAddr("::1")
)

// NewAPIClient returns a Client calling trk's Go API and encoding the
// results with httpfront's encoders, as the HTTP frontend would.
func NewAPIClient(t *testing.T, trk *tracker.Tracker) Client {
	return &apiClient{trk: trk}
}

type apiClient struct{ trk *tracker.Tracker }

func (c *apiClient) Supports(Feature) bool { return true }

func (c *apiClient) Announce(r AnnounceRequest) (map[string]any, error) {
	a := tracker.Announce{
		InfoHash: r.InfoHash, PeerID: r.PeerID, Addr: Addr4, Port: r.Port,
		Uploaded: r.Uploaded, Downloaded: r.Downloaded, Left: r.Left, Event: r.Event,
		NumWant: -1, WantPeerID: r.Dict && !r.NoPeerID,
	}
	if r.Passkey != "" {
		a.Passkey = []byte(r.Passkey)
	}
	if r.IPv6 {
		a.Addr = Addr6
	}
	if r.NumWant != nil {
		a.NumWant = *r.NumWant
	}
	var out tracker.AnnounceResult
	c.trk.Announce(&a, &out)
	return DecodeDict(httpfront.AppendAnnounce(nil, &out, !r.Dict, r.NoPeerID))
}

func (c *apiClient) Scrape(r ScrapeRequest) (map[string]any, error) {
	q := tracker.ScrapeRequest{InfoHashes: r.InfoHashes, Addr: Addr4}
	if r.Passkey != "" {
		q.Passkey = []byte(r.Passkey)
	}
	var out tracker.ScrapeResult
	c.trk.Scrape(&q, &out)
	return DecodeDict(httpfront.AppendScrape(nil, &out))
}

// NewHTTPClient starts an httpfront.Server for trk on 127.0.0.1 (and on
// [::1] when the host has IPv6 loopback) and returns a Client sending real
// HTTP requests to it over keep-alive connections. Everything stops at the
// end of the test.
func NewHTTPClient(t *testing.T, trk *tracker.Tracker) Client {
	t.Helper()
	return newHTTPClient(t, trk, httpfront.Config{ReadTimeout: 5 * time.Second})
}

// NewHTTPGoroutineClient is NewHTTPClient with a server that gives every
// connection its own goroutine (httpfront.Config.GoroutinePerConn) rather
// than serving them from event loops.
func NewHTTPGoroutineClient(t *testing.T, trk *tracker.Tracker) Client {
	t.Helper()
	return newHTTPClient(t, trk, httpfront.Config{ReadTimeout: 5 * time.Second, GoroutinePerConn: true})
}

func newHTTPClient(t *testing.T, trk *tracker.Tracker, cfg httpfront.Config) Client {
	t.Helper()
	srv := httpfront.New(trk, cfg)
	c := &httpClient{hc: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}}
	ln4, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lns := []net.Listener{ln4}
	c.base4 = "http://" + ln4.Addr().String()
	if ln6, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		lns = append(lns, ln6)
		c.base6 = "http://" + ln6.Addr().String()
	}
	done := make(chan error, len(lns))
	for _, ln := range lns {
		go func() { done <- srv.Serve(ln) }()
	}
	t.Cleanup(func() {
		c.hc.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		for range lns {
			if err := <-done; !errors.Is(err, httpfront.ErrServerClosed) {
				t.Errorf("Serve: %v", err)
			}
		}
	})
	return c
}

type httpClient struct {
	hc           *http.Client
	base4, base6 string
}

func (c *httpClient) Supports(f Feature) bool {
	if f == FeatureIPv6 {
		return c.base6 != ""
	}
	return true
}

func trackerURL(base, passkey, kind string) string {
	if passkey == "" {
		return base + "/" + kind
	}
	return base + "/" + passkey + "/" + kind
}

func (c *httpClient) Announce(r AnnounceRequest) (map[string]any, error) {
	base := c.base4
	if r.IPv6 {
		if c.base6 == "" {
			return nil, errors.New("no IPv6 loopback")
		}
		base = c.base6
	}
	// url.QueryEscape writes a space as '+', which trackers read back as a
	// space: info hashes holding 0x20 exercise that rule.
	q := "info_hash=" + url.QueryEscape(string(r.InfoHash[:])) +
		"&peer_id=" + url.QueryEscape(string(r.PeerID[:])) +
		"&port=" + strconv.Itoa(int(r.Port)) +
		"&uploaded=" + strconv.FormatUint(r.Uploaded, 10) +
		"&downloaded=" + strconv.FormatUint(r.Downloaded, 10) +
		"&left=" + strconv.FormatUint(r.Left, 10) +
		"&key=1a2b3c4d&supportcrypto=1"
	switch r.Event {
	case tracker.EventStarted:
		q += "&event=started"
	case tracker.EventCompleted:
		q += "&event=completed"
	case tracker.EventStopped:
		q += "&event=stopped"
	case tracker.EventPaused:
		q += "&event=paused"
	}
	if r.NumWant != nil {
		q += "&numwant=" + strconv.Itoa(*r.NumWant)
	}
	if r.Dict {
		q += "&compact=0"
	} else {
		q += "&compact=1"
	}
	if r.NoPeerID {
		q += "&no_peer_id=1"
	}
	return c.get(trackerURL(base, r.Passkey, "announce") + "?" + q)
}

func (c *httpClient) Scrape(r ScrapeRequest) (map[string]any, error) {
	u := trackerURL(c.base4, r.Passkey, "scrape")
	for i, h := range r.InfoHashes {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		u += sep + "info_hash=" + url.QueryEscape(string(h[:]))
	}
	return c.get(u)
}

func (c *httpClient) get(u string) (map[string]any, error) {
	resp, err := c.hc.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body) // net/http un-gzips a gzipped answer
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s: %q", resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain" {
		return nil, fmt.Errorf("Content-Type %q", ct)
	}
	return DecodeDict(body)
}
