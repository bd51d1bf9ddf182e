// Incremental Loads and Polls: the changelog read since the previous
// watermark, joined to the catalog's current rows (see loader.go, "Reloads").

package sql

import (
	"bytes"
	"cmp"
	"context"
	gosql "database/sql"
	"fmt"
	"maps"
	"slices"
	"time"

	sq "github.com/Masterminds/squirrel"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

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
	seen := map[changeKey]seenChange{} // what this call reads
	snap := &Snapshot{}
	if err := l.changedUsers(ctx, since, seen, snap); err != nil {
		return nil, err
	}
	flagged, err := l.changedTorrents(ctx, since, seen, snap)
	if err != nil {
		return nil, err
	}
	// Only now that nothing can fail: what was read joins what was
	// delivered before. What the next Load's window no longer covers is
	// dropped at a Load, or a quarter window after the last drop: a poll
	// every 2 s must not walk a bulk import's 100k entries each time (it
	// did: 8% of a core for the 5 minutes after one).
	if l.seen == nil {
		l.seen = make(map[changeKey]seenChange, len(seen))
	}
	maps.Copy(l.seen, seen)
	if window == l.window || now.Sub(l.pruned) >= l.window/4 {
		cut := now.Add(-l.window)
		maps.DeleteFunc(l.seen, func(_ changeKey, v seenChange) bool { return !v.changed.After(cut) })
		l.pruned = now
	}
	l.watermark, l.flagged = now, flagged
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
