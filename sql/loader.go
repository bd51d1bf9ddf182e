package sql

import (
	"bytes"
	"cmp"
	"context"
	gosql "database/sql"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	sq "github.com/Masterminds/squirrel"
	"github.com/go-sql-driver/mysql"

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

// changesTable is the changelog (migration 00004), owned by the tracker.
const changesTable = "xbt_tracker_changes"

// changelog table ids and trigger names (migration 00004).
const (
	changeUsers = 1
	changeFiles = 2

	errNoSuchTable = 1146
)

var (
	userTriggers = []string{"xbt_tracker_users_ai", "xbt_tracker_users_au", "xbt_tracker_users_ad"}
	fileTriggers = []string{"xbt_tracker_files_ai", "xbt_tracker_files_ad"}
)

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
	lastFull   time.Time // server time (UTC) read before the previous full Load
	watermark  time.Time // server time (UTC) read before the previous successful Load or Poll; zero: no incremental base
	seen       map[changeKey]seenChange
	nUsers     int // previous full Load's counts: size hints
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

// ErrNoChangeTracking is wrapped by ChangeTracking's error.
var ErrNoChangeTracking = errors.New("change tracking is off: every reload reads all of the users and files tables, and there is no change poll between reloads (change_poll_interval)")

// ErrPollNeedsLoad is Poll's answer when there is no incremental base: no
// successful Load yet, the last one found change tracking off, or it is too
// old for the changelog. Nothing was read; the next Load reads everything.
var ErrPollNeedsLoad = errors.New("change poll: no incremental base; the next reload reads everything")

// ChangeTracking reports whether incremental reloads are possible: nil when
// the changelog and its triggers are in place for the configured tables,
// else one line saying what is missing and how to fix it (wrapping
// ErrNoChangeTracking). Reloads work either way; without change tracking
// each one is a full scan. Call it at start-up and log the error once.
func (l *Loader) ChangeTracking(ctx context.Context) error {
	return l.checkTracking(ctx)
}

func (l *Loader) checkTracking(ctx context.Context) error {
	fix := `apply migration 00004 ("xbt-tracker migrate up"); see docs/ADOPTING.md, "Change tracking (triggers)"`
	if l.s.Users != "xbt_users" || l.s.Files != "xbt_files" || l.s.UsersUID != "uid" || l.s.FilesFid != "fid" {
		return fmt.Errorf("%w: the changelog triggers of migration 00004 cover only the classic xbt_users(uid) and xbt_files(fid), not %s(%s) and %s(%s)",
			ErrNoChangeTracking, l.s.Users, l.s.UsersUID, l.s.Files, l.s.FilesFid)
	}
	var sentinel int
	err := l.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+changesTable+" WHERE tbl = 0").Scan(&sentinel)
	if err != nil || sentinel == 0 {
		why := "table " + changesTable + " does not exist"
		if err == nil {
			why = "migration 00004 did not finish (its triggers were not all created)"
		} else if !isNoSuchTable(err) {
			return fmt.Errorf("change tracking: read %s: %w", changesTable, err)
		}
		return fmt.Errorf("%w: %s; %s%s", ErrNoChangeTracking, why, fix, l.binlogHint(ctx))
	}
	// The triggers are visible only to a user with the TRIGGER privilege;
	// the tracker's own user usually has not. Such a user trusts the
	// sentinel row written at the end of migration 00004 (and the periodic
	// full Load covers triggers dropped later); one who may see triggers
	// checks that all of them are there.
	all := slices.Concat(userTriggers, fileTriggers)
	q, args, err := sq.Select("TRIGGER_NAME").From("information_schema.TRIGGERS").
		Where("TRIGGER_SCHEMA = DATABASE()").Where(sq.Eq{"TRIGGER_NAME": all}).ToSql()
	if err != nil {
		return fmt.Errorf("change tracking: %w", err)
	}
	have, err := queryStrings(ctx, l.db, q, args...)
	if err != nil {
		return fmt.Errorf("change tracking: read information_schema.TRIGGERS: %w", err)
	}
	if len(have) == 0 {
		if may, err := l.maySeeTriggers(ctx); err != nil || !may {
			return nil
		}
	}
	var missing []string
	for _, name := range all {
		if !slices.Contains(have, name) {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: trigger(s) %s missing; %s%s", ErrNoChangeTracking, strings.Join(missing, ", "), fix, l.binlogHint(ctx))
	}
	return nil
}

// maySeeTriggers reports whether the current user holds the TRIGGER
// privilege globally, on this database or on one of its tables. Privileges
// held through roles are not seen: then the answer is "no", and the caller
// trusts the sentinel row.
func (l *Loader) maySeeTriggers(ctx context.Context) (bool, error) {
	// GRANTEE reads 'user'@'host'.
	const grantee = "CONCAT(QUOTE(SUBSTRING_INDEX(CURRENT_USER(), '@', 1)), '@', QUOTE(SUBSTRING_INDEX(CURRENT_USER(), '@', -1)))"
	q := "SELECT (SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES WHERE PRIVILEGE_TYPE = 'TRIGGER' AND GRANTEE = " + grantee + ")" +
		" + (SELECT COUNT(*) FROM information_schema.SCHEMA_PRIVILEGES WHERE PRIVILEGE_TYPE = 'TRIGGER' AND TABLE_SCHEMA = DATABASE() AND GRANTEE = " + grantee + ")" +
		" + (SELECT COUNT(*) FROM information_schema.TABLE_PRIVILEGES WHERE PRIVILEGE_TYPE = 'TRIGGER' AND TABLE_SCHEMA = DATABASE() AND GRANTEE = " + grantee + ")"
	var n int
	if err := l.db.QueryRowContext(ctx, q).Scan(&n); err != nil {
		return false, err
	}
	return n > 0, nil
}

// queryStrings returns the first column of every row.
func queryStrings(ctx context.Context, db *gosql.DB, q string, args ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// binlogHint explains the usual reason triggers could not be created.
func (l *Loader) binlogHint(ctx context.Context) string {
	var logBin, trust gosql.NullInt64
	if err := l.db.QueryRowContext(ctx, "SELECT @@log_bin, @@log_bin_trust_function_creators").Scan(&logBin, &trust); err != nil {
		return ""
	}
	if logBin.Int64 == 1 && trust.Int64 == 0 {
		return " (binary logging is on: creating triggers needs the SUPER privilege or log_bin_trust_function_creators = 1)"
	}
	return ""
}

func isNoSuchTable(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == errNoSuchTable
}

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
		l.seen, l.watermark = seen, now
		l.prune(ctx, now)
	} else {
		l.seen, l.watermark = nil, time.Time{}
	}
	return snap, nil
}

