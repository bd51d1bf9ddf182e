package loadgen

import (
	"context"
	"testing"

	"github.com/xbt-tracker/xbt-tracker/internal/dbtest"
	xsql "github.com/xbt-tracker/xbt-tracker/sql"
)

// LoadWorldNamed reads the tables and columns the table_* settings name;
// LoadWorld the classic ones Setup fills.
func TestLoadWorldNamed(t *testing.T) {
	ctx := context.Background()
	db, _ := dbtest.New(t)
	if _, err := Setup(ctx, db, 5, 3); err != nil {
		t.Fatal(err)
	}
	w, err := LoadWorld(ctx, db, 10, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Users) != 5 || len(w.Hashes) != 3 || w.Secret == "" || w.Hashes[2] != BenchHash(3) {
		t.Fatalf("classic world: %d users, %d torrents, secret %q", len(w.Users), len(w.Hashes), w.Secret)
	}
	for _, q := range []string{
		"UPDATE xbt_users SET can_leech = 0 WHERE uid = 1",
		"RENAME TABLE xbt_users TO site_users, xbt_files TO site_files, xbt_config TO site_config",
		"ALTER TABLE site_users CHANGE uid id int unsigned NOT NULL AUTO_INCREMENT",
		"ALTER TABLE site_files CHANGE fid id int unsigned NOT NULL AUTO_INCREMENT",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := LoadWorld(ctx, db, 10, 10, ""); err == nil {
		t.Fatal("LoadWorld read renamed tables under the classic names")
	}
	n := xsql.DefaultNames()
	n.Users, n.Files, n.Config, n.UsersUID, n.FilesFid = "site_users", "site_files", "site_config", "id", "id"
	w2, err := LoadWorldNamed(ctx, db, n, 10, 2, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(w2.Users) != 4 || w2.Users[0].UID != 2 || len(w2.Hashes) != 2 || w2.Hashes[0] != BenchHash(1) || w2.Secret != w.Secret {
		t.Fatalf("renamed world: %+v", w2)
	}
	n.Users = "bad name"
	if _, err := LoadWorldNamed(ctx, db, n, 10, 10, ""); err == nil {
		t.Fatal("an invalid table name was accepted")
	}
}
