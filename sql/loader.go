package sql

import (
	"context"
	gosql "database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// Reloads: why incremental, and how.
//
// The tracker re-reads the catalog every read_db_interval (60 s) so that new
// users and torrents, bans (can_leech), limits, revoked passkeys
// (torrent_pass_version) and deletions (flags & 1) take effect, and polls
// the changelog below every change_poll_interval (2 s) so that they take
// effect within seconds. A full scan of 1M users plus 1M torrents costs
// seconds of database and tracker CPU (docs/BENCHMARKS.md, "Database")
// every minute, whether anything changed or not. So after the first Load
// the Loader reads only what changed (migration 00004):
//
//   - users: xbt_tracker_changes, a changelog that triggers on xbt_users
//     keep for inserts, deletes and updates of the columns the tracker reads
//     (its own uploaded/downloaded writes do not mark rows);
//   - torrents: the same changelog for inserted and deleted xbt_files rows,
//     plus the rows with flags & 1, found through an index on flags. There
//     is no UPDATE trigger on xbt_files (it would break catalogs' "ON
//     DUPLICATE KEY UPDATE fid = LAST_INSERT_ID(fid)" on MariaDB, see the
//     migration), so other edits of an existing torrent (ctime, info_hash)
//     arrive with the next full Load (about hourly, fullEvery); XBT itself
//     never re-reads them.
//
// A reload then costs milliseconds, and a Poll (the changelog only: never a
// full Load, no trigger check, no deny list) a fraction of one (0.3 ms of
// server CPU when nothing changed, docs/BENCHMARKS.md, "Change poll").
// Without the changelog (migration not applied, or table names other than
// the classic ones) every Load is a full one, which is correct, only
// slower; ChangeTracking says why, and Poll reads nothing.
//
// The changelog's timestamps are taken when a change is made, but a change
// becomes visible when its transaction commits, later. So each Load re-reads
// the changelog from changeWindow before the previous Load's start, and
// remembers which (key, version) pairs it has already delivered in that
// window: a late commit is caught, a delivered change is not delivered
// twice. A Poll re-reads only pollWindow (so that polling every 2 s does not
// re-read minutes of a busy catalog's changes each time); a change committed
// later than that after it was made is caught by the next Load. A catalog
// transaction open longer than changeWindow could still be missed: the
// periodic full Load heals that (and anything else, such as triggers
// dropped by hand).

// Loader defaults.
const (
	// defaultChangeWindow is how far before the previous Load's start the
	// changelog is re-read: the longest catalog transaction whose change is
	// still picked up by the next incremental Load.
	defaultChangeWindow = 5 * time.Minute
	// defaultPollWindow is the same for a Poll: the longest time between a
	// catalog change and its commit that the next Poll still catches (the
	// next Load catches up to defaultChangeWindow).
	defaultPollWindow = 10 * time.Second
	// defaultFullEvery: a Load this long (server time) after the previous
	// full one is full again, whatever read_db_interval is.
	defaultFullEvery = time.Hour
	// changeRetention: changelog rows older than this are deleted (at a
	// full Load). A Loader whose previous Load is older than this minus the
	// window reloads fully.
	changeRetention = 24 * time.Hour
	// pruneBatch bounds one DELETE of old changelog rows.
	pruneBatch = 10000
)

// Snapshot is what one Load read.
//
// Full: Users and Torrents are the complete sets (apply with
// tracker.ReplaceUsers / ReplaceTorrents, which also remove what is absent);
// RemovedUsers is empty and RemovedTorrents lists the flags & 1 rows.
//
// Not Full: only what changed since the previous successful Load. Apply
// removals first, then upserts: RemoveUser for RemovedUsers, RemoveTorrent
// for RemovedTorrents, UpsertUser for Users, UpsertTorrent for Torrents. An
// info_hash is never in both Torrents and RemovedTorrents.
//
// DeletedFids are rows with flags & 1 among those read: XBT deletes them
// itself once it has dropped the torrents (Writer.DeleteFiles; XBT does so
// only when auto_register is off). A row whose DELETE failed is reported
// again by the next full Load.
type Snapshot struct {
	Full            bool
	Users           []tracker.User
	RemovedUsers    []uint32
	Torrents        []tracker.Torrent
	RemovedTorrents []tracker.InfoHash // flags & 1, deleted rows, and a row's old info_hash after it changed
	DeletedFids     []uint32           // flags & 1 rows the tracker must DELETE (XBT behaviour)
}

// Empty reports whether an incremental snapshot carries no change.
func (s *Snapshot) Empty() bool {
	return !s.Full && len(s.Users)+len(s.RemovedUsers)+len(s.Torrents)+len(s.RemovedTorrents)+len(s.DeletedFids) == 0
}

// Loader reads users and torrents for the tracker: everything on the first
// Load, then what changed. Its watermarks live inside it, so use one Loader
// per tracker for its whole life. Load calls are serialised.
type Loader struct {
	db *gosql.DB
	s  Schema

	mu         sync.Mutex
	window     time.Duration
	pollWindow time.Duration
	fullEvery  time.Duration
	lastFull   time.Time                // server time (UTC) read before the previous full Load
	watermark  time.Time                // server time (UTC) read before the previous successful Load or Poll; zero: no incremental base
	seen       map[changeKey]seenChange // delivered changelog entries of the window
	pruned     time.Time                // when seen last lost its entries older than the window
	nUsers     int                      // previous full Load's counts: size hints
	nTorrents  int
	flagged    map[uint32]tracker.InfoHash // rows with flags & 1 at the previous Load
}

// changeKey is a changelog row's key; hash holds the info_hash bytes.
type changeKey struct {
	tbl  uint8
	id   int64
	hash string
}

type seenChange struct {
	version uint64
	changed time.Time
}

// NewLoader returns a Loader for the tables and columns in s. It does not
// touch the database.
func NewLoader(db *gosql.DB, s Schema) *Loader {
	return &Loader{db: db, s: s, window: defaultChangeWindow, pollWindow: defaultPollWindow, fullEvery: defaultFullEvery}
}

// ErrPollNeedsLoad is Poll's answer when there is no incremental base: no
// successful Load yet, the last one found change tracking off, or it is too
// old for the changelog. Nothing was read; the next Load reads everything.
var ErrPollNeedsLoad = errors.New("change poll: no incremental base; the next reload reads everything")

// serverNow reads the server's UTC clock, the one the triggers use.
func (l *Loader) serverNow(ctx context.Context) (time.Time, error) {
	var now time.Time
	if err := l.db.QueryRowContext(ctx, "SELECT UTC_TIMESTAMP(6)").Scan(&now); err != nil {
		return time.Time{}, fmt.Errorf("load: read the server clock: %w", err)
	}
	return now, nil
}

// Load reads users and torrents. The first call (and the first one
// fullEvery after the previous full one, and every call while change
// tracking is off) returns a Full snapshot; the others only what changed
// since the previous successful Load or Poll. A failed Load changes
// nothing: the next one covers the same changes.
func (l *Loader) Load(ctx context.Context) (*Snapshot, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	trackErr := l.checkTracking(ctx)
	if trackErr != nil && !errors.Is(trackErr, ErrNoChangeTracking) {
		return nil, trackErr
	}
	now, err := l.serverNow(ctx)
	if err != nil {
		return nil, err
	}
	full := trackErr != nil || l.watermark.IsZero() || now.Sub(l.lastFull) >= l.fullEvery ||
		now.Sub(l.watermark) > changeRetention-l.window
	if full {
		return l.loadFull(ctx, now, trackErr == nil)
	}
	return l.loadChanges(ctx, now, l.window)
}

// Poll reads only what the changelog reports since the previous successful
// Load or Poll, as an incremental Load does, but never a full snapshot and
// without checking the triggers (the next Load does): four short queries,
// cheap enough to run every few seconds. It returns ErrPollNeedsLoad,
// without a query, when the previous Load was full because change tracking
// is off (or there was none). Polls and Loads are serialised; a failed Poll
// changes nothing.
func (l *Loader) Poll(ctx context.Context) (*Snapshot, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.watermark.IsZero() {
		return nil, ErrPollNeedsLoad
	}
	now, err := l.serverNow(ctx)
	if err != nil {
		return nil, err
	}
	if now.Sub(l.watermark) > changeRetention-l.window {
		return nil, ErrPollNeedsLoad
	}
	return l.loadChanges(ctx, now, l.pollWindow)
}

// loadFull scans both tables. With change tracking, the changelog entries
// of the window are read first (so they are committed, hence in the scans
// that follow) and remembered as delivered.
func (l *Loader) loadFull(ctx context.Context, now time.Time, tracking bool) (*Snapshot, error) {
	var seen map[changeKey]seenChange
	if tracking {
		var err error
		if seen, err = l.readWindow(ctx, now.Add(-l.window)); err != nil {
			return nil, err
		}
	}
	// Both tables at once, on two connections: the server produces rows
	// for one while the tracker decodes the other (measured: 1.7-1.85 s
	// instead of 2.3-2.6 s for 1M + 1M rows on two cores).
	var (
		users []tracker.User
		uerr  error
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		users, uerr = scanAllUsers(ctx, l.db, l.s, l.nUsers)
	}()
	live, flagged, err := scanAllTorrents(ctx, l.db, l.s, l.nTorrents, true)
	<-done
	if uerr != nil {
		return nil, uerr
	}
	if err != nil {
		return nil, err
	}
	snap := &Snapshot{Full: true, Users: users, Torrents: live}
	l.flagged = make(map[uint32]tracker.InfoHash, len(flagged))
	for _, f := range flagged {
		snap.RemovedTorrents = append(snap.RemovedTorrents, f.ih)
		snap.DeletedFids = append(snap.DeletedFids, f.fid)
		l.flagged[f.fid] = f.ih
	}
	l.nUsers, l.nTorrents = len(users)+len(users)/16+16, len(live)+len(live)/16+16
	l.lastFull = now
	if tracking {
		l.seen, l.watermark, l.pruned = seen, now, now
		l.prune(ctx, now)
	} else {
		l.seen, l.watermark = nil, time.Time{}
	}
	return snap, nil
}
