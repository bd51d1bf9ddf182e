package udpfront

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Packet actions and results, the labels of xbt_udp_packets_total.
type action uint8

const (
	actConnect action = iota
	actAnnounce
	actScrape
	actOther // unknown actions and packets too short to have one
	numActions
)

var actionNames = [numActions]string{"connect", "announce", "scrape", "other"}

func actionOf(a uint32) action {
	switch a {
	case ActionConnect:
		return actConnect
	case ActionAnnounce:
		return actAnnounce
	case ActionScrape:
		return actScrape
	}
	return actOther
}

type result uint8

const (
	resOK         result = iota // answered
	resFailure                  // refused by the tracker: an error packet with XBT's reason
	resBadRequest               // unparsable announce or scrape: an error packet
	resDropped                  // no answer (see xbt_udp_errors_total for why)
	numResults
)

var resultNames = [numResults]string{"ok", "failure", "bad_request", "dropped"}

// Reasons a packet got no answer, or something went wrong around it: the
// labels of xbt_udp_errors_total.
type reason uint8

const (
	reasonShort         reason = iota // under 16 bytes
	reasonOversized                   // over MaxPacket
	reasonProtocolID                  // a connect without 0x41727101980
	reasonUnknownAction               // an action other than 0, 1, 2
	reasonConnectionID                // forged, expired or from another address
	reasonDenied                      // the source address is in the deny list
	reasonPanic                       // serving the packet panicked (a bug: see the warn log)
	reasonRead                        // the socket read failed (other than at shutdown)
	reasonWrite                       // sending the answer failed
	numReasons
)

var reasonNames = [numReasons]string{"short", "oversized", "protocol_id", "unknown_action",
	"connection_id", "denied", "panic", "read", "write"}

// counters are plain atomics on the hot path, read by the collector and
// Stats.
type counters struct {
	packets [numActions][numResults]atomic.Uint64
	errors  [numReasons]atomic.Uint64
}

func (c *counters) packet(a action, r result) { c.packets[a][r].Add(1) }
func (c *counters) error(r reason)            { c.errors[r].Add(1) }

// Stats are the server's counts since New, for a status page.
type Stats struct {
	Connects  uint64 // connect requests answered
	Announces uint64 // announces answered (accepted, refused or unparsable)
	Scrapes   uint64 // scrapes answered (accepted, refused or unparsable)
	Dropped   uint64 // packets not answered
}

// Stats returns the server's counts.
func (s *Server) Stats() Stats {
	c := &s.counters
	answered := func(a action) uint64 {
		var n uint64
		for r := range result(numResults) {
			if r != resDropped {
				n += c.packets[a][r].Load()
			}
		}
		return n
	}
	st := Stats{Connects: answered(actConnect), Announces: answered(actAnnounce), Scrapes: answered(actScrape)}
	for a := range action(numActions) {
		st.Dropped += c.packets[a][resDropped].Load()
	}
	return st
}

type collector struct {
	s       *Server
	packets *prometheus.Desc
	errors  *prometheus.Desc
}

func newCollector(s *Server) *collector {
	return &collector{
		s: s,
		packets: prometheus.NewDesc("xbt_udp_packets_total",
			"UDP packets received, by action (connect, announce, scrape, other) and result (ok; failure = refused by the tracker with an error packet; bad_request = unparsable, answered with an error packet; dropped = not answered, see xbt_udp_errors_total).",
			[]string{"action", "result"}, nil),
		errors: prometheus.NewDesc("xbt_udp_errors_total",
			"UDP packets dropped or failed, by reason (short, oversized, protocol_id, unknown_action, connection_id = forged, expired or replayed from another address, denied, panic, read, write).",
			[]string{"reason"}, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.packets
	ch <- c.errors
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	n := &c.s.counters
	for a := range action(numActions) {
		for r := range result(numResults) {
			ch <- prometheus.MustNewConstMetric(c.packets, prometheus.CounterValue,
				float64(n.packets[a][r].Load()), actionNames[a], resultNames[r])
		}
	}
	for r := range reason(numReasons) {
		ch <- prometheus.MustNewConstMetric(c.errors, prometheus.CounterValue,
			float64(n.errors[r].Load()), reasonNames[r])
	}
}