// readWindow returns the changelog entries changed after since.
func (l *Loader) readWindow(ctx context.Context, since time.Time) (map[changeKey]seenChange, error) {
	q, args, err := sq.Select("tbl", "id", "info_hash", "version", "changed").From(changesTable).
		Where(sq.Eq{"tbl": []int{changeUsers, changeFiles}}).Where(sq.Gt{"changed": since}).ToSql()
	if err != nil {
		return nil, fmt.Errorf("load: read %s: %w", changesTable, err)
	}
	rows, err := l.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("load: read %s: %w", changesTable, err)
	}
	defer rows.Close()
	seen := map[changeKey]seenChange{}
	for rows.Next() {
		var (
			k  changeKey
			ih []byte
			v  seenChange
		)
		if err := rows.Scan(&k.tbl, &k.id, &ih, &v.version, &v.changed); err != nil {
			return nil, fmt.Errorf("load: read %s: %w", changesTable, err)
		}
		k.hash = string(ih)
		seen[k] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load: read %s: %w", changesTable, err)
	}
	return seen, nil
}

// prune deletes changelog rows older than changeRetention (never the
// sentinel, tbl = 0). Failures are ignored: it is housekeeping, and the next
// full Load tries again.
func (l *Loader) prune(ctx context.Context, now time.Time) {
	q, args, err := sq.Delete(changesTable).Where(sq.Gt{"tbl": 0}).
		Where(sq.Lt{"changed": now.Add(-changeRetention)}).Limit(pruneBatch).ToSql()
	if err != nil {
		return
	}
	for i := 0; i < 100; i++ {
		res, err := l.db.ExecContext(ctx, q, args...)
		if err != nil {
			return
		}
		if n, _ := res.RowsAffected(); n < pruneBatch {
			return
		}
	}
}

