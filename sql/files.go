package sql

import (
	"context"
	gosql "database/sql"
	"errors"
	"fmt"
	"math"

	sq "github.com/Masterminds/squirrel"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// LoadTorrents reads every torrent the tracker should serve: rows whose
// flags have bit 0 (XBT's "deleted") clear (fast path: see loader_scan.go).
func LoadTorrents(ctx context.Context, db *gosql.DB, s Schema) ([]tracker.Torrent, error) {
	live, _, err := scanAllTorrents(ctx, db, s, 0, false)
	return live, err
}

func scanTorrent(sc interface{ Scan(...any) error }) (tracker.Torrent, error) {
	var (
		t         tracker.Torrent
		fid       int64
		ih        []byte
		completed int64
	)
	if err := sc.Scan(&fid, &ih, &t.Ctime, &completed); err != nil {
		return t, err
	}
	if len(ih) != len(t.InfoHash) || fid <= 0 || fid > 0xFFFFFFFF {
		return tracker.Torrent{}, nil
	}
	copy(t.InfoHash[:], ih)
	t.Fid = uint32(fid)
	if completed > 0 {
		t.Completed = uint64(completed)
	}
	return t, nil
}

// InsertFile registers a torrent the way a catalog does and returns its fid;
// when the info_hash is already registered it returns the existing fid.
func InsertFile(ctx context.Context, db *gosql.DB, n Names, ih tracker.InfoHash) (uint32, error) {
	table, err := quoteIdent(n.Files)
	if err != nil {
		return 0, err
	}
	fidCol, err := quoteIdent(n.FilesFid)
	if err != nil {
		return 0, err
	}
	q, args, err := sq.Insert(table).Columns("info_hash", "mtime", "ctime").
		Values(ih[:], sq.Expr("UNIX_TIMESTAMP()"), sq.Expr("UNIX_TIMESTAMP()")).
		Suffix("ON DUPLICATE KEY UPDATE " + fidCol + " = LAST_INSERT_ID(" + fidCol + ")").
		ToSql()
	if err != nil {
		return 0, err
	}
	res, err := db.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("insert torrent into %s: %w", n.Files, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("insert torrent into %s: %w", n.Files, err)
	}
	if id < 0 || id > math.MaxUint32 {
		return 0, fmt.Errorf("insert torrent into %s: the new fid %d does not fit in 32 bits", n.Files, id)
	}
	return uint32(id), nil
}

// ErrNoSuchTorrent is returned when no files row has that info_hash.
var ErrNoSuchTorrent = errors.New("no torrent")

// FlagFileDeleted runs the catalog's delete step, exactly the catalog's
// statement: UPDATE xbt_files SET flags = 1 WHERE info_hash = UNHEX(?). It
// returns the torrent's fid and whether it was flagged already;
// ErrNoSuchTorrent when there is no such row. The tracker then forgets the
// torrent and deletes the row itself (Writer.DeleteFiles).
func FlagFileDeleted(ctx context.Context, db *gosql.DB, n Names, ih tracker.InfoHash) (fid uint32, already bool, err error) {
	table, err := quoteIdent(n.Files)
	if err != nil {
		return 0, false, err
	}
	fidCol, err := quoteIdent(n.FilesFid)
	if err != nil {
		return 0, false, err
	}
	q, args, err := sq.Select(fidCol, "`flags`").From(table).Where("`info_hash` = ?", ih[:]).ToSql()
	if err != nil {
		return 0, false, err
	}
	var flags int
	switch err := db.QueryRowContext(ctx, q, args...).Scan(&fid, &flags); {
	case errors.Is(err, gosql.ErrNoRows):
		return 0, false, fmt.Errorf("%w with info_hash %x in %s", ErrNoSuchTorrent, ih, n.Files)
	case err != nil:
		return 0, false, fmt.Errorf("read %s: %w", n.Files, err)
	}
	q, args, err = sq.Update(table).Set("`flags`", sq.Expr("1")).Where("`info_hash` = UNHEX(?)", fmt.Sprintf("%x", ih)).ToSql()
	if err != nil {
		return 0, false, err
	}
	if _, err := db.ExecContext(ctx, q, args...); err != nil {
		return 0, false, fmt.Errorf("delete torrent in %s: %w", n.Files, err)
	}
	return fid, flags&1 == 1, nil
}
