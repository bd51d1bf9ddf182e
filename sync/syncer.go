package sync

import (
	"context"
	gosql "database/sql"
	"errors"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	xsql "github.com/xbt-tracker/xbt-tracker/sql"
	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// Defaults for zero Options fields (XBT's intervals).
const (
	DefaultWriteInterval      = 15 * time.Second
	DefaultReadDBInterval     = 60 * time.Second
	DefaultReadConfigInterval = 60 * time.Second
	DefaultCleanUpInterval    = 60 * time.Second
	DefaultLedgerMaxEntries   = 5_000_000
)

// boundWarnFraction is where the ledger-bound warning starts: at 80% of
// LedgerMaxEntries there is still time to act before the bound.
const boundWarnFraction = 0.8

// boundWarnEvery rate-limits the ledger-bound warning.
const boundWarnEvery = time.Minute

// Options are the Syncer's intervals and bounds. Zero durations and counts
// take the defaults above.
type Options struct {
	WriteInterval      time.Duration // write_db_interval: flush the ledger
	ReadDBInterval     time.Duration // read_db_interval: reload users, torrents, deny list
	ReadConfigInterval time.Duration // read_config_interval: rebuild the settings
	CleanUpInterval    time.Duration // clean_up_interval: expire silent peers
	LedgerMaxEntries   int           // ledger_max_entries: the alerting bound, see checkBound

	// ChangePollInterval (change_poll_interval) is the time between polls
	// of the change log between reloads (see Poll). 0, or not shorter than
	// ReadDBInterval: no polls, only reloads. It has no default here: the
	// configuration's (2 s) is passed by serve.
	ChangePollInterval time.Duration

	// ReloadConfig rebuilds the settings from xbt_config and the operator's
	// layers. An error (an invalid value, the database unreachable) keeps
	// the previous settings. nil: the settings are never reloaded.
	ReloadConfig func(context.Context) (tracker.Settings, error)

	// FlushTimeout bounds one periodic flush; what is not written by then
	// is put back and retried at the next one. Default max(4 ×
	// WriteInterval, 30s).
	FlushTimeout time.Duration
	// ReloadTimeout bounds one reload (and the start-up load). Default 2m.
	ReloadTimeout time.Duration

	// Lookups bound the on-demand lookups (see Resolver).
	Lookups LookupOptions

	// Reconciler corrects ghost peers in the database (reconcile.go): at
	// start-up (ReconcileAtStart) and by a sweep every CleanUpInterval.
	// nil: no reconciliation.
	Reconciler *xsql.Reconciler

	// ReleaseMemory, when set, is called after work that leaves much
	// garbage behind: a flush of at least ReleaseAfterRows rows, a full
	// reload. serve passes debug.FreeOSMemory, so the transient batch and
	// snapshot memory goes back to the system instead of staying in the
	// RSS until the runtime's background scavenger gets to it.
	ReleaseMemory func()

	// Cluster: other instances serve other torrents from the same
	// database (config key cluster). A row that memory does not back may
	// be theirs, so the reconciliation corrects it only once it is stale:
	// not written for an announce for longer than the peer expiry plus
	// two write intervals and a minute (clusterStaleBefore). And the
	// other instances' counts are copied for scrapes (refreshStored).
	Cluster bool
	// Leeching, in a cluster, shares the users' leeching-torrent counts
	// with the other instances every WriteInterval, so torrents_limit
	// holds across them (exchangeLeeching). nil: each instance enforces
	// the limit on its own torrents only.
	Leeching LeechingExchanger
}

// ReleaseAfterRows is the flush size from which Options.ReleaseMemory is
// called: about 5 MB of batch and statement memory.
const ReleaseAfterRows = 10_000

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.WriteInterval, DefaultWriteInterval)
	def(&o.ReadDBInterval, DefaultReadDBInterval)
	def(&o.ReadConfigInterval, DefaultReadConfigInterval)
	def(&o.CleanUpInterval, DefaultCleanUpInterval)
	def(&o.FlushTimeout, max(4*o.WriteInterval, 30*time.Second))
	def(&o.ReloadTimeout, 2*time.Minute)
	if o.LedgerMaxEntries <= 0 {
		o.LedgerMaxEntries = DefaultLedgerMaxEntries
	}
	o.Lookups = o.Lookups.withDefaults()
	return o
}

