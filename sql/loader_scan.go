package sql

import (
	"context"
	gosql "database/sql"
	"fmt"

	sq "github.com/Masterminds/squirrel"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// Full-table scans of xbt_users and xbt_files, the start-up load and the
// full reloads. Measured on 1M rows each (docs/BENCHMARKS.md, "Database"),
// what makes them fast:
//
//   - The binary protocol. A statement without parameters normally travels
//     as text, and the server then formats every integer as decimal text that
//     the client parses back; a prepared statement's result comes as binary
//     integers. That alone is about 30% of the scan.
//   - No allocation per row: values are scanned into variables reused across
//     rows (RawBytes for the strings), and only a non-empty torrent_pass
//     becomes a string.
//   - The result slice is sized once from the caller's hint (the previous
//     load's count) or the server's row estimate.
//
// Splitting one table into primary-key ranges read on two connections was
// measured too and did not help (the server's row production is the
// bottleneck); reading the two tables at once does (Loader.Load).

// maxPrealloc caps a size hint taken from the server's estimate.
const maxPrealloc = 1 << 25

// tableRowsEstimate is InnoDB's row estimate for table (no scan); 0 if
// unknown.
func tableRowsEstimate(ctx context.Context, db *gosql.DB, table string) int {
	var n gosql.NullInt64
	err := db.QueryRowContext(ctx, "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?", table).Scan(&n)
	if err != nil || !n.Valid || n.Int64 <= 0 {
		return 0
	}
	return int(min(n.Int64+n.Int64/8+16, maxPrealloc))
}

// queryBinary runs q as a prepared statement so that the rows come in the
// binary protocol. The statement is closed with the rows (database/sql
// closes a Stmt's resources once its last Rows is closed).
func queryBinary(ctx context.Context, db *gosql.DB, q string, args ...any) (*gosql.Rows, func(), error) {
	stmt, err := db.PrepareContext(ctx, q)
	if err != nil {
		return nil, nil, err
	}
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		stmt.Close()
		return nil, nil, err
	}
	return rows, func() { rows.Close(); stmt.Close() }, nil
}

// scanAllUsers reads every user row. Rows whose uid is outside 1..2^32-1
// cannot be addressed by a passkey and are skipped (one bad row must not
// stop every reload).
func scanAllUsers(ctx context.Context, db *gosql.DB, s Schema, hint int) ([]tracker.User, error) {
	q, args, err := sq.Select(userColumns(s)...).From("`" + s.Users + "`").ToSql()
	if err != nil {
		return nil, fmt.Errorf("load users from %s: %w", s.Users, err)
	}
	if hint <= 0 {
		hint = tableRowsEstimate(ctx, db, s.Users)
	}
	rows, done, err := queryBinary(ctx, db, q, args...)
	if err != nil {
		return nil, fmt.Errorf("load users from %s: %w", s.Users, err)
	}
	defer done()
	users := make([]tracker.User, 0, hint)
	var (
		uid, ver, canLeech, wait, peers, torrents int64
		pass                                      gosql.RawBytes
	)
	for rows.Next() {
		if err := rows.Scan(&uid, &pass, &ver, &canLeech, &wait, &peers, &torrents); err != nil {
			return nil, fmt.Errorf("load users from %s: %w", s.Users, err)
		}
		if uid <= 0 || uid > 0xFFFFFFFF {
			continue
		}
		u := tracker.User{
			UID:                uint32(uid),
			TorrentPassVersion: int(ver),
			CanLeech:           canLeech != 0,
			WaitTime:           int(wait),
			PeersLimit:         int(peers),
			TorrentsLimit:      int(torrents),
		}
		if len(pass) > 0 {
			u.TorrentPass = string(pass)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load users from %s: %w", s.Users, err)
	}
	return users, nil
}

// flaggedFile is a row with flags & 1: the catalog asked for its deletion.
type flaggedFile struct {
	fid uint32
	ih  tracker.InfoHash
}

// scanAllTorrents reads every torrent row: live ones (flags & 1 clear) into
// live, flagged ones into flagged when withFlagged (else they are filtered
// by the server). Rows with an info_hash that is not 20 bytes or a fid
// outside 1..2^32-1 are skipped: nothing can announce them.
func scanAllTorrents(ctx context.Context, db *gosql.DB, s Schema, hint int, withFlagged bool) (live []tracker.Torrent, flagged []flaggedFile, err error) {
	sb := sq.Select("`"+s.FilesFid+"`", "`info_hash`", "`ctime`", "`"+s.FilesCompleted+"`", "`flags`").From("`" + s.Files + "`")
	if !withFlagged {
		sb = sb.Where("`flags` & 1 = 0")
	}
	q, args, err := sb.ToSql()
	if err != nil {
		return nil, nil, fmt.Errorf("load torrents from %s: %w", s.Files, err)
	}
	if hint <= 0 {
		hint = tableRowsEstimate(ctx, db, s.Files)
	}
	rows, done, err := queryBinary(ctx, db, q, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("load torrents from %s: %w", s.Files, err)
	}
	defer done()
	live = make([]tracker.Torrent, 0, hint)
	var (
		fid, ctime, completed, flags int64
		ih                           gosql.RawBytes
	)
	for rows.Next() {
		if err := rows.Scan(&fid, &ih, &ctime, &completed, &flags); err != nil {
			return nil, nil, fmt.Errorf("load torrents from %s: %w", s.Files, err)
		}
		if len(ih) != len(tracker.InfoHash{}) || fid <= 0 || fid > 0xFFFFFFFF {
			continue
		}
		if flags&1 != 0 {
			f := flaggedFile{fid: uint32(fid)}
			copy(f.ih[:], ih)
			flagged = append(flagged, f)
			continue
		}
		t := tracker.Torrent{Fid: uint32(fid), Ctime: ctime}
		copy(t.InfoHash[:], ih)
		if completed > 0 {
			t.Completed = uint64(completed)
		}
		live = append(live, t)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("load torrents from %s: %w", s.Files, err)
	}
	return live, flagged, nil
}