// loadChanges reads the changelog entries changed after window before the
// previous watermark, joined to the current catalog rows, and returns those
// not delivered before.
func (l *Loader) loadChanges(ctx context.Context, now time.Time, window time.Duration) (*Snapshot, error) {
	since := l.watermark.Add(-window)
	seen := make(map[changeKey]seenChange, len(l.seen))
	snap := &Snapshot{}
	if err := l.changedUsers(ctx, since, seen, snap); err != nil {
		return nil, err
	}
	flagged, err := l.changedTorrents(ctx, since, seen, snap)
	if err != nil {
		return nil, err
	}
	// Keep what the next Load's window still covers, including what a
	// Poll's shorter window did not read again.
	cut := now.Add(-l.window)
	for k, v := range l.seen {
		if _, read := seen[k]; !read {
			seen[k] = v
		}
	}
	for k, v := range seen {
		if !v.changed.After(cut) {
			delete(seen, k)
		}
	}
	l.seen, l.watermark, l.flagged = seen, now, flagged
	return snap, nil
}

// fresh records the entry in seen and reports whether it is news.
func (l *Loader) fresh(k changeKey, v seenChange, seen map[changeKey]seenChange) bool {
	seen[k] = v
	old, ok := l.seen[k]
	return !ok || old.version != v.version
}

func (l *Loader) changedUsers(ctx context.Context, since time.Time, seen map[changeKey]seenChange, snap *Snapshot) error {
	s := l.s
	col := func(has bool, name, def string) string {
		if has {
			return "COALESCE(u.`" + name + "`, " + def + ")"
		}
		return def
	}
	q, args, err := sq.Select("c.id", "c.version", "c.changed", "u.`"+s.UsersUID+"`",
		col(s.HasTorrentPass, "torrent_pass", "''"),
		col(s.HasTorrentPassVersion, "torrent_pass_version", "0"),
		col(s.HasCanLeech, "can_leech", "1"),
		col(s.HasWaitTime, "wait_time", "0"),
		col(s.HasPeersLimit, "peers_limit", "0"),
		col(s.HasTorrentsLimit, "torrents_limit", "0")).
		From(changesTable + " c").
		LeftJoin("`" + s.Users + "` u ON u.`" + s.UsersUID + "` = c.id").
		Where(sq.Eq{"c.tbl": changeUsers}).Where(sq.Gt{"c.changed": since}).ToSql()
	if err != nil {
		return fmt.Errorf("load changed users from %s: %w", s.Users, err)
	}
	rows, err := l.db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("load changed users from %s: %w", s.Users, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id                                   int64
			v                                    seenChange
			uid                                  gosql.NullInt64
			pass                                 string
			ver, canLeech, wait, peers, torrents int64
		)
		if err := rows.Scan(&id, &v.version, &v.changed, &uid, &pass, &ver, &canLeech, &wait, &peers, &torrents); err != nil {
			return fmt.Errorf("load changed users from %s: %w", s.Users, err)
		}
		if !l.fresh(changeKey{tbl: changeUsers, id: id}, v, seen) || id <= 0 || id > 0xFFFFFFFF {
			continue
		}
		if !uid.Valid {
			snap.RemovedUsers = append(snap.RemovedUsers, uint32(id))
			continue
		}
		snap.Users = append(snap.Users, tracker.User{
			UID: uint32(id), TorrentPass: pass, TorrentPassVersion: int(ver), CanLeech: canLeech != 0,
			WaitTime: int(wait), PeersLimit: int(peers), TorrentsLimit: int(torrents),
		})
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load changed users from %s: %w", s.Users, err)
	}
	return nil
}

