package dbtest

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/go-sql-driver/mysql"
)

func TestNewCreatesAndDropsDatabase(t *testing.T) {
	var name string
	t.Run("inner", func(t *testing.T) {
		db, dsn := New(t)
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			t.Fatalf("returned DSN does not parse: %v", err)
		}
		if !strings.HasPrefix(cfg.DBName, "xbt_test_") {
			t.Fatalf("database name %q lacks xbt_test_ prefix", cfg.DBName)
		}
		if !cfg.ParseTime {
			t.Fatalf("DSN %q lacks parseTime=true", dsn)
		}
		var cur string
		if err := db.QueryRow("SELECT DATABASE()").Scan(&cur); err != nil {
			t.Fatal(err)
		}
		if cur != cfg.DBName {
			t.Fatalf("pool is on %q, DSN names %q", cur, cfg.DBName)
		}
		if _, err := db.Exec("CREATE TABLE t (x int)"); err != nil {
			t.Fatal(err)
		}
		name = cfg.DBName
	})
	if name == "" {
		t.Skip("inner test skipped (no server)")
	}
	// After the subtest's cleanup the database must be gone.
	db, _ := New(t)
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("database %s still exists after cleanup", name)
	}
}

func TestNewNamesAreUnique(t *testing.T) {
	_, a := New(t)
	_, b := New(t)
	if a == b {
		t.Fatalf("two calls returned the same DSN %q", a)
	}
}

func TestDSNFor(t *testing.T) {
	got, err := DSNFor("u:p@tcp(db.example:3307)/other?charset=utf8mb4", "x1")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := mysql.ParseDSN(got)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DBName != "x1" || cfg.User != "u" || cfg.Passwd != "p" || cfg.Addr != "db.example:3307" || !cfg.ParseTime {
		t.Fatalf("DSNFor = %q (%+v)", got, cfg)
	}
	if _, err := DSNFor("not a dsn", "x"); err == nil {
		t.Fatal("DSNFor accepted a malformed DSN")
	}
}

// fakeTB records Skipf/Fatalf instead of acting on them.
type fakeTB struct {
	testing.TB
	mu          sync.Mutex
	skip, fatal string
}

func (f *fakeTB) Helper()        {}
func (f *fakeTB) Cleanup(func()) {}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.mu.Lock()
	f.skip = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatal = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func runNew(tb *fakeTB) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		newDB(tb) // New's server handling, whether or not -short is set
	}()
	<-done
}

func TestShortSkips(t *testing.T) {
	if !testing.Short() {
		t.Skip("checks the -short behaviour")
	}
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		New(f)
	}()
	<-done
	if f.fatal != "" || !strings.Contains(f.skip, "-short") {
		t.Fatalf("with -short: skip=%q fatal=%q", f.skip, f.fatal)
	}
}

func TestUnreachableServer(t *testing.T) {
	t.Setenv("XBT_TEST_DSN", "root:@tcp(127.0.0.1:1)/")

	t.Setenv("CI", "")
	f := &fakeTB{TB: t}
	runNew(f)
	if f.fatal != "" || !strings.Contains(f.skip, "MariaDB not reachable at 127.0.0.1:1") || !strings.Contains(f.skip, "XBT_TEST_DSN") {
		t.Fatalf("without CI: skip=%q fatal=%q", f.skip, f.fatal)
	}

	t.Setenv("CI", "true")
	f = &fakeTB{TB: t}
	runNew(f)
	if f.skip != "" || !strings.Contains(f.fatal, "not reachable at 127.0.0.1:1") {
		t.Fatalf("with CI: skip=%q fatal=%q", f.skip, f.fatal)
	}
}
