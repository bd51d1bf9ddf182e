package sql

import (
	"context"
	gosql "database/sql"
	"fmt"

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
	return uint32(id), nil
}
