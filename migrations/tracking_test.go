package migrations_test

import (
	"context"
	"database/sql"
	"slices"
	"testing"

	"github.com/xbt-tracker/xbt-tracker/internal/dbtest"
	"github.com/xbt-tracker/xbt-tracker/migrations"
)

// Tests of the tracker's own objects: 00003 (commit marker) and 00004
// (changelog, triggers, flags index).

var trackerTriggers = []string{"xbt_tracker_files_ad", "xbt_tracker_files_ai", "xbt_tracker_users_ad", "xbt_tracker_users_ai", "xbt_tracker_users_au"}

func triggers(t *testing.T, db *sql.DB) []string {
	t.Helper()
	return queryStrings(t, db, "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY TRIGGER_NAME")
}

func hasIndex(t *testing.T, db *sql.DB, table, index string) bool {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND INDEX_NAME = ?", table, index).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

func TestTrackerObjectsUpAndDown(t *testing.T) {
	ctx := context.Background()
	db, _ := dbtest.New(t)
	mustUp(t, db)
	if got := triggers(t, db); !slices.Equal(got, trackerTriggers) {
		t.Fatalf("triggers %v, want %v", got, trackerTriggers)
	}
	if !hasIndex(t, db, "xbt_files", "xbt_tracker_flags") {
		t.Fatal("xbt_files has no xbt_tracker_flags index")
	}
	var sentinel int
	if err := db.QueryRow("SELECT COUNT(*) FROM xbt_tracker_changes WHERE tbl = 0").Scan(&sentinel); err != nil || sentinel != 1 {
		t.Fatalf("sentinel rows %d, %v", sentinel, err)
	}

	// Catalog writes are logged; the tracker's columns are not.
	mustExec(t, db, "INSERT INTO xbt_users (torrent_pass) VALUES ('a')")
	mustExec(t, db, "UPDATE xbt_users SET uploaded = 5, downloaded = 6")
	mustExec(t, db, "UPDATE xbt_users SET can_leech = 0")
	mustExec(t, db, "INSERT INTO xbt_files (info_hash, mtime, ctime) VALUES ('01234567890123456789', 1, 1)")
	mustExec(t, db, "UPDATE xbt_files SET seeders = 1, leechers = 2, completed = 3, mtime = 4")
	mustExec(t, db, "DELETE FROM xbt_files")
	var users, files, userVersion int
	if err := db.QueryRow("SELECT COUNT(*), MAX(version) FROM xbt_tracker_changes WHERE tbl = 1").Scan(&users, &userVersion); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("SELECT version FROM xbt_tracker_changes WHERE tbl = 2 AND info_hash = '01234567890123456789'").Scan(&files); err != nil {
		t.Fatal(err)
	}
	if users != 1 || userVersion != 2 || files != 2 {
		t.Fatalf("changelog: users %d (version %d), file version %d; want 1 (2), 2", users, userVersion, files)
	}

	// 00004 down removes exactly its objects.
	if _, err := migrations.DownTo(ctx, db, 4); err != nil { // the later migrations
		t.Fatal(err)
	}
	if got := triggers(t, db); !slices.Equal(got, trackerTriggers) {
		t.Fatalf("triggers after the later migrations' down: %v", got)
	}
	if r, err := migrations.Down(ctx, db); err != nil || r.Source.Version != 4 {
		t.Fatalf("Down: %v %v", r, err)
	}
	if got := triggers(t, db); len(got) != 0 {
		t.Fatalf("triggers left: %v", got)
	}
	if hasIndex(t, db, "xbt_files", "xbt_tracker_flags") {
		t.Fatal("xbt_tracker_flags index left")
	}
	if slices.Contains(tables(t, db), "xbt_tracker_changes") {
		t.Fatal("xbt_tracker_changes left")
	}
	if r, err := migrations.Down(ctx, db); err != nil || r.Source.Version != 3 {
		t.Fatalf("Down: %v %v", r, err)
	}
	if slices.Contains(tables(t, db), "xbt_tracker_writers") {
		t.Fatal("xbt_tracker_writers left")
	}
	mustUp(t, db)
}

// A 00004 that failed half-way (e.g. ERROR 1419 on the third trigger) leaves
// some objects behind; once the privilege is fixed, "migrate up" succeeds.
func TestChangeTrackingRerunAfterPartialFailure(t *testing.T) {
	db, _ := dbtest.New(t)
	upTo(t, db, 3)
	mustExec(t, db, "CREATE TABLE xbt_tracker_changes (tbl tinyint unsigned NOT NULL, id int NOT NULL, info_hash varbinary(20) NOT NULL DEFAULT '', changed datetime(6) NOT NULL, version bigint unsigned NOT NULL DEFAULT 1, PRIMARY KEY (tbl, id, info_hash), KEY changed (changed))")
	mustExec(t, db, "CREATE TRIGGER xbt_tracker_users_ai AFTER INSERT ON xbt_users FOR EACH ROW SET @x = 1")
	if res := mustUp(t, db); len(res) != lastVersion-3 {
		t.Fatalf("Up applied %d migrations, want %d (00004 on)", len(res), lastVersion-3)
	}
	if got := triggers(t, db); !slices.Equal(got, trackerTriggers) {
		t.Fatalf("triggers %v", got)
	}
}

// Catalogs get a torrent's fid with "ON DUPLICATE KEY UPDATE fid =
// LAST_INSERT_ID(fid)" and read the insert id the server reports. On MariaDB
// any UPDATE trigger on the table turns that id into 0, which is why 00004
// puts no UPDATE trigger on xbt_files. This test keeps it that way.
func TestCatalogInsertIDIdiomSurvivesChangeTracking(t *testing.T) {
	db, _ := dbtest.New(t)
	mustUp(t, db)
	checkInsertIDIdiom(t, db)
}

// checkInsertIDIdiom runs the catalog's "INSERT ... ON DUPLICATE KEY UPDATE
// fid = LAST_INSERT_ID(fid)" twice for one torrent: both must return its
// fid (any UPDATE trigger on xbt_files makes MariaDB return 0 the second
// time, see 00004). It returns the fid.
func checkInsertIDIdiom(t *testing.T, db *sql.DB) int64 {
	t.Helper()
	const q = "INSERT INTO xbt_files (info_hash, mtime, ctime) VALUES ('abcdefghijabcdefghij', 1, 1) ON DUPLICATE KEY UPDATE fid = LAST_INSERT_ID(fid)"
	var ids []int64
	for range 2 {
		res, err := db.Exec(q)
		if err != nil {
			t.Fatal(err)
		}
		id, err := res.LastInsertId()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if ids[0] == 0 || ids[1] != ids[0] {
		t.Fatalf("insert ids %v: want the same non-zero fid twice", ids)
	}
	return ids[0]
}
