package sync

import (
	"context"
	gosql "database/sql"
	"encoding/binary"
	gosync "sync"
	"time"

	"golang.org/x/sync/singleflight"

	xsql "github.com/xbt-tracker/xbt-tracker/sql"
	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// Lookup defaults (LookupOptions zero values mean these).
const (
	DefaultLookupRate        = 50
	DefaultLookupTimeout     = time.Second
	DefaultNegativeTTL       = 30 * time.Second
	DefaultNegativeCacheSize = 100_000
)

// LookupOptions bound the on-demand lookups.
type LookupOptions struct {
	// Rate is the most database lookups per second, users and torrents
	// together (a token bucket holding one second's worth). A miss beyond
	// it is answered "not found" at once, without a query. Negative turns
	// on-demand lookups off; 0 means DefaultLookupRate.
	Rate int
	// Timeout bounds one lookup: a slow database delays an announce that
	// misses by at most this much.
	Timeout time.Duration
	// NegativeTTL is how long a key the database does not have is answered
	// "not found" without a query.
	NegativeTTL time.Duration
	// NegativeCacheSize bounds the keys remembered as not found.
	NegativeCacheSize int
}

func (o LookupOptions) withDefaults() LookupOptions {
	if o.Rate == 0 {
		o.Rate = DefaultLookupRate
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultLookupTimeout
	}
	if o.NegativeTTL <= 0 {
		o.NegativeTTL = DefaultNegativeTTL
	}
	if o.NegativeCacheSize <= 0 {
		o.NegativeCacheSize = DefaultNegativeCacheSize
	}
	return o
}

// Lookup results, the result label of xbt_tracker_lookups_total. hit, miss
// and error are database queries; the others cost none.
const (
	resultHit     = "hit"     // found in the database (user_version: with another version)
	resultMiss    = "miss"    // the database has no such row, or (user_version) no other version (now remembered)
	resultError   = "error"   // the query failed or timed out
	resultCached  = "cached"  // answered "not found" from the negative cache
	resultLimited = "limited" // over the rate limit: answered "not found"
	resultShared  = "shared"  // waited for the same key's query in flight
)

// Resolver is the tracker.Resolver the Syncer installs: it looks up a user
// or torrent the engine does not hold, so that a user who just registered
// or a torrent just uploaded works on the first announce. Its cost is
// bounded, whatever clients send:
//
//   - single flight: one query per key in flight; concurrent misses of the
//     same key wait for it;
//   - a negative cache: a key the database does not have is not queried
//     again for NegativeTTL (at most NegativeCacheSize keys);
//   - a global rate limit: at most Rate queries per second; beyond it a miss
//     is answered "not found" at once;
//   - a timeout per query.
//
// So a flood of random passkeys or info hashes costs the database at most
// Rate queries per second, and an announce at most Timeout of waiting. The
// same holds for wrong passkeys of a loaded user (ResolveUserVersion): one
// query per uid per NegativeTTL, all of them within Rate.
//
// A key the database did not have is dropped from the negative cache when
// a reload or change poll reports it inserted, and the whole cache at a
// full reload.
type Resolver struct {
	src     source
	o       LookupOptions
	m       *metrics
	sf      singleflight.Group
	limiter limiter
	neg     negCache
}

func newResolver(src source, o LookupOptions, m *metrics) *Resolver {
	o = o.withDefaults()
	r := &Resolver{src: src, o: o, m: m}
	r.limiter.init(float64(o.Rate), time.Now())
	r.neg.init(o.NegativeCacheSize)
	return r
}

// ResolveUser looks uid up (tracker.Resolver).
func (r *Resolver) ResolveUser(uid uint32) (tracker.User, bool) {
	v, ok := r.resolve("user", userKey(uid), func(ctx context.Context) (any, error) {
		return r.src.LookupUser(ctx, uid)
	})
	if !ok {
		return tracker.User{}, false
	}
	return v.(tracker.User), true
}

// ResolveUserVersion looks uid up for a passkey that does not verify with
// loaded, the torrent_pass_version in memory (tracker.Resolver): it returns
// the user when the database has another version. "Same version" (and "no
// such user") is remembered like a miss, under its own key, so wrong
// passkeys for a real uid cost one query per NegativeTTL, within the rate
// limit.
func (r *Resolver) ResolveUserVersion(uid uint32, loaded int) (tracker.User, bool) {
	v, ok := r.resolve("user_version", versionKey(uid), func(ctx context.Context) (any, error) {
		u, err := r.src.LookupUser(ctx, uid)
		if err == nil && u.TorrentPassVersion == loaded {
			return nil, gosql.ErrNoRows // nothing newer than what is loaded
		}
		return u, err
	})
	if !ok {
		return tracker.User{}, false
	}
	return v.(tracker.User), true
}

func userKey(uid uint32) string {
	var k [5]byte
	k[0] = 'u'
	binary.BigEndian.PutUint32(k[1:], uid)
	return string(k[:])
}

func versionKey(uid uint32) string {
	var k [5]byte
	k[0] = 'v'
	binary.BigEndian.PutUint32(k[1:], uid)
	return string(k[:])
}

func torrentKey(ih tracker.InfoHash) string {
	var k [21]byte
	k[0] = 't'
	copy(k[1:], ih[:])
	return string(k[:])
}

// forget drops from the negative cache what a reload or change poll has
// just read from the database: the users and torrents of an incremental
// snapshot (inserted or changed: "not found" or "no other version" is
// stale), everything after a full one.
func (r *Resolver) forget(snap *xsql.Snapshot) {
	r.neg.mu.Lock()
	defer r.neg.mu.Unlock()
	if len(r.neg.m) == 0 {
		return
	}
	if snap.Full {
		clear(r.neg.m)
		return
	}
	for _, u := range snap.Users {
		delete(r.neg.m, userKey(u.UID))
		delete(r.neg.m, versionKey(u.UID))
	}
	for _, t := range snap.Torrents {
		delete(r.neg.m, torrentKey(t.InfoHash))
	}
}

// ResolveTorrent looks ih up (tracker.Resolver).
func (r *Resolver) ResolveTorrent(ih tracker.InfoHash) (tracker.Torrent, bool) {
	v, ok := r.resolve("torrent", torrentKey(ih), func(ctx context.Context) (any, error) {
		return r.src.LookupTorrent(ctx, ih)
	})
	if !ok {
		return tracker.Torrent{}, false
	}
	return v.(tracker.Torrent), true
}

type lookupResult struct {
	v      any
	result string
}

func (r *Resolver) resolve(kind, key string, query func(context.Context) (any, error)) (any, bool) {
	now := time.Now()
	if r.neg.has(key, now) {
		r.m.lookups.WithLabelValues(kind, resultCached).Inc()
		return nil, false
	}
	leader := false
	v, _, _ := r.sf.Do(key, func() (any, error) {
		leader = true
		if !r.limiter.allow(time.Now()) {
			return lookupResult{result: resultLimited}, nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), r.o.Timeout)
		defer cancel()
		v, err := query(ctx)
		switch {
		case err == nil:
			return lookupResult{v: v, result: resultHit}, nil
		case isNoRows(err):
			r.neg.add(key, time.Now().Add(r.o.NegativeTTL))
			return lookupResult{result: resultMiss}, nil
		default:
			return lookupResult{result: resultError}, nil
		}
	})
	res := v.(lookupResult)
	label := res.result
	if !leader {
		label = resultShared
	}
	r.m.lookups.WithLabelValues(kind, label).Inc()
	return res.v, res.result == resultHit
}

