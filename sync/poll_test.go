package sync

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/xbt-tracker/xbt-tracker/passkey"
	xsql "github.com/xbt-tracker/xbt-tracker/sql"
	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// pollSource is a fakeSource that also answers change polls (as
// *sql.Loader does) from its own queue, and watches that no Load or Poll
// overlaps another.
type pollSource struct {
	*fakeSource
	polls       []*xsql.Snapshot
	pollErr     error
	nPolls      atomic.Int64
	nLoads      atomic.Int64
	busy        atomic.Int32
	overlaps    atomic.Int32
	hold        time.Duration // how long each Load and Poll takes
	untracked   bool          // change tracking off: ErrPollNeedsLoad
	nTokenReads int           // FreeleechTokens calls (under fakeSource.mu)
}

func newPollSource() *pollSource { return &pollSource{fakeSource: newFakeSource()} }

func (p *pollSource) enter() func() {
	if p.busy.Add(1) > 1 {
		p.overlaps.Add(1)
	}
	time.Sleep(p.hold)
	return func() { p.busy.Add(-1) }
}

func (p *pollSource) Load(ctx context.Context) (*xsql.Snapshot, error) {
	defer p.enter()()
	p.nLoads.Add(1)
	return p.fakeSource.Load(ctx)
}

func (p *pollSource) Poll(context.Context) (*xsql.Snapshot, error) {
	defer p.enter()()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.untracked {
		return nil, xsql.ErrPollNeedsLoad
	}
	p.nPolls.Add(1)
	if p.pollErr != nil {
		return nil, p.pollErr
	}
	if len(p.polls) == 0 {
		return &xsql.Snapshot{}, nil
	}
	s := p.polls[0]
	p.polls = p.polls[1:]
	return s, nil
}

// FreeleechTokens answers from the fake's credit rules, as *sql.Loader
// reads only the token table.
func (p *pollSource) FreeleechTokens(context.Context) (map[tracker.FileUserKey]int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nTokenReads++
	if p.creditErr != nil {
		return nil, p.creditErr
	}
	if p.credit == nil {
		return nil, nil
	}
	return p.credit.Tokens, nil
}

func (p *pollSource) queue(s *xsql.Snapshot) {
	p.mu.Lock()
	p.polls = append(p.polls, s)
	p.mu.Unlock()
}

func newPollHarness(t *testing.T, nUsers, nTorrents int, o Options) (*harness, *pollSource) {
	t.Helper()
	h := newHarness(t, nUsers, nTorrents, o)
	ps := newPollSource()
	ps.fakeSource = h.src
	h.s = newSyncer(h.trk, nil, ps, h.w, o, h.s.log)
	return h, ps
}

// runFor runs the Syncer's loops until done reports true or d passes.
func runFor(t *testing.T, s *Syncer, d time.Duration, done func() bool) bool {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); _ = s.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case <-stopped:
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after its context ended")
		}
	}()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if done != nil && done() {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return done == nil
}

// announceV announces uid with its passkey of torrent_pass_version ver.
func announceV(trk *tracker.Tracker, uid uint32, ver int, ih tracker.InfoHash, id int) tracker.Failure {
	a := &tracker.Announce{
		Passkey:  []byte(passkey.Derive(testSecret, ver, uid, ih)),
		InfoHash: ih, Addr: netip.AddrFrom4([4]byte{10, 1, byte(id >> 8), byte(id)}),
		Port: 6881, Left: 0, NumWant: -1,
	}
	a.PeerID[0], a.PeerID[1] = byte(id>>8), byte(id)
	var out tracker.AnnounceResult
	trk.Announce(a, &out)
	return out.Failure
}

