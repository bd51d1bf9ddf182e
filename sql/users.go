package sql

import (
	"context"
	gosql "database/sql"
	"fmt"

	sq "github.com/Masterminds/squirrel"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// userColumns lists the SELECT expressions for a tracker.User in a fixed
// order; optional columns the schema lacks are replaced by XBT's defaults so
// one scan serves every schema.
func userColumns(s Schema) []string {
	opt := func(has bool, col, def string) string {
		if has {
			return "`" + col + "`"
		}
		return def
	}
	return []string{
		"`" + s.UsersUID + "`",
		opt(s.HasTorrentPass, "torrent_pass", "''"),
		opt(s.HasTorrentPassVersion, "torrent_pass_version", "0"),
		opt(s.HasCanLeech, "can_leech", "1"),
		opt(s.HasWaitTime, "wait_time", "0"),
		opt(s.HasPeersLimit, "peers_limit", "0"),
		opt(s.HasTorrentsLimit, "torrents_limit", "0"),
	}
}

func scanUser(sc interface{ Scan(...any) error }) (tracker.User, error) {
	var (
		u        tracker.User
		uid      int64
		canLeech int64
	)
	err := sc.Scan(&uid, &u.TorrentPass, &u.TorrentPassVersion, &canLeech, &u.WaitTime, &u.PeersLimit, &u.TorrentsLimit)
	if err != nil {
		return u, err
	}
	if uid <= 0 || uid > 0xFFFFFFFF {
		return u, fmt.Errorf("uid %d is out of range 1..4294967295", uid)
	}
	u.UID = uint32(uid)
	u.CanLeech = canLeech != 0
	return u, nil
}

// LoadUsers reads every user row.
func LoadUsers(ctx context.Context, db *gosql.DB, s Schema) ([]tracker.User, error) {
	q, args, err := sq.Select(userColumns(s)...).From("`" + s.Users + "`").ToSql()
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("load users from %s: %w", s.Users, err)
	}
	defer rows.Close()
	var users []tracker.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("load users from %s: %w", s.Users, err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load users from %s: %w", s.Users, err)
	}
	return users, nil
}

// LookupUser reads one user by uid; gosql.ErrNoRows when there is none.
func LookupUser(ctx context.Context, db *gosql.DB, s Schema, uid uint32) (tracker.User, error) {
	return lookupUser(ctx, db, s, sq.Eq{"`" + s.UsersUID + "`": uid})
}

// LookupUserByTorrentPass reads the user whose legacy torrent_pass is pk;
// gosql.ErrNoRows when there is none (or the column does not exist).
func LookupUserByTorrentPass(ctx context.Context, db *gosql.DB, s Schema, pk string) (tracker.User, error) {
	if !s.HasTorrentPass || pk == "" {
		return tracker.User{}, gosql.ErrNoRows
	}
	return lookupUser(ctx, db, s, sq.Eq{"torrent_pass": pk})
}

func lookupUser(ctx context.Context, db *gosql.DB, s Schema, where sq.Sqlizer) (tracker.User, error) {
	q, args, err := sq.Select(userColumns(s)...).From("`" + s.Users + "`").Where(where).Limit(1).ToSql()
	if err != nil {
		return tracker.User{}, err
	}
	u, err := scanUser(db.QueryRowContext(ctx, q, args...))
	if err != nil && err != gosql.ErrNoRows {
		return u, fmt.Errorf("look up user in %s: %w", s.Users, err)
	}
	return u, err
}

// InsertUser inserts a user the way a catalog does (only torrent_pass named,
// every other column at its default) and returns the new uid.
func InsertUser(ctx context.Context, db *gosql.DB, n Names, torrentPass string) (uint32, error) {
	table, err := quoteIdent(n.Users)
	if err != nil {
		return 0, err
	}
	q, args, err := sq.Insert(table).Columns("torrent_pass").Values(torrentPass).ToSql()
	if err != nil {
		return 0, err
	}
	res, err := db.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("insert user into %s: %w", n.Users, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("insert user into %s: %w", n.Users, err)
	}
	return uint32(id), nil
}
