package sql

import (
	"context"
	gosql "database/sql"
	"errors"
	"fmt"

	sq "github.com/Masterminds/squirrel"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

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
