package loadgen

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	gosql "database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/xbt-tracker/xbt-tracker/migrations"
	"github.com/xbt-tracker/xbt-tracker/passkey"
	xsql "github.com/xbt-tracker/xbt-tracker/sql"
)

// SyntheticSecret is the secret of a World made without a database.
const SyntheticSecret = "xbt-bench-secret"

// BenchHash is the info_hash of benchmark torrent n (1-based), the same in
// the database Setup fills and in a synthetic World.
func BenchHash(n int) [20]byte { return sha1.Sum([]byte("xbt-bench " + strconv.Itoa(n))) }

// SyntheticWorld is users 1..users (torrent_pass_version 0) and torrents
// BenchHash(1..torrents): enough to aim the same load at a server that
// checks nothing (nginx, say).
func SyntheticWorld(users, torrents int, secret string) *World {
	if secret == "" {
		secret = SyntheticSecret
	}
	w := &World{Secret: secret, Users: make([]WorldUser, users), Hashes: make([][20]byte, torrents)}
	for i := range w.Users {
		w.Users[i] = WorldUser{UID: uint32(i + 1)}
	}
	for i := range w.Hashes {
		w.Hashes[i] = BenchHash(i + 1)
	}
	return w
}

// digits is a 10-row derived table; n of them cross-joined count to 10^n on
// MariaDB and MySQL alike (their recursive CTE limits differ).
const digits = "(SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 " +
	"UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)"

// seqFrom is "FROM ... WHERE n <= count" producing n = 1..count.
func seqFrom(count int) string {
	var parts, from []string
	for i, mul := 0, 1; mul < count || i == 0; i, mul = i+1, mul*10 {
		parts = append(parts, fmt.Sprintf("%d*t%d.d", mul, i))
		from = append(from, fmt.Sprintf("%s t%d", digits, i))
	}
	return fmt.Sprintf(" FROM (SELECT %s + 1 AS n FROM %s) s WHERE n <= %d", strings.Join(parts, " + "), strings.Join(from, ", "), count)
}

// SetupStats says what Setup did.
type SetupStats struct {
	UsersAdded, FilesAdded int64
	SecretCreated          bool
	Took                   time.Duration
}

// Setup prepares a benchmark database: the migrations, users 1..users
// (can_leech 1, no wait time, no limits) and torrents 1..torrents with
// info_hash BenchHash(fid), added with INSERT IGNORE ... SELECT (rows that
// exist are kept, so it can be run again), and a torrent_pass_private_key
// if there is none.
//
// Setup uses the classic table names on purpose, not the table_* settings:
// the migrations it runs create the classic XBT schema under those names
// (they take no table names), so only there are the tables it fills sure to
// exist with the columns it writes; and renamed tables belong to an adopted
// site's catalog, which a benchmark must not fill with synthetic users and
// torrents. Reading a world from such a catalog is LoadWorldNamed's job.
func Setup(ctx context.Context, db *gosql.DB, users, torrents int) (SetupStats, error) {
	t0 := time.Now()
	var st SetupStats
	if _, err := migrations.Up(ctx, db); err != nil {
		return st, err
	}
	res, err := db.ExecContext(ctx, "INSERT IGNORE INTO xbt_users (uid, torrent_pass, torrent_pass_version, can_leech, wait_time, peers_limit, torrents_limit) "+ //nolint:gosec // G202: constant SQL plus seqFrom(users), built only from integers (no input strings)
		"SELECT n, '', 0, 1, 0, 0, 0"+seqFrom(users))
	if err != nil {
		return st, fmt.Errorf("insert users: %w", err)
	}
	st.UsersAdded, _ = res.RowsAffected()
	res, err = db.ExecContext(ctx, "INSERT IGNORE INTO xbt_files (fid, info_hash, flags, mtime, ctime) "+ //nolint:gosec // G202: constant SQL plus seqFrom(torrents), built only from integers (no input strings)
		"SELECT n, UNHEX(SHA1(CONCAT('xbt-bench ', n))), 0, UNIX_TIMESTAMP(), UNIX_TIMESTAMP() - 86400"+seqFrom(torrents))
	if err != nil {
		return st, fmt.Errorf("insert files: %w", err)
	}
	st.FilesAdded, _ = res.RowsAffected()
	_, st.SecretCreated, err = xsql.EnsureSecret(ctx, db, xsql.DefaultNames().Config, func() (string, error) {
		return passkey.GenerateSecret(rand.Reader)
	})
	st.Took = time.Since(t0)
	return st, err
}

