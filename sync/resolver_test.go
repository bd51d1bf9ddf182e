package sync

import (
	"context"
	"errors"
	"math/rand/v2"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// countingSource wraps a source, counts the lookups that reach it and can
// make them slow.
type countingSource struct {
	source
	users, torrents atomic.Int64
	delay           time.Duration
}

func (c *countingSource) LookupUser(ctx context.Context, uid uint32) (tracker.User, error) {
	c.users.Add(1)
	if err := c.wait(ctx); err != nil {
		return tracker.User{}, err
	}
	return c.source.LookupUser(ctx, uid)
}

func (c *countingSource) LookupTorrent(ctx context.Context, ih tracker.InfoHash) (tracker.Torrent, error) {
	c.torrents.Add(1)
	if err := c.wait(ctx); err != nil {
		return tracker.Torrent{}, err
	}
	return c.source.LookupTorrent(ctx, ih)
}

func (c *countingSource) wait(ctx context.Context) error {
	if c.delay == 0 {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(c.delay):
		return nil
	}
}

func (c *countingSource) queries() int64 { return c.users.Load() + c.torrents.Load() }

func lookups(r *Resolver, kind, result string) float64 {
	var m dto.Metric
	if err := r.m.lookups.WithLabelValues(kind, result).Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

func TestResolverHitMissAndNegativeCache(t *testing.T) {
	src := newFakeSource()
	src.users[5] = tracker.User{UID: 5, CanLeech: true}
	src.torrents[hashOf(9)] = tracker.Torrent{Fid: 9, InfoHash: hashOf(9)}
	cs := &countingSource{source: src}
	r := newResolver(cs, LookupOptions{NegativeTTL: time.Hour}, newMetrics(nil, 1))

	if u, ok := r.ResolveUser(5); !ok || u.UID != 5 {
		t.Fatalf("ResolveUser(5) = %+v %v", u, ok)
	}
	if tr, ok := r.ResolveTorrent(hashOf(9)); !ok || tr.Fid != 9 {
		t.Fatalf("ResolveTorrent = %+v %v", tr, ok)
	}
	for range 3 {
		if _, ok := r.ResolveUser(6); ok {
			t.Fatal("found a user the database does not have")
		}
		if _, ok := r.ResolveTorrent(hashOf(10)); ok {
			t.Fatal("found a torrent the database does not have")
		}
	}
	if cs.users.Load() != 2 || cs.torrents.Load() != 2 {
		t.Fatalf("queries users=%d torrents=%d, want 2 and 2 (misses remembered)", cs.users.Load(), cs.torrents.Load())
	}
	if lookups(r, "user", resultCached) != 2 || lookups(r, "torrent", resultMiss) != 1 || lookups(r, "user", resultHit) != 1 {
		t.Fatal("lookup metrics do not match")
	}
	// Errors are not remembered: the next miss asks again.
	src.lookupErr = errors.New("boom")
	r.ResolveUser(7)
	r.ResolveUser(7)
	if cs.users.Load() != 4 || lookups(r, "user", resultError) != 2 {
		t.Fatalf("after errors: %d user queries", cs.users.Load())
	}
}

func TestResolverNegativeCacheExpires(t *testing.T) {
	src := newFakeSource()
	cs := &countingSource{source: src}
	r := newResolver(cs, LookupOptions{NegativeTTL: time.Hour}, newMetrics(nil, 1))
	r.ResolveUser(1)
	r.ResolveUser(1)
	src.mu.Lock()
	src.users[1] = tracker.User{UID: 1}
	src.mu.Unlock()
	if _, ok := r.ResolveUser(1); ok {
		t.Fatal("a remembered miss was asked again before it expired")
	}
	// Let the hour pass: the miss's expiry is moved to now, so the test
	// waits for no clock (the cache compares expiries with time.Now()).
	r.neg.mu.Lock()
	exp, ok := r.neg.m[userKey(1)]
	if !ok || time.Until(exp) < 59*time.Minute {
		r.neg.mu.Unlock()
		t.Fatalf("negative cache entry for uid 1: %v %v, want one expiring in an hour", exp, ok)
	}
	r.neg.m[userKey(1)] = time.Now()
	r.neg.mu.Unlock()
	if _, ok := r.ResolveUser(1); !ok {
		t.Fatal("a user registered after a miss is not found once the miss expired")
	}
	if n := cs.users.Load(); n != 2 {
		t.Fatalf("%d queries, want 2", n)
	}
}

func TestResolverNegativeCacheBounded(t *testing.T) {
	r := newResolver(&countingSource{source: newFakeSource()}, LookupOptions{Rate: 1_000_000, NegativeCacheSize: 100}, newMetrics(nil, 1))
	for uid := range uint32(1000) {
		r.ResolveUser(uid + 1)
	}
	if n := r.neg.len(); n > 100 {
		t.Fatalf("negative cache holds %d keys, bound 100", n)
	}
}

func TestResolverSingleFlight(t *testing.T) {
	src := newFakeSource()
	src.users[1] = tracker.User{UID: 1}
	cs := &countingSource{source: src, delay: 100 * time.Millisecond}
	r := newResolver(cs, LookupOptions{}, newMetrics(nil, 1))
	var wg gosync.WaitGroup
	var found atomic.Int32
	for range 50 {
		wg.Go(func() {
			if _, ok := r.ResolveUser(1); ok {
				found.Add(1)
			}
		})
	}
	wg.Wait()
	if found.Load() != 50 {
		t.Fatalf("%d of 50 concurrent lookups found the user", found.Load())
	}
	if n := cs.users.Load(); n > 2 {
		t.Fatalf("%d queries for one key looked up 50 times at once, want 1 (2 if a goroutine came late)", n)
	}
}

func TestResolverTimeout(t *testing.T) {
	src := newFakeSource()
	src.users[1] = tracker.User{UID: 1}
	cs := &countingSource{source: src, delay: 5 * time.Second}
	r := newResolver(cs, LookupOptions{Timeout: 100 * time.Millisecond}, newMetrics(nil, 1))
	start := time.Now()
	if _, ok := r.ResolveUser(1); ok {
		t.Fatal("a lookup that timed out answered found")
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("a lookup with a 100ms timeout took %v", took)
	}
}

// TestResolverFloodRateLimited: random keys from many goroutines cost at
// most the rate limit in queries, and answer at once beyond it.
func TestResolverFloodRateLimited(t *testing.T) {
	cs := &countingSource{source: newFakeSource()}
	const rate = 20
	r := newResolver(cs, LookupOptions{Rate: rate}, newMetrics(nil, 1))
	elapsed := floodResolver(t, r, 32, 700*time.Millisecond)
	limit := int64(rate + rate*elapsed.Seconds() + 1) // a full bucket, then the refill
	if q := cs.queries(); q > limit || q < rate {
		t.Fatalf("%d queries in %v, want between %d and %d", q, elapsed, rate, limit)
	}
	if lookups(r, "user", resultLimited)+lookups(r, "torrent", resultLimited) == 0 {
		t.Fatal("nothing was rate-limited")
	}
}

// floodResolver asks for random uids and hashes from n goroutines for d and
// returns the time it took.
func floodResolver(t *testing.T, r *Resolver, n int, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var wg gosync.WaitGroup
	var calls atomic.Int64
	for range n {
		wg.Go(func() {
			for time.Since(start) < d {
				if rand.IntN(2) == 0 {
					r.ResolveUser(rand.Uint32())
				} else {
					var ih tracker.InfoHash
					for i := range ih {
						ih[i] = byte(rand.Uint32())
					}
					r.ResolveTorrent(ih)
				}
				calls.Add(1)
			}
		})
	}
	wg.Wait()
	if calls.Load() < 1000 {
		t.Fatalf("only %d lookups in the flood", calls.Load())
	}
	return time.Since(start)
}

func TestResolverInstalledInTracker(t *testing.T) {
	h := newHarness(t, 0, 0, Options{})
	h.src.users[3] = tracker.User{UID: 3, CanLeech: true}
	h.src.torrents[hashOf(4)] = tracker.Torrent{Fid: 4, InfoHash: hashOf(4)}
	c := &client{uid: 3, ih: hashOf(4), id: 1}
	if f := c.announce(h.trk, 0, 0); f != "" {
		t.Fatalf("first announce of a user and torrent not loaded: %q", f)
	}
	c2 := &client{uid: 8, ih: hashOf(4), id: 2}
	if f := c2.announce(h.trk, 0, 0); f != tracker.ErrUnregisteredTorrentPass {
		t.Fatalf("unknown user: %q", f)
	}
	off := newHarness(t, 0, 0, Options{Lookups: LookupOptions{Rate: -1}})
	off.src.users[3] = tracker.User{UID: 3, CanLeech: true}
	if off.s.Resolver() != nil {
		t.Fatal("lookups off, but a resolver exists")
	}
	if f := c.announce(off.trk, 0, 0); f != tracker.ErrUnregisteredTorrentPass {
		t.Fatalf("lookups off: %q", f)
	}
}
