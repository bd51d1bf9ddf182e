package sync

import (
	"context"
	gosql "database/sql"
	"errors"
	"net/netip"
	gosync "sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/xbt-tracker/xbt-tracker/passkey"
	xsql "github.com/xbt-tracker/xbt-tracker/sql"
	"github.com/xbt-tracker/xbt-tracker/tracker"
)

const testSecret = "secretkey"

var errDown = errors.New("database down")

// fakeWriter "commits" into in-memory totals. fail decides, per call,
// whether the write fails and which part of the batch it committed first.
type fakeWriter struct {
	mu      gosync.Mutex
	calls   int
	fail    func(call int) bool // nil: never fail
	partial bool                // on failure, commit the users first and fail on the rest
	pauses  []time.Duration     // each call's WriteOptions.ChunkPause

	users     map[uint32]tracker.UserDelta
	completed map[uint32]uint64
	announced map[tracker.FileUserKey]uint64
	deleted   []uint32
	deleteErr error
}

func newFakeWriter() *fakeWriter {
	return &fakeWriter{
		users:     map[uint32]tracker.UserDelta{},
		completed: map[uint32]uint64{},
		announced: map[tracker.FileUserKey]uint64{},
	}
}

func (w *fakeWriter) WriteWith(_ context.Context, b *tracker.Batch, o xsql.WriteOptions) (*tracker.Batch, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls++
	w.pauses = append(w.pauses, o.ChunkPause)
	failing := w.fail != nil && w.fail(w.calls)
	if failing && !w.partial {
		return b, errDown
	}
	for uid, d := range b.Users {
		o := w.users[uid]
		o.Uploaded += d.Uploaded
		o.Downloaded += d.Downloaded
		w.users[uid] = o
	}
	if failing {
		rest := &tracker.Batch{Files: b.Files, FileUsers: b.FileUsers, NewFiles: b.NewFiles,
			AnnounceLog: b.AnnounceLog, ScrapeLog: b.ScrapeLog, Users: map[uint32]tracker.UserDelta{}}
		return rest, errDown
	}
	for fid, d := range b.Files {
		w.completed[fid] += d.Completed
	}
	for k, d := range b.FileUsers {
		w.announced[k] += d.Announced
	}
	return nil, nil
}

func (w *fakeWriter) DeleteFiles(_ context.Context, fids []uint32) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.deleteErr != nil {
		return w.deleteErr
	}
	w.deleted = append(w.deleted, fids...)
	return nil
}

func (w *fakeWriter) InDoubt() int                         { return 0 }
func (w *fakeWriter) Quarantined() int                     { return 0 }
func (w *fakeWriter) FinishQuarantine(context.Context) int { return 0 }

func (w *fakeWriter) totals() (up, down uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, d := range w.users {
		up += d.Uploaded
		down += d.Downloaded
	}
	return up, down
}

func (w *fakeWriter) setFail(f func(int) bool) {
	w.mu.Lock()
	w.fail = f
	w.mu.Unlock()
}

// fakeSource serves snapshots and lookups from memory.
type fakeSource struct {
	mu        gosync.Mutex
	snaps     []*xsql.Snapshot
	loadErr   error
	users     map[uint32]tracker.User
	torrents  map[tracker.InfoHash]tracker.Torrent
	deny4     [][2]uint32
	allow     [][]byte // client rules
	denyIDs   [][]byte
	rulesErr  error
	credit    *tracker.CreditRules
	creditErr error
	lookupErr error
}

func newFakeSource() *fakeSource {
	return &fakeSource{users: map[uint32]tracker.User{}, torrents: map[tracker.InfoHash]tracker.Torrent{}}
}

func (f *fakeSource) Load(context.Context) (*xsql.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.loadErr != nil {
		return nil, f.loadErr
	}
	if len(f.snaps) == 0 {
		return &xsql.Snapshot{}, nil
	}
	s := f.snaps[0]
	f.snaps = f.snaps[1:]
	return s, nil
}

func (f *fakeSource) LookupUser(_ context.Context, uid uint32) (tracker.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lookupErr != nil {
		return tracker.User{}, f.lookupErr
	}
	u, ok := f.users[uid]
	if !ok {
		return u, gosql.ErrNoRows
	}
	return u, nil
}

func (f *fakeSource) LookupTorrent(_ context.Context, ih tracker.InfoHash) (tracker.Torrent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lookupErr != nil {
		return tracker.Torrent{}, f.lookupErr
	}
	t, ok := f.torrents[ih]
	if !ok {
		return t, gosql.ErrNoRows
	}
	return t, nil
}

func (f *fakeSource) DenyList(context.Context) ([][2]uint32, [][2][16]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.deny4, nil, nil
}

func (f *fakeSource) ClientRules(context.Context) ([][]byte, [][]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.allow, f.denyIDs, f.rulesErr
}

func (f *fakeSource) CreditRules(context.Context) (*tracker.CreditRules, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.credit, f.creditErr
}

// harness is a tracker with users 1..nUsers and torrents 1..nTorrents, a
// Syncer on fakes, and an observed logger.
type harness struct {
	trk  *tracker.Tracker
	w    *fakeWriter
	src  *fakeSource
	s    *Syncer
	logs *observer.ObservedLogs
}

func newHarness(t testing.TB, nUsers, nTorrents int, o Options) *harness {
	t.Helper()
	trk := tracker.New(tracker.Settings{Secret: testSecret, AnnounceInterval: 1800}, tracker.Options{})
	for uid := 1; uid <= nUsers; uid++ {
		trk.UpsertUser(tracker.User{UID: uint32(uid), CanLeech: true})
	}
	for fid := 1; fid <= nTorrents; fid++ {
		trk.UpsertTorrent(tracker.Torrent{Fid: uint32(fid), InfoHash: hashOf(fid)})
	}
	core, logs := observer.New(zapcore.DebugLevel)
	h := &harness{trk: trk, w: newFakeWriter(), src: newFakeSource(), logs: logs}
	h.s = newSyncer(trk, nil, h.src, h.w, o, zap.New(core))
	return h
}

func hashOf(n int) tracker.InfoHash {
	var ih tracker.InfoHash
	ih[0], ih[1], ih[2] = byte(n>>16), byte(n>>8), byte(n)
	ih[19] = 0xAA
	return ih
}

// client is one simulated peer sending cumulative counters.
type client struct {
	uid      uint32
	ih       tracker.InfoHash
	id       int
	up, down uint64
	left     uint64
}

func (c *client) announce(trk *tracker.Tracker, addUp, addDown uint64) tracker.Failure {
	c.up += addUp
	c.down += addDown
	a := &tracker.Announce{
		Passkey:  []byte(passkey.Derive(testSecret, 0, c.uid, c.ih)),
		InfoHash: c.ih, Addr: netip.AddrFrom4([4]byte{10, 0, byte(c.id >> 8), byte(c.id)}),
		Port: 6881, Uploaded: c.up, Downloaded: c.down, Left: c.left, NumWant: -1,
	}
	a.PeerID[0], a.PeerID[1] = byte(c.id>>8), byte(c.id)
	var out tracker.AnnounceResult
	trk.Announce(a, &out)
	return out.Failure
}

// countLevel returns how many entries at level lvl carry msg (all if msg is "").
func countLevel(logs *observer.ObservedLogs, lvl zapcore.Level, msg string) int {
	n := 0
	for _, e := range logs.All() {
		if e.Level == lvl && (msg == "" || e.Message == msg) {
			n++
		}
	}
	return n
}
