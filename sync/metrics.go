package sync

import (
	gosql "database/sql"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	xsql "github.com/xbt-tracker/xbt-tracker/sql"
)

// metrics are the Syncer's Prometheus metrics. The pending ledger's size is
// exported by the tracker's own collector (xbt_tracker_ledger_entries);
// alert on it against xbt_tracker_ledger_bound_entries.
type metrics struct {
	flushDuration  prometheus.Histogram
	flushFailures  prometheus.Counter
	flushRows      prometheus.Counter
	lastFlush      prometheus.Gauge
	reloadDuration prometheus.Histogram
	reloadFailures prometheus.Counter
	pollDuration   prometheus.Histogram
	pollFailures   prometheus.Counter
	ledgerBound    prometheus.Gauge
	lookups        *prometheus.CounterVec
	all            []prometheus.Collector
}

func newMetrics(db *gosql.DB, bound int) *metrics {
	m := &metrics{
		flushDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "xbt_tracker_flush_duration_seconds",
			Help:    "Time taken by each write of pending statistics to the database (failed ones included).",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10), // 1ms .. ~4.4min
		}),
		flushFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "xbt_tracker_flush_failures_total",
			Help: "Writes of pending statistics that failed (their rows were kept and retried).",
		}),
		flushRows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "xbt_tracker_flush_rows_total",
			Help: "Rows of statistics written to the database.",
		}),
		lastFlush: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "xbt_tracker_last_flush_timestamp_seconds",
			Help: "Unix time of the last successful write of statistics (0: none yet).",
		}),
		reloadDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "xbt_tracker_reload_duration_seconds",
			Help:    "Time taken by each reload of users, torrents and the deny list (the start-up load included).",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}),
		reloadFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "xbt_tracker_reload_failures_total",
			Help: "Reloads from the database that failed.",
		}),
		pollDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "xbt_tracker_change_poll_duration_seconds",
			Help:    "Time taken by each poll of the change log between reloads (change_poll_interval; failed ones included).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10), // 0.5ms .. ~2.2min
		}),
		pollFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "xbt_tracker_change_poll_failures_total",
			Help: "Polls of the change log that failed (the next poll or reload reads the same changes).",
		}),
		ledgerBound: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "xbt_tracker_ledger_bound_entries",
			Help: "ledger_max_entries: the alerting bound of xbt_tracker_ledger_entries (announces are never refused because of it).",
		}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xbt_tracker_lookups_total",
			Help: "On-demand lookups of users and torrents not in memory, by kind and result (hit, miss and error are database queries; cached, limited and shared are not).",
		}, []string{"kind", "result"}),
	}
	m.ledgerBound.Set(float64(bound))
	m.all = []prometheus.Collector{m.flushDuration, m.flushFailures, m.flushRows, m.lastFlush,
		m.reloadDuration, m.reloadFailures, m.pollDuration, m.pollFailures, m.ledgerBound, m.lookups}
	if db != nil {
		m.all = append(m.all, collectors.NewDBStatsCollector(db, "xbt"))
	}
	return m
}

// addWriterStats exports the Writer's own counters.
func (m *metrics) addWriterStats(stats func() xsql.WriterStats) {
	counter := func(name, help string, v func(xsql.WriterStats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(v(stats())) })
	}
	m.all = append(m.all,
		counter("xbt_tracker_flush_retries_total",
			"Write statements retried after a deadlock (1213) or lock wait timeout (1205).",
			func(s xsql.WriterStats) uint64 { return s.Retries }),
		counter("xbt_tracker_flush_users_dropped_total",
			"User deltas not written because the catalog deleted the user.",
			func(s xsql.WriterStats) uint64 { return s.UsersDropped }),
		counter("xbt_tracker_flush_in_doubt_total",
			"Write chunks whose COMMIT outcome was unknown at first (settled through the commit marker).",
			func(s xsql.WriterStats) uint64 { return s.InDoubt }),
		counter("xbt_tracker_flush_in_doubt_dropped_total",
			"Write chunks of unknown outcome dropped because the database has no commit marker table (migration 00003).",
			func(s xsql.WriterStats) uint64 { return s.InDoubtDropped }),
		counter("xbt_tracker_flush_quarantined_rows_total",
			"Rows set aside because the database refused them on their own (a catalog trigger, a foreign key, a bad value); every other row was written.",
			func(s xsql.WriterStats) uint64 { return s.Quarantined }),
		counter("xbt_tracker_flush_quarantine_written_total",
			"Quarantined rows written after all on a later try.",
			func(s xsql.WriterStats) uint64 { return s.QuarantineWritten }),
		counter("xbt_tracker_flush_quarantine_given_up_total",
			"Quarantined rows given up on (after an hour, or at stop); each was logged at error level with its values.",
			func(s xsql.WriterStats) uint64 { return s.QuarantineGivenUp }),
		counter("xbt_tracker_flush_clamped_rows_total",
			"Rows written with a sum saturated at its column's maximum instead of failing out of range.",
			func(s xsql.WriterStats) uint64 { return s.Clamped }),
	)
}

// addPending exports what is not in the database yet, and for how long.
func (m *metrics) addPending(s *Syncer) {
	gauge := func(name, help string, v func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, v)
	}
	m.all = append(m.all,
		gauge("xbt_tracker_pending_rows",
			"Rows of statistics not yet in the database: the ledger, the batch being written, a chunk in doubt and the quarantine. 0 means nothing is pending.",
			func() float64 { return float64(s.pendingRows()) }),
		gauge("xbt_tracker_flush_in_flight_rows",
			"Rows of the batch being written right now (not in xbt_tracker_ledger_entries meanwhile).",
			func() float64 { return float64(s.inFlight.Load()) }),
		gauge("xbt_tracker_flush_in_doubt_rows",
			"Rows held because their COMMIT's outcome is not known yet (settled by the next flush).",
			func() float64 { return float64(s.w.InDoubt()) }),
		gauge("xbt_tracker_flush_quarantined_rows",
			"Rows set aside because the database refuses them on their own (retried alone every 10 minutes, given up after an hour).",
			func() float64 { return float64(s.w.Quarantined()) }),
		gauge("xbt_tracker_last_flush_age_seconds",
			"Seconds since the last successful write of statistics (since the start when there was none): alert when it grows past a few write_db_interval.",
			func() float64 { return s.Status().FlushAge.Seconds() }),
	)
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.all {
		c.Describe(ch)
	}
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.all {
		c.Collect(ch)
	}
}

// Collector returns the Syncer's metrics for a Prometheus registry:
// xbt_tracker_flush_duration_seconds, _flush_failures_total,
// _flush_rows_total, _last_flush_timestamp_seconds,
// _reload_duration_seconds, _reload_failures_total,
// _change_poll_duration_seconds, _change_poll_failures_total,
// _ledger_bound_entries, _lookups_total{kind,result}; the Writer's
// counters (_flush_retries_total, _flush_users_dropped_total,
// _flush_in_doubt_total, _flush_in_doubt_dropped_total); and the connection
// pool's go_sql_* statistics when New was given the *sql.DB.
func (s *Syncer) Collector() prometheus.Collector { return s.m }
