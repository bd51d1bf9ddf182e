package migrations_test

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"testing"

	"github.com/xbt-tracker/xbt-tracker/internal/dbtest"
	"github.com/xbt-tracker/xbt-tracker/migrations"
)

// Tests of issue 15's credit factors: main 00007 (xbt_freeleech_tokens) and
// extras 00002 (up_multi, down_multi and their indexes).

// 00007 creates xbt_freeleech_tokens and records it; its down drops it, and
// only it.
func TestFreeleechTokensUpAndDown(t *testing.T) {
	ctx := context.Background()
	db, _ := dbtest.New(t)
	mustUp(t, db)
	if got := queryStrings(t, db, "SELECT table_name FROM xbt_tracker_created_tables WHERE table_name = 'xbt_freeleech_tokens'"); len(got) != 1 {
		t.Fatalf("not recorded as created: %v", got)
	}
	if !hasIndex(t, db, "xbt_freeleech_tokens", "expires") {
		t.Fatal("no index on expires: every reload would scan the tokens")
	}
	// A catalog's insert without a column list, and the primary key.
	mustExec(t, db, "INSERT INTO xbt_freeleech_tokens VALUES (1, 2, 4000000000)")
	if _, err := db.Exec("INSERT INTO xbt_freeleech_tokens VALUES (1, 2, 5)"); !isDuplicateKey(err) {
		t.Fatalf("second token for the same (uid, fid): %v, want 1062", err)
	}

	if _, err := migrations.DownTo(ctx, db, 7); err != nil {
		t.Fatalf("down to 7: %v", err)
	}
	before := xbtTables(t, db)
	if _, err := migrations.DownTo(ctx, db, 6); err != nil {
		t.Fatalf("down to 6: %v", err)
	}
	want := slices.DeleteFunc(slices.Clone(before), func(s string) bool { return s == "xbt_freeleech_tokens" })
	if after := xbtTables(t, db); !slices.Equal(after, want) || len(want) != len(before)-1 {
		t.Fatalf("after 00007 down: %v, want %v", after, want)
	}
	if got := queryStrings(t, db, "SELECT table_name FROM xbt_tracker_created_tables WHERE table_name = 'xbt_freeleech_tokens'"); len(got) != 0 {
		t.Fatalf("still recorded as created: %v", got)
	}
	mustUp(t, db)
	if !slices.Contains(tables(t, db), "xbt_freeleech_tokens") {
		t.Fatal("xbt_freeleech_tokens not created again")
	}
	if _, err := migrations.DownTo(ctx, db, 0); err != nil {
		t.Fatal(err)
	}
	if left := xbtTables(t, db); len(left) != 0 {
		t.Fatalf("tables left: %v", left)
	}
}

// A catalog that created xbt_freeleech_tokens itself (signed ints, its
// rows): up leaves it as it is, down does not drop it.
func TestFreeleechTokensCatalogTableKept(t *testing.T) {
	ctx := context.Background()
	db, _ := dbtest.New(t)
	upTo(t, db, 6)
	mustExec(t, db, "CREATE TABLE xbt_freeleech_tokens (uid int NOT NULL, fid int NOT NULL, expires int NOT NULL, PRIMARY KEY (uid, fid))")
	mustExec(t, db, "INSERT INTO xbt_freeleech_tokens VALUES (1, 2, 100)")
	shape := columns(t, db, "xbt_freeleech_tokens")
	mustUp(t, db)
	if got := columns(t, db, "xbt_freeleech_tokens"); len(got) != len(shape) || got["uid"] != shape["uid"] || normType(got["uid"].typ) != "int" {
		t.Fatalf("catalog's table changed: %v, was %v", got, shape)
	}
	if _, err := migrations.DownTo(ctx, db, 6); err != nil {
		t.Fatalf("down to 6: %v", err)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM xbt_freeleech_tokens"); n != 1 {
		t.Fatalf("catalog's xbt_freeleech_tokens after 00007 down: %d rows", n)
	}
}

// multiIndexes are the indexes extras 00002 adds to each table.
var multiIndexes = []string{"xbt_tracker_down_multi", "xbt_tracker_up_multi"}

// indexesOn returns the names of table's indexes whose first column is col.
func indexesOn(t *testing.T, db *sql.DB, table, col string) []string {
	t.Helper()
	return queryStrings(t, db, "SELECT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ? AND SEQ_IN_INDEX = 1 ORDER BY INDEX_NAME", table, col)
}