// The poll loop applies the change log between reloads, and only when it
// is on: change_poll_interval set, shorter than read_db_interval, and
// change tracking installed.
func TestPollLoop(t *testing.T) {
	tests := []struct {
		name      string
		poll      time.Duration
		readDB    time.Duration
		untracked bool
		wantPolls bool
	}{
		{name: "polls between reloads", poll: 10 * time.Millisecond, readDB: time.Hour, wantPolls: true},
		{name: "change_poll_interval 0: reloads only", poll: 0, readDB: time.Hour},
		{name: "interval not shorter than read_db_interval", poll: time.Hour, readDB: time.Hour},
		{name: "change tracking off", poll: 10 * time.Millisecond, readDB: time.Hour, untracked: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, ps := newPollHarness(t, 1, 1, Options{ChangePollInterval: tc.poll, ReadDBInterval: tc.readDB})
			ps.untracked = tc.untracked
			ps.queue(&xsql.Snapshot{
				Users:        []tracker.User{{UID: 5, CanLeech: true}, {UID: 1, TorrentPassVersion: 1, CanLeech: true}},
				Torrents:     []tracker.Torrent{{Fid: 9, InfoHash: hashOf(9)}},
				RemovedUsers: []uint32{3},
			})
			applied := func() bool {
				_, ok := h.trk.Torrent(hashOf(9))
				return ok
			}
			got := runFor(t, h.s, 300*time.Millisecond, applied)
			if got != tc.wantPolls {
				t.Fatalf("change applied = %v, want %v (polls %d)", got, tc.wantPolls, ps.nPolls.Load())
			}
			if !tc.wantPolls {
				if n := ps.nPolls.Load(); n != 0 {
					t.Fatalf("%d polls, want none", n)
				}
				return
			}
			if u, ok := h.trk.User(5); !ok || !u.CanLeech {
				t.Fatal("new user not applied")
			}
			if u, _ := h.trk.User(1); u.TorrentPassVersion != 1 {
				t.Fatal("version bump not applied")
			}
			if n := ps.nLoads.Load(); n != 0 {
				t.Fatalf("%d reloads within read_db_interval", n)
			}
			if n := countLevel(h.logs, zapcore.WarnLevel, ""); n != 0 {
				t.Fatalf("%d warnings", n)
			}
		})
	}
}

// Polls and reloads never overlap: not in the loop, and not with Reload or
// Poll called from elsewhere at the same time.
func TestPollNeverOverlapsReload(t *testing.T) {
	h, ps := newPollHarness(t, 1, 1, Options{ChangePollInterval: 3 * time.Millisecond, ReadDBInterval: 7 * time.Millisecond})
	ps.hold = 2 * time.Millisecond
	var wg gosync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			for i := 0; i < 200; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if i%2 == 0 {
					_ = h.s.Poll(context.Background())
				} else {
					_ = h.s.Reload(context.Background())
				}
			}
		})
	}
	runFor(t, h.s, 400*time.Millisecond, nil)
	close(stop)
	wg.Wait()
	if ps.nPolls.Load() == 0 || ps.nLoads.Load() == 0 {
		t.Fatalf("polls %d, reloads %d: both must have run", ps.nPolls.Load(), ps.nLoads.Load())
	}
	if n := ps.overlaps.Load(); n != 0 {
		t.Fatalf("%d overlapping Load/Poll calls", n)
	}
}

// Reloads and polls share one failure streak: one warning when reading
// starts failing, one info line when both work again, and a poll that
// works while the reloads keep failing does not end the streak.
func TestPollFailureStreak(t *testing.T) {
	h, ps := newPollHarness(t, 1, 1, Options{})
	ctx := context.Background()
	ps.pollErr = errors.New("gone")
	for range 3 {
		if err := h.s.Poll(ctx); err == nil {
			t.Fatal("poll succeeded without a database")
		}
	}
	h.src.loadErr = errors.New("gone too")
	if err := h.s.Reload(ctx); err == nil {
		t.Fatal("reload succeeded without a database")
	}
	if n := countLevel(h.logs, zapcore.WarnLevel, ""); n != 1 {
		t.Fatalf("%d warnings for one failure streak, want 1", n)
	}
	if st := h.s.Status(); st.ReloadErr != "gone too" {
		t.Fatalf("status %+v", st)
	}
	ps.pollErr = nil
	if err := h.s.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countLevel(h.logs, zapcore.InfoLevel, "reloading users and torrents works again"); n != 0 {
		t.Fatal("a poll ended the streak while reloads still fail")
	}
	if err := h.s.Reload(ctx); err == nil {
		t.Fatal("reload succeeded")
	}
	h.src.loadErr = nil
	if err := h.s.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countLevel(h.logs, zapcore.InfoLevel, "reloading users and torrents works again"); n != 1 {
		t.Fatalf("%d recovery lines, want 1", n)
	}
	if n := countLevel(h.logs, zapcore.WarnLevel, ""); n != 1 {
		t.Fatalf("%d warnings, want 1", n)
	}
	if st := h.s.Status(); st.ReloadErr != "" {
		t.Fatalf("status after recovery %+v", st)
	}
	// Without change tracking a poll is no failure and reads nothing.
	ps.untracked = true
	if err := h.s.Poll(ctx); err != nil {
		t.Fatal(err)
	}
}

