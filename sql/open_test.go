package sql

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/xbt-tracker/xbt-tracker/internal/dbtest"
)

func wantFragments(t *testing.T, err error, frags ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", frags)
	}
	for _, f := range frags {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not contain %q", err, f)
		}
	}
}

func TestOpenMalformedDSN(t *testing.T) {
	ctx := context.Background()
	for _, dsn := range []string{
		"not a dsn",
		"root:@tcp(127.0.0.1:3306/xbt",
	} {
		_, err := Open(ctx, dsn)
		wantFragments(t, err, "malformed", "root:@tcp(127.0.0.1:3306)/xbt")
	}
	_, err := Open(ctx, "mysql://root:pw@127.0.0.1:3306/xbt")
	wantFragments(t, err, "malformed", "URL form", "root:@tcp(127.0.0.1:3306)/xbt")
	if strings.Contains(err.Error(), "pw") {
		t.Errorf("error leaks the password: %v", err)
	}
	_, err = Open(ctx, "")
	wantFragments(t, err, "empty", "XBT_DSN")
	_, err = Open(ctx, "root:@tcp(127.0.0.1:3306)/")
	wantFragments(t, err, "names no database", "root:@tcp(127.0.0.1:3306)/xbt")
}

func TestOpenUnreachable(t *testing.T) {
	start := time.Now()
	_, err := Open(context.Background(), "root:sekrit@tcp(127.0.0.1:1)/xbt")
	wantFragments(t, err, "unreachable at 127.0.0.1:1", "connection refused", "--dsn / XBT_DSN", "scripts/dev-db.sh")
	if strings.Contains(err.Error(), "sekrit") {
		t.Errorf("error leaks the password: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Open took %s to fail", d)
	}
}

func TestParseDSNDefaults(t *testing.T) {
	cfg, err := parseDSN("u:p@tcp(h:1)/db")
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.ParseTime || !cfg.InterpolateParams || cfg.Timeout != 5*time.Second ||
		cfg.ReadTimeout != 30*time.Second || cfg.WriteTimeout != 30*time.Second || cfg.DBName != "db" {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
	cfg, err = parseDSN("u:p@tcp(h:1)/db?timeout=1s&readTimeout=2s&writeTimeout=3s&parseTime=false")
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.ParseTime || cfg.Timeout != time.Second || cfg.ReadTimeout != 2*time.Second || cfg.WriteTimeout != 3*time.Second {
		t.Fatalf("DSN settings not kept / parseTime not forced: %+v", cfg)
	}
}

func TestOpenUnknownDatabase(t *testing.T) {
	dbtest.New(t) // skips when there is no server
	cfg, err := mysql.ParseDSN(dbtest.BaseDSN())
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	cfg.DBName = "xbt_no_such_db_" + hex.EncodeToString(b[:])
	_, err = Open(context.Background(), cfg.FormatDSN())
	wantFragments(t, err, "does not exist", cfg.DBName, "xbt-tracker migrate up --create-database", "CREATE DATABASE", "make demo")
}

func TestOpenWorks(t *testing.T) {
	_, dsn := dbtest.New(t)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ParseTime = false // Open must force it
	db, err := Open(context.Background(), cfg.FormatDSN())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer db.Close()
	var now time.Time
	if err := db.QueryRow("SELECT NOW()").Scan(&now); err != nil {
		t.Fatalf("DATETIME does not scan into time.Time (parseTime not forced?): %v", err)
	}
	var name string
	if err := db.QueryRow("SELECT DATABASE()").Scan(&name); err != nil || name != cfg.DBName {
		t.Fatalf("connected to %q (%v), want %q", name, err, cfg.DBName)
	}
	if got := db.Stats().MaxOpenConnections; got != maxOpenConns {
		t.Fatalf("MaxOpenConnections = %d", got)
	}
}

// Every connection of the pool runs with short lock waits (unless the DSN
// says otherwise), so a flush blocked by a catalog's row lock gets 1205 and
// retries well within its deadline.
func TestOpenSetsSessionLockWaits(t *testing.T) {
	ctx := context.Background()
	_, dsn := dbtest.New(t)
	for _, tc := range []struct {
		extra      string
		innodb, md int
	}{
		{"", 5, 10},
		{"&innodb_lock_wait_timeout=7&lock_wait_timeout=8", 7, 8},
	} {
		db, err := Open(ctx, dsn+tc.extra)
		if err != nil {
			t.Fatal(err)
		}
		var innodb, md int
		if err := db.QueryRowContext(ctx, "SELECT @@SESSION.innodb_lock_wait_timeout, @@SESSION.lock_wait_timeout").Scan(&innodb, &md); err != nil {
			t.Fatal(err)
		}
		db.Close()
		if innodb != tc.innodb || md != tc.md {
			t.Errorf("DSN params %q: lock waits %d/%d, want %d/%d", tc.extra, innodb, md, tc.innodb, tc.md)
		}
	}
}