// TestExtrasMultipliers: the set adds up_multi and down_multi (smallint
// unsigned, default 100) and one index each to xbt_files and xbt_users,
// records them, adds no trigger; down removes exactly them; up again adds
// them again. The catalog's insert idioms keep working.
func TestExtrasMultipliers(t *testing.T) {
	ctx := context.Background()
	plain, dsn := dbtest.New(t)
	db := strictDB(t, dsn)
	mustUp(t, plain)
	before := map[string]map[string]column{"xbt_files": columns(t, db, "xbt_files"), "xbt_users": columns(t, db, "xbt_users")}
	beforeTriggers := triggers(t, db)

	if _, err := migrations.Extras.Up(ctx, db); err != nil {
		t.Fatal(err)
	}
	for _, tbl := range []string{"xbt_files", "xbt_users"} {
		cols := columns(t, db, tbl)
		for _, c := range []string{"up_multi", "down_multi"} {
			if got := cols[c]; normType(got.typ) != "smallint unsigned" && got.typ != "smallint(5) unsigned" || got.nullable {
				t.Errorf("%s.%s: %+v, want smallint unsigned NOT NULL", tbl, c, got)
			}
			if got := indexesOn(t, db, tbl, c); !slices.Equal(got, []string{"xbt_tracker_" + c}) {
				t.Errorf("%s: indexes on %s: %v", tbl, c, got)
			}
		}
		if len(cols) != len(before[tbl])+2 {
			t.Errorf("%s: %d columns, want %d", tbl, len(cols), len(before[tbl])+2)
		}
	}
	wantRecorded := []string{
		"xbt_files:down_multi", "xbt_files:index:xbt_tracker_down_multi", "xbt_files:index:xbt_tracker_up_multi", "xbt_files:up_multi",
		"xbt_users:down_multi", "xbt_users:index:xbt_tracker_down_multi", "xbt_users:index:xbt_tracker_up_multi", "xbt_users:up_multi",
	}
	const recorded = "SELECT CONCAT(table_name, ':', column_name) FROM xbt_tracker_added_columns WHERE migration = 2 ORDER BY 1"
	if got := queryStrings(t, db, recorded); !slices.Equal(got, wantRecorded) {
		t.Fatalf("recorded %v, want %v", got, wantRecorded)
	}
	if got := triggers(t, db); !slices.Equal(got, beforeTriggers) {
		t.Fatalf("triggers %v, were %v: the factors are read wholesale, no trigger may change", got, beforeTriggers)
	}

	// The catalog's idioms, in strict mode: inserts naming only their own
	// columns get 100 %; the fid of an existing torrent comes back.
	mustExec(t, db, "INSERT INTO xbt_users (torrent_pass) VALUES ('x')")
	fid := checkInsertIDIdiom(t, db)
	if n := count(t, db, "SELECT COUNT(*) FROM xbt_files JOIN xbt_users WHERE xbt_files.up_multi = 100 AND xbt_files.down_multi = 100 AND xbt_users.up_multi = 100 AND xbt_users.down_multi = 100"); n != 1 {
		t.Fatalf("defaults: %d rows at 100 %%, want 1", n)
	}
	mustExec(t, db, "UPDATE xbt_files SET down_multi = 0, up_multi = 200")
	mustExec(t, db, "INSERT INTO xbt_freeleech_tokens VALUES (1, ?, UNIX_TIMESTAMP() + 86400)", fid)

	// Down removes the set's objects, the rows stay.
	if r, err := migrations.Extras.Down(ctx, db); err != nil || r.Source.Version != 2 {
		t.Fatalf("extras down: %v %v", r, err)
	}
	for _, tbl := range []string{"xbt_files", "xbt_users"} {
		if got := columns(t, db, tbl); len(got) != len(before[tbl]) {
			t.Errorf("%s after down: %v, want the columns of before", tbl, got)
		}
		for _, ix := range multiIndexes {
			if hasIndex(t, db, tbl, ix) {
				t.Errorf("%s: %s left", tbl, ix)
			}
		}
	}
	if got := queryStrings(t, db, recorded); len(got) != 0 {
		t.Fatalf("still recorded: %v", got)
	}
	if _, ok := columns(t, db, "xbt_files_users")["leechtime"]; !ok {
		t.Fatal("00002 down dropped 00001's leechtime")
	}
	if n := count(t, db, "SELECT COUNT(*) FROM xbt_files"); n != 1 {
		t.Fatalf("%d torrents after down, want 1", n)
	}
	if v, err := migrations.Extras.Version(ctx, db); err != nil || v != 1 {
		t.Fatalf("extras version %d, %v; want 1", v, err)
	}

	// Up again.
	if res, err := migrations.Extras.Up(ctx, db); err != nil || len(res) != 1 {
		t.Fatalf("extras up again: %d results, %v", len(res), err)
	}
	if got := queryStrings(t, db, recorded); !slices.Equal(got, wantRecorded) {
		t.Fatalf("recorded after up again %v, want %v", got, wantRecorded)
	}
	if n := count(t, db, "SELECT down_multi FROM xbt_files"); n != 100 {
		t.Fatalf("down_multi added again as %d, want the default 100", n)
	}
}

