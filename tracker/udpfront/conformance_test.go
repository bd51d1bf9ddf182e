package udpfront

import (
	"errors"
	"testing"

	cf "github.com/xbt-tracker/xbt-tracker/internal/conformance"
	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// The shared suite through real UDP packets to a Server on 127.0.0.1 and
// [::1].
func TestConformance(t *testing.T) { cf.Run(t, newConformanceClient) }

// confClient is a conformance.Client speaking BEP 15 + BEP 41. It
// translates answers into the bencoded shape the suite checks: an error
// packet is {"failure reason": msg}; an announce answer gets "min interval"
// equal to its interval (BEP 15 has only one) and its peers as "peers"
// (IPv4 requester) or "peers6" (IPv6 requester); a scrape answer becomes a
// "files" dict holding every hash asked for.
type confClient struct {
	t      *testing.T
	c4, c6 *udpClient
}

func newConformanceClient(t *testing.T, trk *tracker.Tracker) cf.Client {
	return newConfClient(t, trk, Config{Workers: 2})
}

// newConfClient starts a Server with cfg and returns a client of it.
func newConfClient(t *testing.T, trk *tracker.Tracker, cfg Config) cf.Client {
	ts := startServer(t, trk, cfg)
	c := &confClient{t: t, c4: dial(t, ts.addr4)}
	c.c4.connect()
	if ts.addr6.IsValid() {
		c.c6 = dial(t, ts.addr6)
		c.c6.connect()
	}
	return c
}

func (c *confClient) Supports(f cf.Feature) bool {
	switch f {
	case cf.FeatureIPv6:
		return c.c6 != nil
	case cf.FeatureDictPeers, // BEP 15 answers are always compact
		cf.FeatureFullScrape,    // BEP 15: "a full scrape can't be done with this protocol"
		cf.FeatureScrapeFlags,   // no min_request_interval in a BEP 15 scrape answer
		cf.FeatureScrapePasskey, // no room for a passkey in a BEP 15 scrape
		cf.FeatureScrapeByName,  // answered by position: unknown hashes are zeros, repeats repeated
		cf.FeatureMixedFamilies: // peers follow the packet's address family
		return false
	}
	return false
}

func (c *confClient) Announce(r cf.AnnounceRequest) (map[string]any, error) {
	if r.Dict {
		return nil, errors.New("UDP has no dict form")
	}
	cl := c.c4
	if r.IPv6 {
		if c.c6 == nil {
			return nil, errors.New("no IPv6 loopback")
		}
		cl = c.c6
	}
	a := ann{InfoHash: r.InfoHash, PeerID: r.PeerID, Port: r.Port, NumWant: -1,
		Uploaded: int64(r.Uploaded), Downloaded: int64(r.Downloaded), Left: int64(r.Left)}
	switch r.Event {
	case tracker.EventNone:
	case tracker.EventCompleted:
		a.Event = 1
	case tracker.EventStarted:
		a.Event = 2
	case tracker.EventStopped:
		a.Event = 3
	default:
		return nil, errors.New("UDP has no such event")
	}
	if r.NumWant != nil {
		a.NumWant = int32(*r.NumWant)
	}
	// As libtorrent sends udp://host:port/<passkey>/announce and
	// udp://host:port/announce.
	if r.Passkey != "" {
		a = a.withPath("/" + r.Passkey + "/announce")
	} else {
		a = a.withPath("/announce")
	}
	ans := cl.announce(a)
	if ans.Action == ActionError {
		return map[string]any{"failure reason": ans.Error}, nil
	}
	var peers []byte
	for _, p := range ans.Peers {
		peers = append(peers, p.Addr().AsSlice()...)
		peers = append(peers, byte(p.Port()>>8), byte(p.Port()))
	}
	m := map[string]any{
		"complete":     int64(ans.Seeders),
		"incomplete":   int64(ans.Leechers),
		"interval":     int64(ans.Interval),
		"min interval": int64(ans.Interval),
		"peers":        "",
	}
	if r.IPv6 {
		if len(peers) > 0 {
			m["peers6"] = string(peers)
		}
	} else {
		m["peers"] = string(peers)
	}
	return m, nil
}

func (c *confClient) Scrape(r cf.ScrapeRequest) (map[string]any, error) {
	if r.Passkey != "" {
		return nil, errors.New("a UDP scrape cannot carry a passkey")
	}
	if len(r.InfoHashes) == 0 {
		return nil, errors.New("UDP has no full scrape")
	}
	ans := c.c4.scrape(r.InfoHashes...)
	if ans.Action == ActionError {
		return map[string]any{"failure reason": ans.Error}, nil
	}
	if len(ans.Scrape) != len(r.InfoHashes) {
		return nil, errors.New("scrape answer has the wrong number of entries")
	}
	files := map[string]any{}
	for i, h := range r.InfoHashes {
		e := ans.Scrape[i]
		files[string(h[:])] = map[string]any{
			"complete": int64(e[0]), "downloaded": int64(e[1]), "incomplete": int64(e[2]),
		}
	}
	return map[string]any{"files": files}, nil
}

// The same suite with the one-packet-at-a-time workers (NoBatch), the path
// of systems without recvmmsg and of PacketConns that are not UDPConns.
func TestConformanceNoBatch(t *testing.T) {
	cf.Run(t, func(t *testing.T, trk *tracker.Tracker) cf.Client {
		return newConfClient(t, trk, Config{Workers: 2, NoBatch: true})
	})
}
