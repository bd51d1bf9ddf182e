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

// LoadUsers reads every user row (fast path: see loader_scan.go). Rows
// whose uid is outside 1..4294967295 are skipped.
func LoadUsers(ctx context.Context, db *gosql.DB, s Schema) ([]tracker.User, error) {
	return scanAllUsers(ctx, db, s, 0)
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
	if err != nil && !errors.Is(err, gosql.ErrNoRows) {
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
	if id < 0 || id > math.MaxUint32 {
		return 0, fmt.Errorf("insert user into %s: the new uid %d does not fit in 32 bits", n.Users, id)
	}
	return uint32(id), nil
}

// UserStats is a user's row as a catalog shows it: its settings and the
// traffic totals the tracker has written.
type UserStats struct {
	tracker.User
	Uploaded, Downloaded uint64
}

// LookupUserStats reads one user's settings and totals; gosql.ErrNoRows when
// there is none.
func LookupUserStats(ctx context.Context, db *gosql.DB, s Schema, uid uint32) (UserStats, error) {
	cols := append(userColumns(s), "uploaded", "downloaded")
	q, args, err := sq.Select(cols...).From("`" + s.Users + "`").Where(sq.Eq{"`" + s.UsersUID + "`": uid}).ToSql()
	if err != nil {
		return UserStats{}, err
	}
	var (
		st       UserStats
		id       int64
		canLeech int64
	)
	err = db.QueryRowContext(ctx, q, args...).Scan(&id, &st.TorrentPass, &st.TorrentPassVersion, &canLeech,
		&st.WaitTime, &st.PeersLimit, &st.TorrentsLimit, &st.Uploaded, &st.Downloaded)
	if err != nil {
		if errors.Is(err, gosql.ErrNoRows) {
			return st, err
		}
		return st, fmt.Errorf("look up user in %s: %w", s.Users, err)
	}
	if id < 0 || id > math.MaxUint32 {
		return st, fmt.Errorf("look up user in %s: uid %d does not fit in 32 bits", s.Users, id)
	}
	st.UID = uint32(id)
	st.CanLeech = canLeech != 0
	return st, nil
}

// RevokeUser bumps a user's torrent_pass_version the way a catalog revokes
// every passkey it gave that user
// (UPDATE xbt_users SET torrent_pass_version = torrent_pass_version + 1 WHERE uid = ?)
// and returns the new version; gosql.ErrNoRows when there is no such user.
// The tracker refuses the old passkeys once it has reloaded the user.
func RevokeUser(ctx context.Context, db *gosql.DB, s Schema, uid uint32) (int, error) {
	if !s.HasTorrentPassVersion {
		return 0, fmt.Errorf("%s has no torrent_pass_version column: passkeys cannot be revoked (run \"xbt-tracker migrate up\")", s.Users)
	}
	table, err := quoteIdent(s.Users)
	if err != nil {
		return 0, err
	}
	uidCol, err := quoteIdent(s.UsersUID)
	if err != nil {
		return 0, err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("revoke passkeys of uid %d: %w", uid, err)
	}
	defer func() { _ = tx.Rollback() }()
	q, args, err := sq.Update(table).Set("torrent_pass_version", sq.Expr("torrent_pass_version + 1")).Where(sq.Eq{uidCol: uid}).ToSql()
	if err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return 0, fmt.Errorf("revoke passkeys of uid %d in %s: %w", uid, s.Users, err)
	}
	q, args, err = sq.Select("torrent_pass_version").From(table).Where(sq.Eq{uidCol: uid}).ToSql()
	if err != nil {
		return 0, err
	}
	var v int
	if err := tx.QueryRowContext(ctx, q, args...).Scan(&v); err != nil {
		if err == gosql.ErrNoRows {
			return 0, err
		}
		return 0, fmt.Errorf("revoke passkeys of uid %d in %s: %w", uid, s.Users, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("revoke passkeys of uid %d in %s: %w", uid, s.Users, err)
	}
	return v, nil
}
