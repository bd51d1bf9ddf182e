package sync

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	xsql "github.com/xbt-tracker/xbt-tracker/sql"
	"github.com/xbt-tracker/xbt-tracker/tracker"
)

func TestLoadAndReloadApplySnapshots(t *testing.T) {
	h := newHarness(t, 0, 0, Options{})
	h.src.snaps = []*xsql.Snapshot{
		{Full: true,
			Users:           []tracker.User{{UID: 1, CanLeech: true}, {UID: 2, CanLeech: true}},
			Torrents:        []tracker.Torrent{{Fid: 1, InfoHash: hashOf(1)}, {Fid: 2, InfoHash: hashOf(2)}},
			RemovedTorrents: []tracker.InfoHash{hashOf(3)}, DeletedFids: []uint32{3}},
		{Users: []tracker.User{{UID: 3, CanLeech: true}, {UID: 1, TorrentPassVersion: 1}},
			RemovedUsers: []uint32{2}, Torrents: []tracker.Torrent{{Fid: 4, InfoHash: hashOf(4)}},
			RemovedTorrents: []tracker.InfoHash{hashOf(1)}, DeletedFids: []uint32{1}},
	}
	h.src.deny4 = [][2]uint32{{0x0a000001, 0x0a0000ff}}
	if err := h.s.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := h.trk.Stats(); st.Users != 2 || st.Torrents != 2 {
		t.Fatalf("after load: %d users, %d torrents", st.Users, st.Torrents)
	}
	if !h.trk.Denied(netip.MustParseAddr("10.0.0.7")) {
		t.Fatal("deny list not applied")
	}
	if len(h.w.deleted) != 1 || h.w.deleted[0] != 3 {
		t.Fatalf("deleted fids %v, want [3]", h.w.deleted)
	}
	if n := countLevel(h.logs, zapcore.InfoLevel, "loaded users and torrents"); n != 1 {
		t.Fatalf("%d load lines", n)
	}
	if h.s.Status().LastReload.IsZero() {
		t.Fatal("load did not set LastReload")
	}

	h.w.deleteErr = errors.New("locked")
	if err := h.s.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.trk.User(2); ok {
		t.Fatal("removed user still loaded")
	}
	if u, ok := h.trk.User(1); !ok || u.TorrentPassVersion != 1 {
		t.Fatalf("user 1 not updated: %+v", u)
	}
	if _, ok := h.trk.User(3); !ok {
		t.Fatal("new user not loaded")
	}
	if _, ok := h.trk.Torrent(hashOf(1)); ok {
		t.Fatal("removed torrent still loaded")
	}
	if _, ok := h.trk.Torrent(hashOf(4)); !ok {
		t.Fatal("new torrent not loaded")
	}
	// The failed delete is retried at the next reload.
	h.w.deleteErr = nil
	if err := h.s.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(h.w.deleted) != 2 || h.w.deleted[1] != 1 {
		t.Fatalf("deleted fids %v, want [3 1]", h.w.deleted)
	}
	if n := countLevel(h.logs, zapcore.WarnLevel, ""); n != 1 {
		t.Fatalf("%d warnings, want 1 (the failed delete)", n)
	}
}

func TestReloadFailureKeepsServing(t *testing.T) {
	h := newHarness(t, 1, 1, Options{})
	h.src.loadErr = errors.New("gone")
	for range 3 {
		if err := h.s.Reload(context.Background()); err == nil {
			t.Fatal("reload succeeded without a database")
		}
	}
	if n := countLevel(h.logs, zapcore.WarnLevel, ""); n != 1 {
		t.Fatalf("%d warnings for one failure streak", n)
	}
	if st := h.s.Status(); st.ReloadErr != "gone" {
		t.Fatalf("status %+v", st)
	}
	if _, ok := h.trk.User(1); !ok {
		t.Fatal("a failed reload dropped what was loaded")
	}
	h.src.loadErr = nil
	if err := h.s.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := h.s.Status(); st.ReloadErr != "" || st.LastReload.IsZero() {
		t.Fatalf("status after recovery %+v", st)
	}
}

func TestReloadSettings(t *testing.T) {
	interval := 900
	var fail error
	h := newHarness(t, 0, 0, Options{ReloadConfig: func(context.Context) (tracker.Settings, error) {
		if fail != nil {
			return tracker.Settings{}, fail
		}
		return tracker.Settings{Secret: testSecret, AnnounceInterval: interval}, nil
	}})
	h.s.ReloadSettings(context.Background())
	if got := h.trk.Settings().AnnounceInterval; got != 900 {
		t.Fatalf("announce interval %d, want 900", got)
	}
	fail = errors.Join(errors.New(`config: announce_interval = "x" (from xbt_config): want seconds`), errors.New("second"))
	for range 3 {
		h.s.ReloadSettings(context.Background())
	}
	if got := h.trk.Settings().AnnounceInterval; got != 900 {
		t.Fatalf("an invalid config changed the settings: %d", got)
	}
	warns := h.logs.FilterLevelExact(zapcore.WarnLevel).All()
	if len(warns) != 1 {
		t.Fatalf("%d warnings for one bad value, want 1", len(warns))
	}
	if msg := warns[0].ContextMap()["error"].(string); msg != `config: announce_interval = "x" (from xbt_config): want seconds; second` {
		t.Fatalf("warning does not name the value on one line: %q", msg)
	}
	fail = nil
	interval = 60
	h.s.ReloadSettings(context.Background())
	if got := h.trk.Settings().AnnounceInterval; got != 60 {
		t.Fatalf("announce interval %d, want 60", got)
	}
}