// A catalog with its own xbt_files.up_multi (another type, its values, no
// index) and its own index starting with xbt_users.down_multi: up adds only
// what is missing; down drops only that, keeping the catalog's column, its
// values and its index.
func TestExtrasMultipliersKeepCatalogObjects(t *testing.T) {
	ctx := context.Background()
	db, _ := dbtest.New(t)
	mustUp(t, db)
	mustExec(t, db, "ALTER TABLE xbt_files ADD COLUMN up_multi int NOT NULL DEFAULT 100")
	mustExec(t, db, "ALTER TABLE xbt_users ADD COLUMN down_multi tinyint unsigned NOT NULL DEFAULT 100, ADD INDEX class_down (down_multi, uid)")
	mustExec(t, db, "INSERT INTO xbt_files (info_hash, mtime, ctime, up_multi) VALUES ('abcdefghijabcdefghij', 1, 1, 150)")
	filesUp := columns(t, db, "xbt_files")["up_multi"]

	if _, err := migrations.Extras.Up(ctx, db); err != nil {
		t.Fatal(err)
	}
	if got := columns(t, db, "xbt_files")["up_multi"]; got != filesUp {
		t.Fatalf("catalog's xbt_files.up_multi changed: %+v, was %+v", got, filesUp)
	}
	if got := indexesOn(t, db, "xbt_files", "up_multi"); !slices.Equal(got, []string{"xbt_tracker_up_multi"}) {
		t.Fatalf("indexes on the catalog's xbt_files.up_multi: %v, want ours", got)
	}
	if got := indexesOn(t, db, "xbt_users", "down_multi"); !slices.Equal(got, []string{"class_down"}) {
		t.Fatalf("indexes on xbt_users.down_multi: %v, want only the catalog's", got)
	}
	const recorded = "SELECT CONCAT(table_name, ':', column_name) FROM xbt_tracker_added_columns WHERE migration = 2 ORDER BY 1"
	want := []string{
		"xbt_files:down_multi", "xbt_files:index:xbt_tracker_down_multi", "xbt_files:index:xbt_tracker_up_multi",
		"xbt_users:index:xbt_tracker_up_multi", "xbt_users:up_multi",
	}
	if got := queryStrings(t, db, recorded); !slices.Equal(got, want) {
		t.Fatalf("recorded %v, want %v", got, want)
	}

	if _, err := migrations.Extras.Down(ctx, db); err != nil {
		t.Fatal(err)
	}
	if got := columns(t, db, "xbt_files"); got["up_multi"] != filesUp {
		t.Fatalf("down dropped or changed the catalog's xbt_files.up_multi: %v", got)
	} else if _, ok := got["down_multi"]; ok {
		t.Fatal("down kept xbt_files.down_multi, which it added")
	}
	if n := count(t, db, "SELECT up_multi FROM xbt_files"); n != 150 {
		t.Fatalf("catalog's up_multi value %d after down, want 150", n)
	}
	if got := indexesOn(t, db, "xbt_files", "up_multi"); len(got) != 0 {
		t.Fatalf("down kept %v on xbt_files.up_multi", got)
	}
	if got := columns(t, db, "xbt_users"); normType(got["down_multi"].typ) != "tinyint unsigned" {
		t.Fatalf("down dropped the catalog's xbt_users.down_multi: %v", got)
	} else if _, ok := got["up_multi"]; ok {
		t.Fatal("down kept xbt_users.up_multi, which it added")
	}
	if !hasIndex(t, db, "xbt_users", "class_down") {
		t.Fatal("down dropped the catalog's index class_down")
	}
}

// With xbt_files_users but not xbt_files (a database "migrate up" did not
// make), 00002 fails saying what to do, and the set stays at 00001.
func TestExtrasMultipliersNeedTables(t *testing.T) {
	ctx := context.Background()
	db, _ := dbtest.New(t)
	mustExec(t, db, "CREATE TABLE xbt_files_users (fid int NOT NULL, uid int NOT NULL, PRIMARY KEY (fid, uid))")
	mustExec(t, db, "CREATE TABLE xbt_users (uid int NOT NULL PRIMARY KEY)")
	_, err := migrations.Extras.Up(ctx, db)
	if err == nil || !strings.Contains(err.Error(), "xbt_files does not exist") || !strings.Contains(err.Error(), "migrate up") {
		t.Fatalf("extras up without xbt_files: %v", err)
	}
	if v, err := migrations.Extras.Version(ctx, db); err != nil || v != 1 {
		t.Fatalf("extras version %d, %v; want 1", v, err)
	}
	if got := queryStrings(t, db, "SELECT column_name FROM xbt_tracker_added_columns WHERE migration = 2"); len(got) != 0 {
		t.Fatalf("a failed 00002 recorded %v", got)
	}
	if _, ok := columns(t, db, "xbt_users")["up_multi"]; ok {
		t.Fatal("a failed 00002 changed xbt_users")
	}
}