// limiter is a token bucket: rate tokens per second, holding at most one
// second's worth.
type limiter struct {
	mu     gosync.Mutex
	rate   float64
	tokens float64
	last   time.Time
}

func (l *limiter) init(rate float64, now time.Time) {
	l.rate, l.tokens, l.last = rate, rate, now
}

func (l *limiter) allow(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if d := now.Sub(l.last); d > 0 {
		l.tokens = min(l.rate, l.tokens+d.Seconds()*l.rate)
		l.last = now
	}
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}

// negCache remembers keys the database does not have, until they expire.
// When full, expired keys are dropped, then (if still full) an eighth of
// the keys, chosen by Go's random map order.
type negCache struct {
	mu  gosync.Mutex
	max int
	m   map[string]time.Time
}

func (c *negCache) init(maxKeys int) {
	c.max = maxKeys
	c.m = make(map[string]time.Time)
}

func (c *negCache) has(key string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, ok := c.m[key]
	if ok && !now.Before(exp) {
		delete(c.m, key)
		return false
	}
	return ok
}

func (c *negCache) add(key string, exp time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; !ok && len(c.m) >= c.max {
		now := time.Now()
		for k, e := range c.m {
			if !now.Before(e) {
				delete(c.m, k)
			}
		}
		for k := range c.m {
			if len(c.m) <= c.max-max(c.max/8, 1) {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[key] = exp
}

func (c *negCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