// A user or torrent the resolver remembered as "not found" is forgotten
// when a reload or poll reports it: so is a "no other version".
func TestNegativeCacheClearedByReportedInsert(t *testing.T) {
	tests := []struct {
		name  string
		apply func(h *harness, ps *pollSource, snap *xsql.Snapshot) error
	}{
		{"change poll", func(h *harness, ps *pollSource, snap *xsql.Snapshot) error {
			ps.queue(snap)
			return h.s.Poll(context.Background())
		}},
		{"incremental reload", func(h *harness, ps *pollSource, snap *xsql.Snapshot) error {
			h.src.snaps = append(h.src.snaps, snap)
			return h.s.Reload(context.Background())
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, ps := newPollHarness(t, 2, 1, Options{Lookups: LookupOptions{NegativeTTL: time.Hour}})
			r := h.s.Resolver()
			ih := hashOf(50)
			if f := announceV(h.trk, 1, 0, ih, 1); f != tracker.ErrUnregisteredTorrent {
				t.Fatalf("unknown torrent: %q", f)
			}
			if f := announceV(h.trk, 40, 0, hashOf(1), 2); f != tracker.ErrUnregisteredTorrentPass {
				t.Fatalf("unknown user: %q", f)
			}
			if f := announceV(h.trk, 2, 3, hashOf(1), 3); f != tracker.ErrUnregisteredTorrentPass {
				t.Fatalf("wrong version: %q", f)
			}
			now := time.Now()
			for _, k := range []string{torrentKey(ih), userKey(40), versionKey(2)} {
				if !r.neg.has(k, now) {
					t.Fatalf("miss %q not remembered", k)
				}
			}
			// The catalog inserts them; the change log reports them.
			err := tc.apply(h, ps, &xsql.Snapshot{
				Users:    []tracker.User{{UID: 40, CanLeech: true}, {UID: 2, TorrentPassVersion: 3, CanLeech: true}},
				Torrents: []tracker.Torrent{{Fid: 50, InfoHash: ih}},
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{torrentKey(ih), userKey(40), versionKey(2)} {
				if r.neg.has(k, now) {
					t.Fatalf("key %q still in the negative cache after the change log reported it", k)
				}
			}
			for i, c := range []struct {
				uid uint32
				ver int
				ih  tracker.InfoHash
			}{{1, 0, ih}, {40, 0, hashOf(1)}, {2, 3, hashOf(1)}} {
				if f := announceV(h.trk, c.uid, c.ver, c.ih, 10+i); f != "" {
					t.Fatalf("uid %d after the reported insert: %q", c.uid, f)
				}
			}
		})
	}
	t.Run("full reload", func(t *testing.T) {
		h, _ := newPollHarness(t, 1, 1, Options{Lookups: LookupOptions{NegativeTTL: time.Hour}})
		announceV(h.trk, 1, 0, hashOf(60), 1)
		if h.s.Resolver().neg.len() == 0 {
			t.Fatal("miss not remembered")
		}
		h.src.snaps = append(h.src.snaps, &xsql.Snapshot{Full: true, Users: []tracker.User{{UID: 1}}})
		if err := h.s.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := h.s.Resolver().neg.len(); n != 0 {
			t.Fatalf("%d keys in the negative cache after a full reload", n)
		}
	})
}

// ResolveUserVersion: a user whose version in the database differs is
// returned; the same version, or no such user, is remembered like a miss.
func TestResolveUserVersion(t *testing.T) {
	src := newFakeSource()
	src.users[1] = tracker.User{UID: 1, TorrentPassVersion: 2}
	src.users[2] = tracker.User{UID: 2, TorrentPassVersion: 0}
	cs := &countingSource{source: src}
	r := newResolver(cs, LookupOptions{NegativeTTL: time.Hour}, newMetrics(nil, 1))
	tests := []struct {
		uid     uint32
		loaded  int
		want    bool
		queries int64 // total so far
	}{
		{uid: 1, loaded: 0, want: true, queries: 1},
		{uid: 1, loaded: 0, want: true, queries: 2}, // a hit is not cached
		{uid: 2, loaded: 0, want: false, queries: 3},
		{uid: 2, loaded: 0, want: false, queries: 3}, // cached
		{uid: 3, loaded: 0, want: false, queries: 4}, // deleted
		{uid: 3, loaded: 0, want: false, queries: 4},
	}
	for i, tc := range tests {
		u, ok := r.ResolveUserVersion(tc.uid, tc.loaded)
		if ok != tc.want || ok && u.UID != tc.uid {
			t.Fatalf("step %d: ResolveUserVersion(%d, %d) = %+v %v", i, tc.uid, tc.loaded, u, ok)
		}
		if q := cs.users.Load(); q != tc.queries {
			t.Fatalf("step %d: %d queries, want %d", i, q, tc.queries)
		}
	}
	if lookups(r, "user_version", resultHit) != 2 || lookups(r, "user_version", resultMiss) != 2 || lookups(r, "user_version", resultCached) != 2 {
		t.Fatal("user_version metrics do not match")
	}
	if _, ok := r.ResolveUser(2); !ok {
		t.Fatal("a version miss hid the user from ResolveUser")
	}
}

// A flood of wrong passkeys for real, loaded uids through the engine costs
// the database at most the rate limit in queries (one per uid per
// NegativeTTL); while a real bump still takes effect on its first announce.
func TestVersionFloodBounded(t *testing.T) {
	const users, rate = 2000, 20
	h, _ := newPollHarness(t, users, 1, Options{Lookups: LookupOptions{Rate: rate}})
	for uid := uint32(1); uid <= users; uid++ {
		h.src.users[uid] = tracker.User{UID: uid, CanLeech: true}
	}
	cs := &countingSource{source: h.src}
	h.s.res.src = cs
	bad := func(uid uint32) []byte {
		return []byte(fmt.Sprintf("%08x%024x", uid, rand.Uint64()))
	}
	flood := func(pick func() uint32, d time.Duration) (calls int64, took time.Duration) {
		start := time.Now()
		var wg gosync.WaitGroup
		var n atomic.Int64
		for g := range 32 {
			wg.Go(func() {
				var out tracker.AnnounceResult
				for i := 0; time.Since(start) < d; i++ {
					uid := pick()
					a := &tracker.Announce{Passkey: bad(uid), InfoHash: hashOf(1), Port: 6881, NumWant: -1,
						Addr: netip.AddrFrom4([4]byte{10, 2, byte(g), byte(i)})}
					h.trk.Announce(a, &out)
					if out.Failure != tracker.ErrUnregisteredTorrentPass {
						panic("a wrong passkey was accepted: " + out.Failure)
					}
					n.Add(1)
				}
			})
		}
		wg.Wait()
		return n.Load(), time.Since(start)
	}

	// One real uid: one query, however many wrong passkeys.
	calls, _ := flood(func() uint32 { return 7 }, 200*time.Millisecond)
	if q := cs.users.Load(); q != 1 || calls < 1000 {
		t.Fatalf("%d announces with wrong passkeys for one uid cost %d queries, want 1", calls, q)
	}
	// Many real uids: at most the rate limit.
	before := cs.users.Load()
	calls, took := flood(func() uint32 { return 1 + rand.Uint32N(users) }, 700*time.Millisecond)
	q := cs.users.Load() - before
	bound := int64(rate + rate*took.Seconds() + 1)
	t.Logf("%d announces with wrong passkeys for %d real uids in %v: %d queries (bound %d)", calls, users, took.Round(time.Millisecond), q, bound)
	if q > bound || calls < 1000 {
		t.Fatalf("%d queries for %d announces in %v, bound %d", q, calls, took, bound)
	}
	if lookups(h.s.res, "user_version", resultLimited) == 0 {
		t.Fatal("nothing was rate-limited")
	}

	// A real bump of a uid the flood did not touch works on its first
	// announce once the rate allows a query again.
	time.Sleep(2 * time.Second / rate)
	const bumped = users + 1
	h.trk.UpsertUser(tracker.User{UID: bumped, CanLeech: true})
	h.src.mu.Lock()
	h.src.users[bumped] = tracker.User{UID: bumped, CanLeech: true, TorrentPassVersion: 1}
	h.src.mu.Unlock()
	if f := announceV(h.trk, bumped, 1, hashOf(1), 99); f != "" {
		t.Fatalf("new passkey after the flood: %q", f)
	}
	if f := announceV(h.trk, bumped, 0, hashOf(1), 98); f != tracker.ErrUnregisteredTorrentPass {
		t.Fatalf("old passkey after the bump: %q", f)
	}
}

// Against MariaDB with the real Loader: a bumped version's passkey works at
// once (on-demand, before any poll) and the old one is refused from then on;
// a torrent announced before the catalog inserted it (a remembered miss)
// works after the next poll.
func TestPollRealDatabase(t *testing.T) {
	db, ld, s := realLoader(t)
	ctx := context.Background()
	uid, err := xsql.InsertUser(ctx, db, s.Names, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := xsql.InsertFile(ctx, db, s.Names, hashOf(1)); err != nil {
		t.Fatal(err)
	}
	trk := tracker.New(tracker.Settings{Secret: testSecret}, tracker.Options{})
	sy := New(trk, db, ld, xsql.NewWriter(db, s, xsql.WriterOptions{}), Options{ChangePollInterval: time.Second}, nil)
	if err := sy.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sy.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if f := announceV(trk, uid, 0, hashOf(1), 1); f != "" {
		t.Fatal(f)
	}
	if _, err := xsql.RevokeUser(ctx, db, s, uid); err != nil {
		t.Fatal(err)
	}
	if f := announceV(trk, uid, 1, hashOf(1), 2); f != "" {
		t.Fatalf("new passkey right after the bump: %q", f)
	}
	if f := announceV(trk, uid, 0, hashOf(1), 1); f != tracker.ErrUnregisteredTorrentPass {
		t.Fatalf("old passkey after the new one worked: %q", f)
	}

	if f := announceV(trk, uid, 1, hashOf(2), 3); f != tracker.ErrUnregisteredTorrent {
		t.Fatalf("torrent not in the catalog yet: %q", f)
	}
	if _, err := xsql.InsertFile(ctx, db, s.Names, hashOf(2)); err != nil {
		t.Fatal(err)
	}
	if f := announceV(trk, uid, 1, hashOf(2), 3); f != tracker.ErrUnregisteredTorrent {
		t.Fatalf("the miss should still be remembered before a poll: %q", f)
	}
	if err := sy.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if f := announceV(trk, uid, 1, hashOf(2), 3); f != "" {
		t.Fatalf("torrent inserted and polled: %q", f)
	}
	if f := announceV(trk, uid, 0, hashOf(2), 4); f != tracker.ErrUnregisteredTorrentPass {
		t.Fatalf("old passkey after the poll: %q", f)
	}
}

// Between reloads a poll refreshes the tokens, and a poll that brought a
// change re-reads every credit rule (a torrent inserted as freeleech counts
// from its first delta); a poll that fails to read them is a failed poll
// and keeps the old rules.
func TestPollRefreshesCreditRules(t *testing.T) {
	ctx := context.Background()
	h, ps := newPollHarness(t, 2, 2, Options{})
	if err := h.s.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.s.Poll(ctx); err != nil || h.trk.CreditRules() != nil {
		t.Fatalf("poll without rules: %v, %+v", err, h.trk.CreditRules())
	}

	// A token bought: the next (empty) poll installs it, keeping the factors.
	factors := map[uint32]tracker.Factors{1: {Up: tracker.Percent(200)}}
	h.trk.SetCreditRules(&tracker.CreditRules{Users: factors})
	ps.mu.Lock()
	ps.credit = &tracker.CreditRules{Tokens: map[tracker.FileUserKey]int64{{Fid: 1, UID: 1}: 1 << 40}}
	ps.mu.Unlock()
	if err := h.s.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	got := h.trk.CreditRules()
	if got == nil || len(got.Tokens) != 1 || got.Users[1] != factors[1] {
		t.Fatalf("after a poll: %+v, want the token and the user factor", got)
	}
	installed := got
	if err := h.s.Poll(ctx); err != nil || h.trk.CreditRules() != installed {
		t.Fatalf("an unchanged token set was swapped (%v)", err)
	}

	// A poll that brings a torrent re-reads everything: the factor of the
	// new torrent counts before the next reload.
	all := &tracker.CreditRules{Torrents: map[uint32]tracker.Factors{3: {Down: tracker.Percent(0)}}}
	ps.mu.Lock()
	ps.credit = all
	ps.mu.Unlock()
	ps.queue(&xsql.Snapshot{Torrents: []tracker.Torrent{{Fid: 3, InfoHash: hashOf(3)}}})
	if err := h.s.Poll(ctx); err != nil || h.trk.CreditRules() != all {
		t.Fatalf("poll with a new torrent: %v, rules %+v", err, h.trk.CreditRules())
	}

	ps.mu.Lock()
	ps.creditErr = errors.New("gone")
	reads := ps.nTokenReads
	ps.mu.Unlock()
	if err := h.s.Poll(ctx); err == nil {
		t.Fatal("a poll that could not read the tokens succeeded")
	}
	ps.mu.Lock()
	if ps.nTokenReads != reads+1 {
		t.Errorf("token reads %d, want %d", ps.nTokenReads, reads+1)
	}
	ps.mu.Unlock()
	if h.trk.CreditRules() != all {
		t.Fatal("a failed poll changed the credit rules")
	}
}
