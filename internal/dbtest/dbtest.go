package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// DefaultDSN is the server used when XBT_TEST_DSN is not set.
const DefaultDSN = "root:@tcp(127.0.0.1:3306)/"

// BaseDSN returns XBT_TEST_DSN, or DefaultDSN when it is unset.
func BaseDSN() string {
	if v := os.Getenv("XBT_TEST_DSN"); v != "" {
		return v
	}
	return DefaultDSN
}

// DSNFor returns base with its database name replaced by dbName. The
// returned DSN always has parseTime=true (goose scans DATETIME columns into
// time.Time) and a dial timeout of 5s unless base sets one.
func DSNFor(base, dbName string) (string, error) {
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		return "", fmt.Errorf("dbtest: bad DSN %q: %w (format: root:@tcp(127.0.0.1:3306)/)", base, err)
	}
	cfg.DBName = dbName
	cfg.ParseTime = true
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	return cfg.FormatDSN(), nil
}

// New creates an empty database named xbt_test_<pid>_<random hex> on the
// test server and returns an open pool on it together with its DSN. The pool
// is closed and the database dropped in t.Cleanup.
//
// With -short the test is skipped. If the server cannot be reached the test
// is skipped, unless the CI environment variable is non-empty, in which case
// it fails.
func New(t testing.TB) (db *sql.DB, dsn string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("needs MariaDB: skipped with -short (make test-unit)")
	}
	return newDB(t)
}

func newDB(t testing.TB) (db *sql.DB, dsn string) {
	t.Helper()
	base := BaseDSN()
	serverDSN, err := DSNFor(base, "")
	if err != nil {
		t.Fatalf("%v", err)
	}
	addr := "?"
	if cfg, err := mysql.ParseDSN(serverDSN); err == nil {
		addr = cfg.Addr
	}

	admin, err := sql.Open("mysql", serverDSN)
	if err != nil {
		t.Fatalf("dbtest: open %s: %v", addr, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		_ = admin.Close()
		if os.Getenv("CI") != "" {
			t.Fatalf("dbtest: MariaDB not reachable at %s (CI is set, so this is a failure): %v; set XBT_TEST_DSN or run scripts/dev-db.sh", addr, err)
		}
		t.Skipf("MariaDB not reachable at %s: set XBT_TEST_DSN or run scripts/dev-db.sh (%v)", addr, err)
	}

	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		_ = admin.Close()
		t.Fatalf("dbtest: random name: %v", err)
	}
	name := fmt.Sprintf("xbt_test_%d_%s", os.Getpid(), hex.EncodeToString(rnd[:]))
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE `"+name+"`"); err != nil {
		_ = admin.Close()
		t.Fatalf("dbtest: create database %s on %s: %v", name, addr, err)
	}

	dsn, err = DSNFor(base, name)
	if err != nil {
		t.Fatalf("%v", err)
	}
	db, err = sql.Open("mysql", dsn)
	if err != nil {
		t.Fatalf("dbtest: open %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			t.Errorf("dbtest: drop database %s: %v", name, err)
		}
		_ = admin.Close()
	})
	return db, dsn
}