// batchWriter is what the Syncer needs of *sql.Writer (tests fake it).
type batchWriter interface {
	WriteWith(context.Context, *tracker.Batch, xsql.WriteOptions) (*tracker.Batch, error)
	DeleteFiles(context.Context, []uint32) error
	InDoubt() int
	Quarantined() int
	FinishQuarantine(context.Context) int
}

// source is what the Syncer and the Resolver need of *sql.Loader.
type source interface {
	Load(context.Context) (*xsql.Snapshot, error)
	LookupUser(context.Context, uint32) (tracker.User, error)
	LookupTorrent(context.Context, tracker.InfoHash) (tracker.Torrent, error)
	DenyList(context.Context) ([][2]uint32, [][2][16]byte, error)
	ClientRules(context.Context) (allow, deny [][]byte, err error)
	CreditRules(context.Context) (*tracker.CreditRules, error)
}

// Status is what /statistics shows of the database sync.
type Status struct {
	LastFlush  time.Time // last successful flush (one with nothing to write counts); zero = never
	LastReload time.Time // last successful reload (or the start-up load)
	FlushErr   string    // the last flush's error; "" when it succeeded
	ReloadErr  string    // the last reload's error; "" when it succeeded

	// PendingRows is every row not yet in the database (ledger, in flight,
	// in doubt, quarantined); QuarantinedRows the quarantined ones.
	PendingRows, QuarantinedRows int
	// FlushAge is the time since the last successful flush (since the
	// start when there was none): a stall shows as a growing age.
	FlushAge time.Duration
}

// Syncer moves data between a tracker.Tracker and the database. Its methods
// are safe for concurrent use; Flush and Shutdown are serialised, as are
// Load and Reload.
type Syncer struct {
	trk *tracker.Tracker
	ld  source
	w   batchWriter
	o   Options
	log *zap.Logger
	m   *metrics
	res *Resolver // nil when on-demand lookups are off

	flushMu       gosync.Mutex
	flushFailures int          // length of the current failure streak (flushMu)
	inFlight      atomic.Int64 // rows of the batch being written
	created       time.Time

	reloadMu       gosync.Mutex
	reloadFailures int                 // reloads and polls failed in the current streak (reloadMu)
	reloadFailing  bool                // the last reload failed (reloadMu)
	pollFailing    bool                // the last change poll failed (reloadMu)
	pendingDeletes map[uint32]struct{} // flagged fids whose row is still to delete (reloadMu)
	deleteFailing  bool                // (reloadMu)

	configMu  gosync.Mutex
	configErr string // the config error last logged (configMu)

	rec      reconciler   // nil: no reconciliation
	sweepAt  sweepCursor  // where the ghost peer sweep goes on (sweep loop only)
	storedAt storedCursor // where the stored-counts refresh goes on (its loop only)
	leechErr string       // the leeching exchange's error last logged (its loop only)

	boundWarned time.Time // last ledger-bound warning (bound loop only)
	overBound   bool      // the last check was over the warning level

	statusMu gosync.Mutex
	status   Status
}

// New returns a Syncer for trk reading through ld and writing through w.
// It installs its Resolver in trk (unless o.Lookups.Rate < 0), so unknown
// passkeys and info hashes are looked up on demand. db is used for the
// connection pool's metrics only (it may be nil).
func New(trk *tracker.Tracker, db *gosql.DB, ld *xsql.Loader, w *xsql.Writer, o Options, log *zap.Logger) *Syncer {
	return newSyncer(trk, db, ld, w, o, log)
}

func newSyncer(trk *tracker.Tracker, db *gosql.DB, ld source, w batchWriter, o Options, log *zap.Logger) *Syncer {
	if log == nil {
		log = zap.NewNop()
	}
	o = o.withDefaults()
	s := &Syncer{
		trk: trk, ld: ld, w: w, o: o, log: log,
		m:              newMetrics(db, o.LedgerMaxEntries),
		pendingDeletes: map[uint32]struct{}{},
		created:        time.Now(),
	}
	if ws, ok := w.(interface{ Stats() xsql.WriterStats }); ok {
		s.m.addWriterStats(ws.Stats)
	}
	s.m.addPending(s)
	if o.Reconciler != nil {
		s.rec = o.Reconciler
	}
	if o.Lookups.Rate >= 0 {
		s.res = newResolver(ld, o.Lookups, s.m)
		trk.SetResolver(s.res)
	}
	return s
}