// LoadWorld is LoadWorldNamed with the classic XBT names (a database
// Setup made).
func LoadWorld(ctx context.Context, db *gosql.DB, users, torrents int, secret string) (*World, error) {
	return LoadWorldNamed(ctx, db, xsql.DefaultNames(), users, torrents, secret)
}

// LoadWorldNamed reads the secret (torrent_pass_private_key in n.Config,
// unless secret is given), up to users users of n.Users who may leech
// freely (can_leech 1, no wait time, no limits; lowest n.UsersUID first)
// and up to torrents torrents of n.Files (not flagged deleted; lowest
// n.FilesFid first): the table_* settings of the tracker under test.
func LoadWorldNamed(ctx context.Context, db *gosql.DB, n xsql.Names, users, torrents int, secret string) (*World, error) {
	if err := n.Validate(); err != nil {
		return nil, err
	}
	q := func(ident string) string { return "`" + ident + "`" } // valid identifiers: no backquote
	cfg, usersT, uid, files, fid := q(n.Config), q(n.Users), q(n.UsersUID), q(n.Files), q(n.FilesFid)
	w := &World{Secret: secret}
	if w.Secret == "" {
		err := db.QueryRowContext(ctx, "SELECT value FROM "+cfg+" WHERE name = 'torrent_pass_private_key'").Scan(&w.Secret)
		if err == gosql.ErrNoRows || (err == nil && w.Secret == "") {
			return nil, fmt.Errorf("%s has no torrent_pass_private_key: run with --setup, start the tracker once, or pass --secret", n.Config)
		}
		if err != nil {
			return nil, fmt.Errorf("read torrent_pass_private_key: %w", err)
		}
	}
	rows, err := db.QueryContext(ctx, "SELECT "+uid+", torrent_pass_version FROM "+usersT+ //nolint:gosec // G202: identifiers validated by n.Validate (sql.ValidIdent: [A-Za-z0-9_] only) and backquoted
		" WHERE can_leech = 1 AND wait_time = 0 AND peers_limit = 0 AND torrents_limit = 0 ORDER BY "+uid+" LIMIT ?", users)
	if err != nil {
		// A catalog without the optional limit columns.
		rows, err = db.QueryContext(ctx, "SELECT "+uid+", torrent_pass_version FROM "+usersT+" WHERE can_leech = 1 ORDER BY "+uid+" LIMIT ?", users) //nolint:gosec // G202: identifiers validated by n.Validate (sql.ValidIdent: [A-Za-z0-9_] only) and backquoted
	}
	if err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	w.Users = make([]WorldUser, 0, users)
	for rows.Next() {
		var u WorldUser
		if err := rows.Scan(&u.UID, &u.Version); err != nil {
			rows.Close()
			return nil, err
		}
		w.Users = append(w.Users, u)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = db.QueryContext(ctx, "SELECT info_hash FROM "+files+" WHERE flags & 1 = 0 ORDER BY "+fid+" LIMIT ?", torrents) //nolint:gosec // G202: identifiers validated by n.Validate (sql.ValidIdent: [A-Za-z0-9_] only) and backquoted
	if err != nil {
		return nil, fmt.Errorf("read torrents: %w", err)
	}
	w.Hashes = make([][20]byte, 0, torrents)
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			rows.Close()
			return nil, err
		}
		var h [20]byte
		copy(h[:], b)
		w.Hashes = append(w.Hashes, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(w.Users) == 0 || len(w.Hashes) == 0 {
		return nil, fmt.Errorf("the database has %d usable users and %d torrents: run with --setup", len(w.Users), len(w.Hashes))
	}
	return w, nil
}
