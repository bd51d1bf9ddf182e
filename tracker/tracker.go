package tracker

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults applied when a Settings field is zero or negative, so that a
// Tracker built from a zero Settings still behaves sensibly (XBT's values).
const (
	defaultAnnounceInterval = 1800
	defaultNumWant          = 50
)

// Options are the construction-time knobs of a Tracker that are not
// configuration (configuration lives in Settings and may change at run time).
type Options struct {
	// Now returns the current time; nil means time.Now. Tests pass a fake
	// clock so that wait times and expiry are deterministic.
	Now func() time.Time

	// Resolver, if not nil, is asked for users and torrents that are not
	// loaded (see Resolver); SetResolver changes it later.
	Resolver Resolver

	// Cluster: this engine is one of several instances sharing the
	// database, each holding the torrents a load balancer routes to it.
	// The counts and active flags it records without an announce (expiry,
	// reconciliation, a restored swarm) then carry the time of the newest
	// announce they reflect rather than the current time, so that the
	// database (sql.WriterOptions.Cluster) keeps the view of whichever
	// instance heard the torrent's peers last.
	Cluster bool
}

// Tracker is the in-memory engine: users, torrents, swarms and the delta
// ledger. All methods are safe for concurrent use. There is no package-level
// mutable state: several Trackers can live in one process (tests do).
//
// Locks, always taken in this order (never the reverse, so no deadlock):
// torrentsMu (torrent reloads only) → torrent shard → swarm → ledger shard
// or user shard. An announce takes a torrent shard's read lock just to find
// the swarm, releases it, and does its work under the swarm's mutex; user
// shards are only read-locked on the hot path; user mutators never take a
// swarm lock.
type Tracker struct {
	now func() time.Time
	cfg atomic.Pointer[config]

	// seed mixes info hashes before choosing a shard, so that a client
	// announcing crafted hashes (with auto_register on) cannot pile every
	// torrent into one shard.
	seed   uint64
	shards [torrentShards]torrentShard

	users userStore
	deny  atomic.Pointer[DenyList]
	// clients is nil when no client rule is set (the common case: one
	// nil test per announce).
	clients       atomic.Pointer[ClientRules]
	clientRefused [2]atomic.Uint64 // announces refused by rule: ruleAllow, ruleDeny
	ledger        ledger
	caps          creditCaps // announces refused credit by MaxCreditPerAnnounce
	// credit is nil when no torrent or user has a factor and no token is
	// valid (the common case: one nil test per crediting announce).
	credit atomic.Pointer[CreditRules]
	carry  carryStore // sub-byte remainders of multiplied credit

	resolver atomic.Pointer[resolverBox] // nil: no on-demand lookups

	// torrentsMu serialises the torrent mutators (Replace/Upsert/Remove).
	// They are rare; serialising them keeps their interplay simple. Announces
	// never take it.
	torrentsMu sync.Mutex

	cluster bool // Options.Cluster
	// storedPass is the last complete refresh pass of the stored counts
	// (CompleteStoredPass); a swarm's stored counts are valid when read in
	// that pass or a later one.
	storedPass atomic.Uint32
}

// config is Settings plus the effective values derived from it once, at
// SetSettings, instead of on every announce.
type config struct {
	s           Settings
	interval    int   // announce interval in seconds, > 0
	numWant     int   // peers given when the client asks for none, > 0
	maxNumWant  int   // upper bound of numwant, >= 1
	expireAfter int64 // seconds of silence after which a peer is dropped
	// site-wide credit factors in percent (Settings.UpMulti, DownMulti)
	siteUp, siteDown uint64
}

func newConfig(s Settings) *config {
	c := &config{s: s, interval: s.AnnounceInterval, numWant: s.DefaultNumWant, maxNumWant: s.MaxNumWant,
		siteUp: uint64(s.UpMulti.Percent()), siteDown: uint64(s.DownMulti.Percent())}
	if c.interval <= 0 {
		c.interval = defaultAnnounceInterval
	}
	if c.numWant <= 0 {
		c.numWant = defaultNumWant
	}
	if c.maxNumWant <= 0 {
		// No explicit maximum: never hand out more than the default, which is
		// what XBT does (it ignores numwant altogether).
		c.maxNumWant = c.numWant
	}
	if c.numWant > c.maxNumWant {
		c.numWant = c.maxNumWant
	}
	// XBT: peers whose mtime < now - 1.5 * announce_interval are dropped.
	c.expireAfter = int64(c.interval) * 3 / 2
	return c
}

// New returns an empty Tracker using settings s.
func New(s Settings, opts Options) *Tracker {
	t := &Tracker{now: opts.Now, seed: rand.Uint64(), cluster: opts.Cluster}
	if t.now == nil {
		t.now = time.Now
	}
	for i := range t.shards {
		t.shards[i].m = make(map[InfoHash]*swarm)
	}
	t.users.init()
	t.ledger.init()
	t.cfg.Store(newConfig(s))
	t.SetResolver(opts.Resolver)
	return t
}

// SetSettings replaces the settings; announces already running finish with
// the old ones. Zero or negative AnnounceInterval, DefaultNumWant and
// MaxNumWant mean 1800 s, 50 and "DefaultNumWant" respectively.
func (t *Tracker) SetSettings(s Settings) { t.cfg.Store(newConfig(s)) }

// Settings returns the settings last given to New or SetSettings, unchanged.
func (t *Tracker) Settings() Settings { return t.cfg.Load().s }