// Resolver returns the on-demand lookup hook New installed in the tracker,
// or nil when lookups are off.
func (s *Syncer) Resolver() *Resolver { return s.res }

// Status returns the times and errors of the last flush and reload.
func (s *Syncer) Status() Status {
	s.statusMu.Lock()
	st := s.status
	s.statusMu.Unlock()
	st.PendingRows = s.pendingRows()
	st.QuarantinedRows = s.w.Quarantined()
	last := st.LastFlush
	if last.IsZero() {
		last = s.created
	}
	st.FlushAge = time.Since(last)
	return st
}

func (s *Syncer) setStatus(f func(*Status)) {
	s.statusMu.Lock()
	f(&s.status)
	s.statusMu.Unlock()
}

// Run runs the periodic work until ctx ends, each kind in its own goroutine
// so that a slow database write cannot delay expiry or the ledger-bound
// warning: flush every WriteInterval, reload every ReadDBInterval (and poll
// the change log every ChangePollInterval in between), settings
// every ReadConfigInterval, expiry every CleanUpInterval. It returns nil
// once every loop has stopped; the caller then calls Shutdown to write what
// is left.
func (s *Syncer) Run(ctx context.Context) error {
	var wg gosync.WaitGroup
	every := func(d time.Duration, f func(context.Context)) {
		wg.Go(func() {
			t := time.NewTicker(d)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					f(ctx)
				}
			}
		})
	}
	every(s.o.WriteInterval, func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, s.o.FlushTimeout)
		defer cancel()
		_ = s.flush(ctx, true, false) // paced; logged and counted by flush
	})
	every(min(s.o.WriteInterval, 10*time.Second), func(context.Context) { s.checkBound(time.Now()) })
	wg.Go(func() { s.reloadLoop(ctx) }) // reloads every ReadDBInterval, change polls in between
	if s.o.ReloadConfig != nil {
		every(s.o.ReadConfigInterval, func(ctx context.Context) {
			ctx, cancel := context.WithTimeout(ctx, s.o.ReloadTimeout)
			defer cancel()
			s.ReloadSettings(ctx)
		})
	}
	every(s.o.CleanUpInterval, func(context.Context) {
		if n := s.trk.Expire(); n > 0 {
			s.log.Debug("expired silent peers", zap.Int("peers", n))
		}
	})
	if s.rec != nil {
		every(s.o.CleanUpInterval, s.sweepTick)
		if s.o.Cluster {
			every(s.o.WriteInterval, s.refreshStoredTick)
		}
	}
	if s.o.Leeching != nil {
		every(s.o.WriteInterval, s.exchangeLeeching)
	}
	wg.Wait()
	return nil
}

// ReloadSettings rebuilds the settings with Options.ReloadConfig and applies
// them if they changed. On error the previous settings stay and one warning
// is logged per distinct error (not one per interval).
func (s *Syncer) ReloadSettings(ctx context.Context) {
	if s.o.ReloadConfig == nil {
		return
	}
	s.configMu.Lock()
	defer s.configMu.Unlock()
	st, err := s.o.ReloadConfig(ctx)
	if err != nil {
		msg := oneLine(err)
		if msg != s.configErr {
			s.configErr = msg
			s.log.Warn("configuration reload failed; keeping the previous settings", zap.String("error", msg))
		}
		return
	}
	if s.configErr != "" {
		s.configErr = ""
		s.log.Info("configuration reload works again")
	}
	if st != s.trk.Settings() {
		s.trk.SetSettings(st)
		s.log.Info("applied changed settings", zap.Int("announce_interval", st.AnnounceInterval))
	}
}

// oneLine joins a multi-line error (errors.Join) into one log line.
func oneLine(err error) string {
	return strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
}

// isNoRows reports whether err means "no such row".
func isNoRows(err error) bool { return errors.Is(err, gosql.ErrNoRows) }