// torrentChanges collects one incremental Load's torrent news.
type torrentChanges struct {
	live    map[uint32]tracker.Torrent
	removed map[tracker.InfoHash]bool
	flagged map[uint32]tracker.InfoHash // every row with flags & 1 now
}

// changedTorrents reads inserted and deleted xbt_files rows from the
// changelog, then the flags & 1 rows, and fills snap. It returns the
// flagged rows for the next Load to compare with.
func (l *Loader) changedTorrents(ctx context.Context, since time.Time, seen map[changeKey]seenChange, snap *Snapshot) (map[uint32]tracker.InfoHash, error) {
	tc := &torrentChanges{live: map[uint32]tracker.Torrent{}, removed: map[tracker.InfoHash]bool{}}
	if err := l.changelogTorrents(ctx, since, seen, tc); err != nil {
		return nil, err
	}
	if err := l.flaggedTorrents(ctx, tc); err != nil {
		return nil, err
	}
	// A hash that moved to another live row is not removed.
	for _, t := range tc.live {
		delete(tc.removed, t.InfoHash)
		snap.Torrents = append(snap.Torrents, t)
	}
	for ih := range tc.removed {
		snap.RemovedTorrents = append(snap.RemovedTorrents, ih)
	}
	for fid := range tc.flagged {
		snap.DeletedFids = append(snap.DeletedFids, fid)
	}
	slices.SortFunc(snap.Torrents, func(a, b tracker.Torrent) int { return cmp.Compare(a.Fid, b.Fid) })
	slices.SortFunc(snap.RemovedTorrents, func(a, b tracker.InfoHash) int { return bytes.Compare(a[:], b[:]) })
	slices.Sort(snap.DeletedFids)
	return tc.flagged, nil
}

// changelogTorrents: xbt_files rows inserted or deleted since the window.
func (l *Loader) changelogTorrents(ctx context.Context, since time.Time, seen map[changeKey]seenChange, tc *torrentChanges) error {
	s := l.s
	q, args, err := sq.Select("c.id", "c.info_hash", "c.version", "c.changed", "f.`"+s.FilesFid+"`", "f.`info_hash`",
		"COALESCE(f.`ctime`, 0)", "COALESCE(f.`"+s.FilesCompleted+"`, 0)", "COALESCE(f.`flags`, 0)").
		From(changesTable + " c").
		LeftJoin("`" + s.Files + "` f ON f.`" + s.FilesFid + "` = c.id").
		Where(sq.Eq{"c.tbl": changeFiles}).Where(sq.Gt{"c.changed": since}).ToSql()
	if err != nil {
		return fmt.Errorf("load changed torrents from %s: %w", s.Files, err)
	}
	rows, err := l.db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("load changed torrents from %s: %w", s.Files, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id                      int64
			oldHash, curHash        []byte
			v                       seenChange
			fid                     gosql.NullInt64
			ctime, completed, flags int64
		)
		if err := rows.Scan(&id, &oldHash, &v.version, &v.changed, &fid, &curHash, &ctime, &completed, &flags); err != nil {
			return fmt.Errorf("load changed torrents from %s: %w", s.Files, err)
		}
		if !l.fresh(changeKey{tbl: changeFiles, id: id, hash: string(oldHash)}, v, seen) {
			continue
		}
		// The hash this entry recorded is gone when the row is gone or
		// now has another hash.
		if len(oldHash) == len(tracker.InfoHash{}) && (!fid.Valid || string(curHash) != string(oldHash)) {
			tc.removed[tracker.InfoHash(oldHash)] = true
		}
		if !fid.Valid || len(curHash) != len(tracker.InfoHash{}) || id <= 0 || id > 0xFFFFFFFF || flags&1 != 0 {
			continue // flagged rows are flaggedTorrents' business
		}
		t := tracker.Torrent{Fid: uint32(id), InfoHash: tracker.InfoHash(curHash), Ctime: ctime}
		if completed > 0 {
			t.Completed = uint64(completed)
		}
		tc.live[t.Fid] = t
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load changed torrents from %s: %w", s.Files, err)
	}
	return nil
}

