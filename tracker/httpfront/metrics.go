package httpfront

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Request kinds and results, the labels of xbt_http_requests_total.
type kind uint8

const (
	kindAnnounce kind = iota
	kindScrape
	kindStatistics
	kindMetrics
	kindOther
	numKinds
)

var kindNames = [numKinds]string{"announce", "scrape", "statistics", "metrics", "other"}

type result uint8

const (
	resultOK         result = iota
	resultFailure           // the engine refused (a bencoded failure reason)
	resultBadRequest        // the request could not be parsed
	numResults
)

var resultNames = [numResults]string{"ok", "failure", "bad_request"}

// counters are the server's own counts: plain atomics on the hot path, read
// by the Prometheus collector and the /statistics page.
type counters struct {
	requests       [numKinds][numResults]atomic.Uint64
	accepted       atomic.Uint64
	rejectedLimit  atomic.Uint64
	rejectedPerIP  atomic.Uint64
	rejectedDenied atomic.Uint64
	evicted        atomic.Uint64
	panics         atomic.Uint64
}

func (c *counters) request(k kind, r result) { c.requests[k][r].Add(1) }

// kindTotal is the number of requests of kind k, whatever their result.
func (c *counters) kindTotal(k kind) uint64 {
	var n uint64
	for r := range c.requests[k] {
		n += c.requests[k][r].Load()
	}
	return n
}

type collector struct {
	s        *Server
	requests *prometheus.Desc
	open     *prometheus.Desc
	accepted *prometheus.Desc
	rejected *prometheus.Desc
	evicted  *prometheus.Desc
	panics   *prometheus.Desc
}

func newCollector(s *Server) *collector {
	name := "tracker"
	if s.cfg.ServeAdmin {
		name = "admin"
	}
	cl := prometheus.Labels{"server": name}
	return &collector{
		s: s,
		requests: prometheus.NewDesc("xbt_http_requests_total",
			"HTTP requests answered, by kind (announce, scrape, statistics, metrics, other) and result (ok, failure = refused by the tracker with a failure reason, bad_request = unparsable).",
			[]string{"kind", "result"}, cl),
		open: prometheus.NewDesc("xbt_http_open_connections",
			"HTTP connections open now.", nil, cl),
		accepted: prometheus.NewDesc("xbt_http_accepted_connections_total",
			"HTTP connections accepted and served.", nil, cl),
		rejected: prometheus.NewDesc("xbt_http_rejected_connections_total",
			"HTTP connections closed at accept without an answer, by reason (limit = at max_connections with no idle connection to evict, per_ip = over max_connections_per_ip, denied = address in the deny list).",
			[]string{"reason"}, cl),
		evicted: prometheus.NewDesc("xbt_http_evicted_connections_total",
			"Idle keep-alive HTTP connections closed to make room for new ones at max_connections.", nil, cl),
		panics: prometheus.NewDesc("xbt_http_panics_total",
			"Connections closed because serving them panicked (a bug: see the warn log).", nil, cl),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.requests
	ch <- c.open
	ch <- c.accepted
	ch <- c.rejected
	ch <- c.evicted
	ch <- c.panics
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	n := &c.s.counters
	for k := kind(0); k < numKinds; k++ {
		for r := result(0); r < numResults; r++ {
			ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue,
				float64(n.requests[k][r].Load()), kindNames[k], resultNames[r])
		}
	}
	ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(c.s.open.Load()))
	ch <- prometheus.MustNewConstMetric(c.accepted, prometheus.CounterValue, float64(n.accepted.Load()))
	ch <- prometheus.MustNewConstMetric(c.rejected, prometheus.CounterValue, float64(n.rejectedLimit.Load()), "limit")
	ch <- prometheus.MustNewConstMetric(c.rejected, prometheus.CounterValue, float64(n.rejectedPerIP.Load()), "per_ip")
	ch <- prometheus.MustNewConstMetric(c.rejected, prometheus.CounterValue, float64(n.rejectedDenied.Load()), "denied")
	ch <- prometheus.MustNewConstMetric(c.evicted, prometheus.CounterValue, float64(n.evicted.Load()))
	ch <- prometheus.MustNewConstMetric(c.panics, prometheus.CounterValue, float64(n.panics.Load()))
}
