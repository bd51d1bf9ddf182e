package migrations_test

import (
	"context"
	"slices"
	"testing"

	"github.com/xbt-tracker/xbt-tracker/internal/dbtest"
	"github.com/xbt-tracker/xbt-tracker/migrations"
)

// 00006 creates xbt_snatched (IP wide enough for IPv6) and records it; its
// down drops it, and only it.
func TestSnatchedUpAndDown(t *testing.T) {
	ctx := context.Background()
	db, _ := dbtest.New(t)
	mustUp(t, db)
	if got := columns(t, db, "xbt_snatched"); got["IP"].typ != "varchar(39)" || len(got) != 5 {
		t.Fatalf("xbt_snatched columns %v", got)
	}
	if got := queryStrings(t, db, "SELECT table_name FROM xbt_tracker_created_tables WHERE table_name = 'xbt_snatched'"); len(got) != 1 {
		t.Fatalf("not recorded as created: %v", got)
	}
	// Gazelle's INSERT, with an IPv6 address.
	mustExec(t, db, "INSERT INTO xbt_snatched (uid, tstamp, fid, IP) VALUES (1, 100, 2, '2001:db8:1234:5678:9abc:def0:1234:5678')")

	if _, err := migrations.DownTo(ctx, db, 6); err != nil { // the later migrations
		t.Fatal(err)
	}
	before := xbtTables(t, db)
	if r, err := migrations.Down(ctx, db); err != nil || r.Source.Version != 6 {
		t.Fatalf("Down: %v %v", r, err)
	}
	want := slices.DeleteFunc(slices.Clone(before), func(s string) bool { return s == "xbt_snatched" })
	if after := xbtTables(t, db); !slices.Equal(after, want) || len(want) != len(before)-1 {
		t.Fatalf("after 00006 down: %v, want %v", after, want)
	}
	if got := queryStrings(t, db, "SELECT table_name FROM xbt_tracker_created_tables WHERE table_name = 'xbt_snatched'"); len(got) != 0 {
		t.Fatalf("still recorded as created: %v", got)
	}
	mustUp(t, db)
	if !slices.Contains(tables(t, db), "xbt_snatched") {
		t.Fatal("xbt_snatched not created again")
	}
	if _, err := migrations.DownTo(ctx, db, 0); err != nil {
		t.Fatal(err)
	}
	if left := xbtTables(t, db); len(left) != 0 {
		t.Fatalf("tables left: %v", left)
	}
}

// A catalog that created xbt_snatched itself (Gazelle's shape, IP
// varchar(15), with its rows): up leaves it as it is, down does not drop it.
func TestSnatchedCatalogTableKept(t *testing.T) {
	ctx := context.Background()
	db, _ := dbtest.New(t)
	upTo(t, db, 5)
	mustExec(t, db, "CREATE TABLE xbt_snatched (uid int(11) NOT NULL DEFAULT 0, tstamp int(11) NOT NULL, fid int(11) NOT NULL, IP varchar(15) NOT NULL, seedtime int(11) NOT NULL DEFAULT 0, KEY fid (fid), KEY tstamp (tstamp), KEY uid_tstamp (uid, tstamp))")
	mustExec(t, db, "INSERT INTO xbt_snatched (uid, tstamp, fid, IP) VALUES (1, 100, 2, '192.0.2.1')")
	shape := columns(t, db, "xbt_snatched")
	mustUp(t, db)
	if got := columns(t, db, "xbt_snatched"); len(got) != len(shape) || got["IP"] != shape["IP"] || got["IP"].typ != "varchar(15)" {
		t.Fatalf("catalog's table changed: %v, was %v", got, shape)
	}
	if _, err := migrations.DownTo(ctx, db, 6); err != nil { // the later migrations
		t.Fatal(err)
	}
	if r, err := migrations.Down(ctx, db); err != nil || r.Source.Version != 6 {
		t.Fatalf("Down: %v %v", r, err)
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM xbt_snatched").Scan(&n); err != nil || n != 1 {
		t.Fatalf("catalog's xbt_snatched after 00006 down: %d rows, %v", n, err)
	}
	if _, err := migrations.DownTo(ctx, db, 0); err != nil {
		t.Fatal(err)
	}
	if left := xbtTables(t, db); !slices.Equal(left, []string{"xbt_snatched"}) {
		t.Fatalf("after down to 0: %v, want only the catalog's xbt_snatched", left)
	}
}