// flaggedTorrents reads the rows with flags & 1 through the
// xbt_tracker_flags index (a range over the few non-zero flags, not a table
// scan). Newly flagged rows are removed; rows flagged at the previous Load
// and no longer flagged (the catalog changed its mind before the tracker
// deleted them) come back as live torrents.
func (l *Loader) flaggedTorrents(ctx context.Context, tc *torrentChanges) error {
	s := l.s
	q, args, err := sq.Select("`"+s.FilesFid+"`", "`info_hash`").From("`" + s.Files + "`").
		Where("`flags` <> 0 AND `flags` & 1 = 1").ToSql()
	if err != nil {
		return fmt.Errorf("load flagged torrents from %s: %w", s.Files, err)
	}
	rows, err := l.db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("load flagged torrents from %s: %w", s.Files, err)
	}
	defer rows.Close()
	tc.flagged = map[uint32]tracker.InfoHash{}
	for rows.Next() {
		var (
			fid int64
			ih  []byte
		)
		if err := rows.Scan(&fid, &ih); err != nil {
			return fmt.Errorf("load flagged torrents from %s: %w", s.Files, err)
		}
		if fid <= 0 || fid > 0xFFFFFFFF || len(ih) != len(tracker.InfoHash{}) {
			continue
		}
		h := tracker.InfoHash(ih)
		tc.flagged[uint32(fid)] = h
		if old, ok := l.flagged[uint32(fid)]; !ok || old != h {
			tc.removed[h] = true
		}
		delete(tc.live, uint32(fid))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load flagged torrents from %s: %w", s.Files, err)
	}
	var unflagged []uint32
	for fid := range l.flagged {
		if _, still := tc.flagged[fid]; !still {
			if _, known := tc.live[fid]; !known {
				unflagged = append(unflagged, fid)
			}
		}
	}
	if len(unflagged) == 0 {
		return nil
	}
	slices.Sort(unflagged)
	q, args, err = sq.Select("`"+s.FilesFid+"`", "`info_hash`", "`ctime`", "`"+s.FilesCompleted+"`").From("`" + s.Files + "`").
		Where(sq.Eq{"`" + s.FilesFid + "`": unflagged}).Where("`flags` & 1 = 0").ToSql()
	if err != nil {
		return fmt.Errorf("load unflagged torrents from %s: %w", s.Files, err)
	}
	rows2, err := l.db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("load unflagged torrents from %s: %w", s.Files, err)
	}
	defer rows2.Close()
	for rows2.Next() {
		t, err := scanTorrent(rows2)
		if err != nil {
			return fmt.Errorf("load unflagged torrents from %s: %w", s.Files, err)
		}
		if t.Fid != 0 {
			tc.live[t.Fid] = t
		}
	}
	if err := rows2.Err(); err != nil {
		return fmt.Errorf("load unflagged torrents from %s: %w", s.Files, err)
	}
	return nil
}

// LookupUser reads one user by uid, for an on-demand lookup of a passkey
// whose uid is not loaded; gosql.ErrNoRows when there is none.
func (l *Loader) LookupUser(ctx context.Context, uid uint32) (tracker.User, error) {
	return LookupUser(ctx, l.db, l.s, uid)
}

