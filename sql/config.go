package sql

import (
	"context"
	gosql "database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"

	sq "github.com/Masterminds/squirrel"
)

// SecretName is the xbt_config row holding the passkey secret.
const SecretName = "torrent_pass_private_key"

// secretLockTimeout bounds how long EnsureSecret waits for another tracker
// that is generating the secret at the same moment.
const secretLockTimeout = 10 * time.Second

// LoadConfigRows reads every (name, value) row of the config table, in table
// order. A name may repeat (listen_port); its values keep that order.
//
// XBT keeps several listen_port (and listen_ipa) rows. Where name is unique
// (every database this tracker migrated) they are stored as one row with
// comma-separated values instead, e.g. "2710,2711"; such a row is returned
// as separate values, so callers see the same shape either way.
func LoadConfigRows(ctx context.Context, db *gosql.DB, table string) (map[string][]string, error) {
	t, err := quoteIdent(table)
	if err != nil {
		return nil, fmt.Errorf("config table: %w", err)
	}
	query, args, err := sq.Select("`name`", "`value`").From(t).ToSql()
	if err != nil {
		return nil, fmt.Errorf("config: build query: %w", err)
	}
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", table, err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			return nil, fmt.Errorf("config: read %s: %w", table, err)
		}
		if repeatableConfig(name) && strings.Contains(value, ",") {
			for _, v := range strings.Split(value, ",") {
				if v = strings.TrimSpace(v); v != "" {
					out[name] = append(out[name], v)
				}
			}
			continue
		}
		out[name] = append(out[name], value)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("config: read %s: %w", table, err)
	}
	return out, nil
}

// EnsureSecret returns the non-empty torrent_pass_private_key stored in the
// config table. When there is none it stores gen()'s value and returns it
// with created = true.
//
// Concurrent callers (several trackers starting at once) end with exactly one
// stored secret and all return it:
//   - a named lock (GET_LOCK, per database) serialises them, which also
//     protects an unadopted XBT config table that has no key on name;
//   - the write itself is race-safe where name is unique: an existing row
//     with an empty value is filled by an UPDATE that matches only empty
//     values, and the INSERT's ON DUPLICATE KEY UPDATE never replaces a
//     non-empty value; what the caller gets is re-read from the table.
//
// If the server cannot take named locks (Galera), the lock is skipped and the
// unique key alone keeps the result single.
func EnsureSecret(ctx context.Context, db *gosql.DB, table string, gen func() (string, error)) (secret string, created bool, err error) {
	t, err := quoteIdent(table)
	if err != nil {
		return "", false, fmt.Errorf("config table: %w", err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return "", false, fmt.Errorf("secret: %w", err)
	}
	defer conn.Close()

	const lockName = "CONCAT('xbt_tracker_secret_', SHA1(COALESCE(DATABASE(), '')))"
	var got gosql.NullInt64
	lerr := conn.QueryRowContext(ctx, "SELECT GET_LOCK("+lockName+", ?)", int(secretLockTimeout/time.Second)).Scan(&got)
	switch {
	case lerr != nil && ctx.Err() != nil:
		return "", false, fmt.Errorf("secret: waiting for lock: %w", lerr)
	case lerr == nil && (!got.Valid || got.Int64 != 1):
		return "", false, fmt.Errorf("secret: another tracker held the %s lock for over %s; try again", SecretName, secretLockTimeout)
	case lerr == nil:
		defer func() {
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := conn.ExecContext(rctx, "SELECT RELEASE_LOCK("+lockName+")"); err != nil {
				// Do not hand a connection still holding the lock back to the pool.
				_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			}
		}()
	}

	if v, ok, err := readSecret(ctx, conn, t); err != nil || ok {
		return v, false, err
	}
	fresh, err := gen()
	if err != nil {
		return "", false, fmt.Errorf("secret: generate %s: %w", SecretName, err)
	}
	if fresh == "" || len(fresh) > 255 {
		return "", false, fmt.Errorf("secret: generated %s has length %d, want 1-255", SecretName, len(fresh))
	}

	upd, uargs, err := sq.Update(t).Set("`value`", fresh).
		Where(sq.Eq{"`name`": SecretName, "`value`": ""}).ToSql()
	if err != nil {
		return "", false, fmt.Errorf("secret: build query: %w", err)
	}
	res, err := conn.ExecContext(ctx, upd, uargs...)
	if err != nil {
		return "", false, fmt.Errorf("secret: store %s in %s: %w", SecretName, table, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		ins, iargs, err := sq.Insert(t).Columns("`name`", "`value`").Values(SecretName, fresh).
			Suffix("ON DUPLICATE KEY UPDATE `value` = IF(`value` = '', ?, `value`)", fresh).ToSql()
		if err != nil {
			return "", false, fmt.Errorf("secret: build query: %w", err)
		}
		if _, err := conn.ExecContext(ctx, ins, iargs...); err != nil {
			return "", false, fmt.Errorf("secret: store %s in %s: %w", SecretName, table, err)
		}
	}

	v, ok, err := readSecret(ctx, conn, t)
	if err != nil {
		return "", false, err
	}
	if !ok {
		return "", false, errors.New("secret: " + SecretName + " was stored but reads back empty")
	}
	return v, v == fresh, nil
}

// repeatableConfig reports whether XBT accepts several values for name.
func repeatableConfig(name string) bool {
	return name == "listen_port" || name == "listen_ipa"
}

// readSecret returns the last non-empty secret row in table order (XBT reads
// the config table in order and the last value wins).
func readSecret(ctx context.Context, conn *gosql.Conn, quotedTable string) (string, bool, error) {
	query, args, err := sq.Select("`value`").From(quotedTable).Where(sq.Eq{"`name`": SecretName}).ToSql()
	if err != nil {
		return "", false, fmt.Errorf("secret: build query: %w", err)
	}
	rows, err := conn.QueryContext(ctx, query, args...)
	if err != nil {
		return "", false, fmt.Errorf("secret: read %s: %w", SecretName, err)
	}
	defer rows.Close()
	var secret string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return "", false, fmt.Errorf("secret: read %s: %w", SecretName, err)
		}
		if v != "" {
			secret = v
		}
	}
	if err := rows.Err(); err != nil {
		return "", false, fmt.Errorf("secret: read %s: %w", SecretName, err)
	}
	return secret, secret != "", nil
}
