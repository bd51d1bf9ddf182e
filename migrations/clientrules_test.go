package migrations_test

import (
	"context"
	"slices"
	"testing"

	"github.com/xbt-tracker/xbt-tracker/internal/dbtest"
	"github.com/xbt-tracker/xbt-tracker/migrations"
)

// 00005 creates the client rule tables and its down drops them, and only
// them.
func TestClientRulesUpAndDown(t *testing.T) {
	ctx := context.Background()
	db, _ := dbtest.New(t)
	upTo(t, db, 4)
	before := xbtTables(t, db) // as 00004 leaves it
	mustUp(t, db)
	for _, tb := range []string{"xbt_client_whitelist", "xbt_deny_from_clients"} {
		if !slices.Contains(tables(t, db), tb) {
			t.Fatalf("%s not created", tb)
		}
	}
	// Gazelle's INSERT, and the deny list's.
	mustExec(t, db, "INSERT INTO xbt_client_whitelist (peer_id, vstring) VALUES ('-TR3', 'Transmission 3')")
	mustExec(t, db, "INSERT INTO xbt_client_whitelist (peer_id) VALUES ('-UT3')")
	mustExec(t, db, "INSERT INTO xbt_deny_from_clients (peer_id) VALUES ('-XL0')")
	if _, err := db.Exec("INSERT INTO xbt_client_whitelist (peer_id) VALUES ('-TR3')"); !isDuplicateKey(err) {
		t.Fatalf("duplicate allow prefix: %v, want 1062", err)
	}

	// Down to 4 (later migrations first, then 00005).
	if _, err := migrations.DownTo(ctx, db, 4); err != nil {
		t.Fatalf("DownTo(4): %v", err)
	}
	if after := xbtTables(t, db); !slices.Equal(after, before) {
		t.Fatalf("after 00005 down: %v, want %v", after, before)
	}
	if got := queryStrings(t, db, "SELECT table_name FROM xbt_tracker_created_tables WHERE table_name LIKE '%client%'"); len(got) != 0 {
		t.Fatalf("still recorded as created: %v", got)
	}
	// Up again, and all the way down leaves nothing.
	mustUp(t, db)
	if !slices.Contains(tables(t, db), "xbt_deny_from_clients") {
		t.Fatal("xbt_deny_from_clients not created again")
	}
	if _, err := migrations.DownTo(ctx, db, 0); err != nil {
		t.Fatal(err)
	}
	if left := xbtTables(t, db); len(left) != 0 {
		t.Fatalf("tables left: %v", left)
	}
}

// A catalog that created xbt_client_whitelist itself (Gazelle's shape,
// nullable peer_id, with its rows): up leaves it as it is, down does not
// drop it (it drops only xbt_deny_from_clients, which 00005 created).
func TestClientRulesCatalogWhitelistKept(t *testing.T) {
	ctx := context.Background()
	db, _ := dbtest.New(t)
	upTo(t, db, 4)
	mustExec(t, db, "CREATE TABLE xbt_client_whitelist (id int(10) unsigned NOT NULL AUTO_INCREMENT, peer_id varchar(20) DEFAULT NULL, vstring varchar(200) DEFAULT '', PRIMARY KEY (id), UNIQUE KEY peer_id (peer_id))")
	mustExec(t, db, "INSERT INTO xbt_client_whitelist (peer_id, vstring) VALUES ('-TR2', 'Transmission 2')")
	shape := columns(t, db, "xbt_client_whitelist")
	mustUp(t, db)
	if got := columns(t, db, "xbt_client_whitelist"); len(got) != len(shape) || got["peer_id"] != shape["peer_id"] || !got["peer_id"].nullable {
		t.Fatalf("catalog's table changed: %v, was %v", got, shape)
	}
	if _, err := migrations.DownTo(ctx, db, 4); err != nil {
		t.Fatalf("DownTo(4): %v", err)
	}
	got := tables(t, db)
	if !slices.Contains(got, "xbt_client_whitelist") || slices.Contains(got, "xbt_deny_from_clients") {
		t.Fatalf("after 00005 down: %v; want the catalog's xbt_client_whitelist kept, xbt_deny_from_clients dropped", got)
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM xbt_client_whitelist").Scan(&n); err != nil || n != 1 {
		t.Fatalf("catalog rows: %d %v", n, err)
	}
	if _, err := migrations.DownTo(ctx, db, 0); err != nil {
		t.Fatal(err)
	}
	if left := xbtTables(t, db); !slices.Equal(left, []string{"xbt_client_whitelist"}) {
		t.Fatalf("after down to 0: %v, want only the catalog's xbt_client_whitelist", left)
	}
}