// LookupTorrent reads one torrent by info_hash; gosql.ErrNoRows when there
// is none or it is flagged deleted (flags & 1).
func (l *Loader) LookupTorrent(ctx context.Context, ih tracker.InfoHash) (tracker.Torrent, error) {
	s := l.s
	q, args, err := sq.Select("`"+s.FilesFid+"`", "`info_hash`", "`ctime`", "`"+s.FilesCompleted+"`").
		From("`" + s.Files + "`").Where(sq.Eq{"`info_hash`": ih[:]}).Where("`flags` & 1 = 0").Limit(1).ToSql()
	if err != nil {
		return tracker.Torrent{}, fmt.Errorf("look up torrent in %s: %w", s.Files, err)
	}
	t, err := scanTorrent(l.db.QueryRowContext(ctx, q, args...))
	switch {
	case errors.Is(err, gosql.ErrNoRows):
		return t, gosql.ErrNoRows
	case err != nil:
		return t, fmt.Errorf("look up torrent in %s: %w", s.Files, err)
	case t.Fid == 0:
		return t, gosql.ErrNoRows // a row the tracker cannot serve (bad fid)
	}
	return t, nil
}

// DenyList reads xbt_deny_from_hosts (inclusive IPv4 ranges as integers;
// XBT's own schema declares them signed int, so negative values are read as
// their unsigned 32-bit pattern) and, when present, xbt_deny_from_hosts6
// (16-byte bounds; 4-byte bounds are taken as IPv4, mapped). Rows that are
// not addresses are skipped.
func (l *Loader) DenyList(ctx context.Context) (v4 [][2]uint32, v6 [][2][16]byte, err error) {
	s := l.s
	if s.HasDenyFromHosts {
		q, args, err := sq.Select("`begin`", "`end`").From("`" + s.DenyFromHosts + "`").ToSql()
		if err != nil {
			return nil, nil, fmt.Errorf("load %s: %w", s.DenyFromHosts, err)
		}
		rows, err := l.db.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, nil, fmt.Errorf("load %s: %w", s.DenyFromHosts, err)
		}
		defer rows.Close()
		for rows.Next() {
			var b, e int64
			if err := rows.Scan(&b, &e); err != nil {
				return nil, nil, fmt.Errorf("load %s: %w", s.DenyFromHosts, err)
			}
			lo, ok1 := asIPv4Int(b)
			hi, ok2 := asIPv4Int(e)
			if ok1 && ok2 {
				v4 = append(v4, [2]uint32{lo, hi})
			}
		}
		if err := rows.Err(); err != nil {
			return nil, nil, fmt.Errorf("load %s: %w", s.DenyFromHosts, err)
		}
	}
	if s.HasDenyFromHosts6 {
		q, args, err := sq.Select("`begin`", "`end`").From("`" + s.DenyFromHosts6 + "`").ToSql()
		if err != nil {
			return nil, nil, fmt.Errorf("load %s: %w", s.DenyFromHosts6, err)
		}
		rows, err := l.db.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, nil, fmt.Errorf("load %s: %w", s.DenyFromHosts6, err)
		}
		defer rows.Close()
		for rows.Next() {
			var b, e []byte
			if err := rows.Scan(&b, &e); err != nil {
				return nil, nil, fmt.Errorf("load %s: %w", s.DenyFromHosts6, err)
			}
			lo, ok1 := asIPv6Bytes(b)
			hi, ok2 := asIPv6Bytes(e)
			if ok1 && ok2 {
				v6 = append(v6, [2][16]byte{lo, hi})
			}
		}
		if err := rows.Err(); err != nil {
			return nil, nil, fmt.Errorf("load %s: %w", s.DenyFromHosts6, err)
		}
	}
	return v4, v6, nil
}

// asIPv4Int accepts an address stored unsigned (0..2^32-1) or signed
// (-2^31..2^31-1, XBT's int columns).
func asIPv4Int(v int64) (uint32, bool) {
	switch {
	case v >= 0 && v <= 0xFFFFFFFF:
		return uint32(v), true
	case v < 0 && v >= -1<<31:
		return uint32(int32(v)), true
	}
	return 0, false
}

func asIPv6Bytes(b []byte) ([16]byte, bool) {
	switch len(b) {
	case 16:
		return [16]byte(b), true
	case 4:
		return netip.AddrFrom4([4]byte(b)).As16(), true
	}
	return [16]byte{}, false
}
