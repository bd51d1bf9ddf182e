// Change tracking: whether the changelog (migration 00004) and its triggers
// are in place, so that Loads after the first can be incremental.

package sql

import (
	"context"
	gosql "database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	sq "github.com/Masterminds/squirrel"
	"github.com/go-sql-driver/mysql"
)

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

// ErrNoChangeTracking is wrapped by ChangeTracking's error.
var ErrNoChangeTracking = errors.New("change tracking is off: every reload reads all of the users and files tables, and there is no change poll between reloads (change_poll_interval)")

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
