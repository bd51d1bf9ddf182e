package tracker

import "github.com/prometheus/client_golang/prometheus"

// Collector returns a prometheus.Collector exporting Stats as
// xbt_tracker_* metrics. Each scrape of /metrics calls Stats once.
func (t *Tracker) Collector() prometheus.Collector { return &collector{t: t} }

var (
	descTorrents = prometheus.NewDesc("xbt_tracker_torrents",
		"Torrents in memory.", nil, nil)
	descTorrentsWithPeers = prometheus.NewDesc("xbt_tracker_torrents_with_peers",
		"Torrents with at least one peer.", nil, nil)
	descPeers = prometheus.NewDesc("xbt_tracker_peers",
		"Live peers by state.", []string{"state"}, nil)
	descUsers = prometheus.NewDesc("xbt_tracker_users",
		"Users loaded.", nil, nil)
	descLedger = prometheus.NewDesc("xbt_tracker_ledger_entries",
		"Rows pending write-back to the database.", nil, nil)
	descAnnounces = prometheus.NewDesc("xbt_tracker_announces_total",
		"Announces answered, by result.", []string{"result"}, nil)
	descScrapes = prometheus.NewDesc("xbt_tracker_scrapes_total",
		"Scrapes answered, by result.", []string{"result"}, nil)
	descExpired = prometheus.NewDesc("xbt_tracker_peers_expired_total",
		"Peers removed because they stopped announcing.", nil, nil)
	descCreditCapped = prometheus.NewDesc("xbt_tracker_credit_capped_total",
		"Announces whose uploaded or downloaded delta was over max_credit_per_announce: that counter was credited nothing.", nil, nil)
	descClientRefused = prometheus.NewDesc("xbt_tracker_client_refused_total",
		"Announces refused by the client rules, by rule: allow (peer_id not in xbt_client_whitelist), deny (peer_id in xbt_deny_from_clients).", []string{"rule"}, nil)
	descCreditRules = prometheus.NewDesc("xbt_tracker_credit_rules",
		"Credit rules loaded at the last reload, by kind: torrents and users with an up_multi or down_multi other than 100, freeleech tokens not expired.", []string{"kind"}, nil)
)

type collector struct{ t *Tracker }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTorrents, descTorrentsWithPeers, descPeers,
		descUsers, descLedger, descAnnounces, descScrapes, descExpired, descCreditCapped, descClientRefused, descCreditRules} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.t.Stats()
	g, k := prometheus.GaugeValue, prometheus.CounterValue
	ch <- prometheus.MustNewConstMetric(descTorrents, g, float64(st.Torrents))
	ch <- prometheus.MustNewConstMetric(descTorrentsWithPeers, g, float64(st.TorrentsWithPeers))
	ch <- prometheus.MustNewConstMetric(descPeers, g, float64(st.Seeders), "seeder")
	ch <- prometheus.MustNewConstMetric(descPeers, g, float64(st.Leechers), "leecher")
	ch <- prometheus.MustNewConstMetric(descUsers, g, float64(st.Users))
	ch <- prometheus.MustNewConstMetric(descLedger, g, float64(st.LedgerLen))
	ch <- prometheus.MustNewConstMetric(descAnnounces, k, float64(st.AnnouncesOK), "ok")
	ch <- prometheus.MustNewConstMetric(descAnnounces, k, float64(st.AnnouncesFailed), "failed")
	ch <- prometheus.MustNewConstMetric(descScrapes, k, float64(st.ScrapesOK), "ok")
	ch <- prometheus.MustNewConstMetric(descScrapes, k, float64(st.ScrapesFailed), "failed")
	ch <- prometheus.MustNewConstMetric(descExpired, k, float64(st.Expired))
	ch <- prometheus.MustNewConstMetric(descCreditCapped, k, float64(st.CreditCapped))
	ch <- prometheus.MustNewConstMetric(descClientRefused, k, float64(st.ClientNotAllowed), "allow")
	ch <- prometheus.MustNewConstMetric(descClientRefused, k, float64(st.ClientDenied), "deny")
	ch <- prometheus.MustNewConstMetric(descCreditRules, g, float64(st.FactorTorrents), "torrents")
	ch <- prometheus.MustNewConstMetric(descCreditRules, g, float64(st.FactorUsers), "users")
	ch <- prometheus.MustNewConstMetric(descCreditRules, g, float64(st.Tokens), "tokens")
}
