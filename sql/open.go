package sql

import (
	"context"
	gosql "database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// DSNExample is the DSN format shown in error messages.
const DSNExample = "root:@tcp(127.0.0.1:3306)/xbt"

// Connection defaults applied when the DSN does not set them.
const (
	DefaultDialTimeout  = 5 * time.Second
	DefaultReadTimeout  = 30 * time.Second
	DefaultWriteTimeout = 30 * time.Second
)

// Session lock waits, set on every connection unless the DSN sets them.
// They are far below the server's defaults (50 s for a row lock, a day for
// a metadata lock) and below any flush's deadline (at least 30 s), so that a
// catalog transaction holding a row the flush needs makes the statement fail
// with 1205 well within the flush: the writer retries it (MaxAttempts 5:
// about 26 s in all) and the stall is logged and counted, instead of the
// flush running out of time silently while InnoDB still waits.
const (
	DefaultInnoDBLockWaitTimeout = "5"
	DefaultLockWaitTimeout       = "10"
)

// Pool limits. The tracker needs few connections: reloads and flushes run
// one at a time, and the hot path never touches the database.
const (
	maxOpenConns    = 16
	maxIdleConns    = 4
	connMaxLifetime = 10 * time.Minute
	connMaxIdleTime = 2 * time.Minute
)

// MySQL server error numbers used here.
const (
	errAccessDenied    = 1045
	errUnknownDatabase = 1049
)

// parseDSN turns a go-sql-driver DSN into the driver configuration Open
// uses: parseTime and interpolateParams forced on, timeouts defaulted.
func parseDSN(dsn string) (*mysql.Config, error) {
	if strings.TrimSpace(dsn) == "" {
		return nil, fmt.Errorf("database DSN is empty: set --dsn or XBT_DSN, e.g. %s", DSNExample)
	}
	if i := strings.Index(dsn, "://"); i >= 0 && !strings.Contains(dsn[:i], "@") && !strings.Contains(dsn[:i], "(") {
		return nil, fmt.Errorf("database DSN is malformed: URL form (%s://...) is not supported; use the go-sql-driver format user:password@tcp(host:port)/dbname, e.g. %s", dsn[:i], DSNExample)
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		// The driver's messages never echo the DSN (it may hold a password),
		// so wrapping one (%w) shows nothing %v would not.
		return nil, fmt.Errorf("database DSN is malformed: %w; expected user:password@tcp(host:port)/dbname, e.g. %s", err, DSNExample)
	}
	if cfg.DBName == "" {
		return nil, fmt.Errorf("database DSN names no database: put it after the slash, e.g. %s", DSNExample)
	}
	cfg.ParseTime = true
	cfg.InterpolateParams = true
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultDialTimeout
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	if _, ok := cfg.Params["innodb_lock_wait_timeout"]; !ok {
		cfg.Params["innodb_lock_wait_timeout"] = DefaultInnoDBLockWaitTimeout
	}
	if _, ok := cfg.Params["lock_wait_timeout"]; !ok {
		cfg.Params["lock_wait_timeout"] = DefaultLockWaitTimeout
	}
	return cfg, nil
}

// Open opens a connection pool for dsn (go-sql-driver format, e.g.
// root:@tcp(127.0.0.1:3306)/xbt) and pings it with ctx.
//
// It forces parseTime=true and interpolateParams=true, applies dial/read/
// write timeouts of 5s/30s/30s and session lock waits of 5 s (row locks,
// innodb_lock_wait_timeout) and 10 s (metadata locks, lock_wait_timeout)
// unless the DSN sets them, and limits the pool.
// Every error says what is wrong and how to fix it, and never contains the
// password.
func Open(ctx context.Context, dsn string) (*gosql.DB, error) {
	cfg, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("database DSN is not usable: %w; e.g. %s", err, DSNExample)
	}
	db := gosql.OpenDB(connector)
	db.SetMaxOpenConns(maxOpenConns)
	db.SetMaxIdleConns(maxIdleConns)
	db.SetConnMaxLifetime(connMaxLifetime)
	db.SetConnMaxIdleTime(connMaxIdleTime)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, pingError(cfg, err)
	}
	return db, nil
}

func pingError(cfg *mysql.Config, err error) error {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case errUnknownDatabase:
			return fmt.Errorf("database %q does not exist on %s (%w): run \"xbt-tracker migrate up --create-database\" (or CREATE DATABASE `%s`; then \"xbt-tracker migrate up\"), or \"make demo\" for a local one",
				cfg.DBName, cfg.Addr, err, cfg.DBName)
		case errAccessDenied:
			return fmt.Errorf("database at %s refused user %q (%w): check the user and password in --dsn / XBT_DSN",
				cfg.Addr, cfg.User, err)
		}
	}
	return fmt.Errorf("database unreachable at %s: %w; check --dsn / XBT_DSN; is MariaDB running? scripts/dev-db.sh starts one",
		cfg.Addr, err)
}