func TestRunLoops(t *testing.T) {
	reloads := 0
	h := newHarness(t, 1, 1, Options{
		WriteInterval: 20 * time.Millisecond, ReadDBInterval: 20 * time.Millisecond,
		ReadConfigInterval: 20 * time.Millisecond, CleanUpInterval: 20 * time.Millisecond,
		ReloadConfig: func(context.Context) (tracker.Settings, error) {
			reloads++
			return tracker.Settings{Secret: testSecret, AnnounceInterval: 1}, nil
		},
	})
	c := &client{uid: 1, ih: hashOf(1), id: 1}
	c.announce(h.trk, 0, 0)
	c.announce(h.trk, 5, 5)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.s.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		up, _ := h.w.totals()
		st := h.trk.Stats()
		if up == 5 && st.Peers == 0 && !h.s.Status().LastReload.IsZero() {
			break // flushed, reloaded, and the peer expired (interval 1 s)
		}
		if time.Now().After(deadline) {
			t.Fatalf("loops did not run: written %d, peers %d, status %+v", up, st.Peers, h.s.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// The client rules are read with the deny list at the load and at every
// reload; a failure to read them fails the reload and keeps the old rules.
func TestReloadAppliesClientRules(t *testing.T) {
	h := newHarness(t, 0, 0, Options{})
	h.src.allow = [][]byte{[]byte("-TR3"), []byte("-UT3")}
	h.src.denyIDs = [][]byte{[]byte("-XX")}
	if err := h.s.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a, d := h.trk.ClientRules().Len(); a != 2 || d != 1 {
		t.Fatalf("after load: %d allow, %d deny prefixes; want 2, 1", a, d)
	}
	h.src.allow, h.src.denyIDs = nil, [][]byte{[]byte("-XX"), []byte("-YY")}
	if err := h.s.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a, d := h.trk.ClientRules().Len(); a != 0 || d != 2 {
		t.Fatalf("after reload: %d allow, %d deny prefixes; want 0, 2", a, d)
	}
	h.src.rulesErr = errors.New("gone")
	if err := h.s.Reload(context.Background()); err == nil {
		t.Fatal("reload with a failing client rules read succeeded")
	}
	if _, d := h.trk.ClientRules().Len(); d != 2 {
		t.Fatal("failed reload changed the client rules")
	}
	h.src.rulesErr, h.src.denyIDs = nil, nil
	if err := h.s.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h.trk.ClientRules() != nil {
		t.Fatal("empty tables left client rules installed")
	}
}

// The credit factors and tokens are read at the load and at every reload
// and credited from the next announce; a failure to read them fails the
// reload and keeps the old ones; none read removes them.
func TestReloadAppliesCreditRules(t *testing.T) {
	h := newHarness(t, 2, 2, Options{})
	ctx := context.Background()
	rules := &tracker.CreditRules{
		Torrents: map[uint32]tracker.Factors{1: {Down: tracker.Percent(0)}}, // freeleech
		Users:    map[uint32]tracker.Factors{1: {Up: tracker.Percent(200)}}, // double upload
		Tokens:   map[tracker.FileUserKey]int64{{Fid: 2, UID: 2}: 1 << 40},  // far future
	}
	h.src.credit = rules
	if err := h.s.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if got := h.trk.CreditRules(); got != rules {
		t.Fatalf("after load: rules %+v, want %+v", got, rules)
	}
	a := &client{uid: 1, ih: hashOf(1), id: 1}
	b := &client{uid: 2, ih: hashOf(2), id: 2}
	for _, c := range []*client{a, b} {
		if f := c.announce(h.trk, 0, 0); f != "" {
			t.Fatalf("announce: %s", f)
		}
		c.announce(h.trk, 100, 100)
	}
	if err := h.s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	h.w.mu.Lock()
	ua, ub := h.w.users[1], h.w.users[2]
	h.w.mu.Unlock()
	if ua.Uploaded != 200 || ua.Downloaded != 0 || ub.Uploaded != 100 || ub.Downloaded != 0 {
		t.Fatalf("credited: uid 1 %+v (want 200 up, 0 down), uid 2 %+v (want 100 up, 0 down)", ua, ub)
	}

	h.src.creditErr = errors.New("gone")
	if err := h.s.Reload(ctx); err == nil {
		t.Fatal("reload with a failing credit rules read succeeded")
	}
	if h.trk.CreditRules() != rules {
		t.Fatal("failed reload changed the credit rules")
	}
	h.src.credit, h.src.creditErr = nil, nil
	if err := h.s.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := h.trk.CreditRules(); got != nil {
		t.Fatalf("no rules read, %+v still installed", got)
	}
}
