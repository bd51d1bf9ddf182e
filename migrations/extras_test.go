package migrations_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/xbt-tracker/xbt-tracker/internal/dbtest"
	"github.com/xbt-tracker/xbt-tracker/migrations"
)

// lastExtrasVersion is the newest embedded extras migration.
const lastExtrasVersion = 2

// TestExtrasSeedLeechTime: the opt-in set adds timespent and leechtime to
// xbt_files_users, once; Down drops them; plain Up never adds them.
func TestExtrasSeedLeechTime(t *testing.T) {
	ctx := context.Background()
	db, _ := dbtest.New(t)
	if _, err := migrations.Up(ctx, db); err != nil {
		t.Fatal(err)
	}
	before := columns(t, db, "xbt_files_users")
	if _, ok := before["timespent"]; ok {
		t.Fatal("plain migrate up added timespent")
	}
	if _, ok := before["leechtime"]; ok {
		t.Fatal("plain migrate up added leechtime")
	}
	for _, tbl := range tables(t, db) {
		if tbl == "xbt_tracker_extras_version" || tbl == "xbt_tracker_added_columns" {
			t.Fatalf("plain migrate up created %s", tbl)
		}
	}

	res, err := migrations.Extras.Up(ctx, db)
	if err != nil || len(res) != lastExtrasVersion {
		t.Fatalf("extras up: %d results, %v", len(res), err)
	}
	cols := columns(t, db, "xbt_files_users")
	for _, c := range []string{"timespent", "leechtime"} {
		if cols[c] != (column{typ: "int(10) unsigned"}) && cols[c] != (column{typ: "int unsigned"}) {
			t.Errorf("%s: %+v, want int unsigned NOT NULL", c, cols[c])
		}
	}
	if v, err := migrations.Extras.Version(ctx, db); err != nil || v != lastExtrasVersion {
		t.Fatalf("extras version %d, %v", v, err)
	}
	if v, err := migrations.Version(ctx, db); err != nil || v != lastVersion {
		t.Fatalf("main version %d, %v: the sets are tracked apart", v, err)
	}
	// A second up does nothing.
	if res, err := migrations.Extras.Up(ctx, db); err != nil || len(res) != 0 {
		t.Fatalf("second extras up: %d results, %v", len(res), err)
	}
	// Plain up after extras: nothing pending, extras left alone.
	if res, err := migrations.Up(ctx, db); err != nil || len(res) != 0 {
		t.Fatalf("plain up after extras: %d results, %v", len(res), err)
	}
	mustExec(t, db, "INSERT INTO xbt_files_users (fid, uid, active, completed, downloaded, `left`, uploaded, mtime, timespent, leechtime) VALUES (1, 1, 1, 0, 0, 0, 0, 1, 5, 6)")

	if res, err := migrations.Extras.DownTo(ctx, db, 0); err != nil || len(res) != lastExtrasVersion {
		t.Fatalf("extras down to 0: %d results, %v", len(res), err)
	}
	after := columns(t, db, "xbt_files_users")
	if len(after) != len(before) {
		t.Errorf("after down: %d columns, want the %d of before", len(after), len(before))
	}
	for c := range before {
		if _, ok := after[c]; !ok {
			t.Errorf("down dropped %s", c)
		}
	}
	for _, tbl := range tables(t, db) {
		if tbl == "xbt_tracker_added_columns" {
			t.Error("down left xbt_tracker_added_columns")
		}
	}
	if n := count(t, db, "SELECT COUNT(*) FROM xbt_files_users"); n != 1 {
		t.Errorf("%d rows after down, want 1", n)
	}
	if _, err := migrations.Extras.Down(ctx, db); !errors.Is(err, goose.ErrNoNextVersion) {
		t.Errorf("second extras down: %v, want ErrNoNextVersion", err)
	}
	// Up again after down: added again.
	if _, err := migrations.Extras.Up(ctx, db); err != nil {
		t.Fatal(err)
	}
	if _, ok := columns(t, db, "xbt_files_users")["leechtime"]; !ok {
		t.Error("extras up after down: no leechtime")
	}
}

// TestExtrasKeepsCatalogColumn: a Gazelle database has timespent already:
// up adds only leechtime, down drops only leechtime and keeps the catalog's
// timespent and its values.
func TestExtrasKeepsCatalogColumn(t *testing.T) {
	ctx := context.Background()
	db, _ := dbtest.New(t)
	if _, err := migrations.Up(ctx, db); err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, "ALTER TABLE xbt_files_users ADD COLUMN timespent int unsigned NOT NULL DEFAULT 0")
	mustExec(t, db, "INSERT INTO xbt_files_users (fid, uid, active, completed, downloaded, `left`, uploaded, mtime, timespent) VALUES (1, 1, 1, 0, 0, 0, 0, 1, 4242)")
	if _, err := migrations.Extras.Up(ctx, db); err != nil {
		t.Fatal(err)
	}
	cols := columns(t, db, "xbt_files_users")
	if _, ok := cols["leechtime"]; !ok {
		t.Fatal("no leechtime after extras up")
	}
	if _, err := migrations.Extras.DownTo(ctx, db, 0); err != nil {
		t.Fatal(err)
	}
	cols = columns(t, db, "xbt_files_users")
	if _, ok := cols["leechtime"]; ok {
		t.Error("down kept leechtime, which it added")
	}
	if _, ok := cols["timespent"]; !ok {
		t.Fatal("down dropped the catalog's timespent")
	}
	if n := count(t, db, "SELECT COUNT(*) FROM xbt_files_users WHERE timespent = 4242"); n != 1 {
		t.Error("the catalog's timespent values are gone")
	}
}

// TestExtrasNeedsFilesUsers: on a database without xbt_files_users the set
// fails with a message saying what to do, and records nothing.
func TestExtrasNeedsFilesUsers(t *testing.T) {
	ctx := context.Background()
	db, _ := dbtest.New(t)
	_, err := migrations.Extras.Up(ctx, db)
	if err == nil || !strings.Contains(err.Error(), "migrate up") {
		t.Fatalf("extras up on an empty database: %v", err)
	}
	if v, err := migrations.Extras.Version(ctx, db); err != nil || v != 0 {
		t.Fatalf("extras version %d, %v", v, err)
	}
	for _, tbl := range tables(t, db) {
		if tbl == "xbt_tracker_added_columns" {
			t.Error("a failed extras up left xbt_tracker_added_columns")
		}
	}
}

// count returns the integer q selects.
func count(t *testing.T, db *sql.DB, q string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}
