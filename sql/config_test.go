package sql

import (
	"context"
	"errors"
	"fmt"
	gosync "sync"
	"sync/atomic"
	"testing"

	"github.com/xbt-tracker/xbt-tracker/internal/dbtest"
	"github.com/xbt-tracker/xbt-tracker/migrations"
)

func TestLoadConfigRows(t *testing.T) {
	db, _ := dbtest.New(t)
	exec(t, db, "CREATE TABLE cfg (name varchar(255) NOT NULL, value varchar(255) NOT NULL)")
	exec(t, db, `INSERT INTO cfg VALUES ('listen_port', '2710'), ('announce_interval', '1800'), ('listen_port', '2711, 2712'),
		('listen_port', '80'), ('offline_message', 'down, back soon'), ('listen_ipa', '192.0.2.1,::1'), ('redirect_url', '')`)
	got, err := LoadConfigRows(context.Background(), db, "cfg")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"listen_port":       "[2710 2711 2712 80]", // a merged row splits, order kept
		"announce_interval": "[1800]",
		"offline_message":   "[down, back soon]", // only repeatable keys split
		"listen_ipa":        "[192.0.2.1 ::1]",
		"redirect_url":      "[]",
	}
	if len(got) != len(want) {
		t.Fatalf("LoadConfigRows = %q", got)
	}
	for k, v := range want {
		if fmt.Sprint(got[k]) != v || (k == "redirect_url" && (len(got[k]) != 1 || got[k][0] != "")) {
			t.Errorf("LoadConfigRows[%s] = %q, want %s", k, got[k], v)
		}
	}
	if _, err := LoadConfigRows(context.Background(), db, "cfg; drop table cfg"); err == nil {
		t.Fatal("bad table name accepted")
	}
	if _, err := LoadConfigRows(context.Background(), db, "nope"); err == nil {
		t.Fatal("missing table gave no error")
	}
}

func TestEnsureSecretCreatesOnce(t *testing.T) {
	db := migratedDB(t)
	ctx := context.Background()
	calls := 0
	gen := func() (string, error) { calls++; return fmt.Sprintf("secret%d", calls), nil }

	s, created, err := EnsureSecret(ctx, db, "xbt_config", gen)
	if err != nil || s != "secret1" || !created {
		t.Fatalf("first EnsureSecret = %q, %v, %v", s, created, err)
	}
	s, created, err = EnsureSecret(ctx, db, "xbt_config", gen)
	if err != nil || s != "secret1" || created || calls != 1 {
		t.Fatalf("second EnsureSecret = %q, %v, %v (gen called %d times)", s, created, err, calls)
	}
	var stored string
	if err := db.QueryRow("SELECT value FROM xbt_config WHERE name = 'torrent_pass_private_key'").Scan(&stored); err != nil || stored != "secret1" {
		t.Fatalf("stored %q, %v", stored, err)
	}

	// An empty value counts as missing and is filled in place.
	exec(t, db, "UPDATE xbt_config SET value = '' WHERE name = 'torrent_pass_private_key'")
	s, created, err = EnsureSecret(ctx, db, "xbt_config", gen)
	if err != nil || s != "secret2" || !created {
		t.Fatalf("EnsureSecret over empty value = %q, %v, %v", s, created, err)
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM xbt_config").Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d config rows, want 1 (%v)", n, err)
	}

	// Generator failures propagate; nothing is stored.
	exec(t, db, "DELETE FROM xbt_config")
	boom := errors.New("no entropy")
	if _, _, err := EnsureSecret(ctx, db, "xbt_config", func() (string, error) { return "", boom }); !errors.Is(err, boom) {
		t.Fatalf("gen error not returned: %v", err)
	}
	if _, _, err := EnsureSecret(ctx, db, "xbt_config", func() (string, error) { return "", nil }); err == nil {
		t.Fatal("empty generated secret accepted")
	}
	if err := db.QueryRow("SELECT COUNT(*) FROM xbt_config").Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d config rows after failed generation (%v)", n, err)
	}
	if _, _, err := EnsureSecret(ctx, db, "xbt_config`", gen); err == nil {
		t.Fatal("bad table name accepted")
	}
}

func TestEnsureSecretConcurrent(t *testing.T) {
	for _, tc := range []struct {
		name string
		ddl  string
	}{
		{"primary key on name", ""}, // the migrated table
		{"unadopted XBT table without key", "CREATE TABLE cfg_nokey (name varchar(255) NOT NULL, value varchar(255) NOT NULL)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := migratedDB(t)
			table := "xbt_config"
			if tc.ddl != "" {
				exec(t, db, tc.ddl)
				table = "cfg_nokey"
			}
			db.SetMaxOpenConns(20)
			const workers = 10
			var (
				wg      gosync.WaitGroup
				start   = make(chan struct{})
				seq     atomic.Int32
				results [workers]string
				created atomic.Int32
				errs    [workers]error
			)
			for i := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					s, c, err := EnsureSecret(context.Background(), db, table, func() (string, error) {
						return fmt.Sprintf("secret-%d", seq.Add(1)), nil
					})
					results[i], errs[i] = s, err
					if c {
						created.Add(1)
					}
				}()
			}
			close(start)
			wg.Wait()
			for i := range workers {
				if errs[i] != nil {
					t.Fatalf("worker %d: %v", i, errs[i])
				}
				if results[i] == "" || results[i] != results[0] {
					t.Fatalf("workers disagree: %q", results)
				}
			}
			if created.Load() != 1 {
				t.Fatalf("%d callers report created, want 1", created.Load())
			}
			var n int
			if err := db.QueryRow("SELECT COUNT(*) FROM `" + table + "` WHERE name = 'torrent_pass_private_key'").Scan(&n); err != nil || n != 1 {
				t.Fatalf("%d secret rows, want 1 (%v)", n, err)
			}
			var stored string
			if err := db.QueryRow("SELECT value FROM `" + table + "` WHERE name = 'torrent_pass_private_key'").Scan(&stored); err != nil || stored != results[0] {
				t.Fatalf("stored %q, callers got %q (%v)", stored, results[0], err)
			}
		})
	}
}

// An adopted XBT xbt_config with several listen_port rows still yields every
// port after the migration made name unique.
func TestLoadConfigRowsAfterAdoption(t *testing.T) {
	db, _ := dbtest.New(t)
	exec(t, db, "create table xbt_config (name varchar(255) not null, value varchar(255) not null)")
	exec(t, db, `INSERT INTO xbt_config VALUES ('listen_port', '2710'), ('announce_interval', '1800'),
		('listen_port', '2711'), ('announce_interval', '900'), ('listen_port', '2710')`)
	before, err := LoadConfigRows(context.Background(), db, "xbt_config")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(before["listen_port"]) != "[2710 2711 2710]" {
		t.Fatalf("before: %q", before)
	}
	if _, err := migrations.Up(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	after, err := LoadConfigRows(context.Background(), db, "xbt_config")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(after["listen_port"]) != "[2710 2711]" || fmt.Sprint(after["announce_interval"]) != "[900]" {
		t.Fatalf("after adoption: %q", after)
	}
}
