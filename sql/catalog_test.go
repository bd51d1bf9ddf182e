package sql

import (
	"context"
	gosql "database/sql"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/xbt-tracker/xbt-tracker/internal/dbtest"
	"github.com/xbt-tracker/xbt-tracker/tracker"
)

func TestInsertAndLoadUsers(t *testing.T) {
	ctx := context.Background()
	db := migratedDB(t)
	s, _, err := CheckSchema(ctx, db, DefaultNames())
	if err != nil {
		t.Fatal(err)
	}
	uid1, err := InsertUser(ctx, db, DefaultNames(), "")
	if err != nil {
		t.Fatal(err)
	}
	legacy := strings.Repeat("ab", 16)
	uid2, err := InsertUser(ctx, db, DefaultNames(), legacy)
	if err != nil {
		t.Fatal(err)
	}
	if uid1 == 0 || uid2 != uid1+1 {
		t.Fatalf("uids %d, %d: want consecutive non-zero", uid1, uid2)
	}
	exec(t, db, "UPDATE xbt_users SET torrent_pass_version = 3, can_leech = 0, wait_time = 60, peers_limit = 2, torrents_limit = 5 WHERE uid = "+itoa(uid2))

	users, err := LoadUsers(ctx, db, s)
	if err != nil {
		t.Fatal(err)
	}
	want := []tracker.User{
		{UID: uid1, CanLeech: true},
		{UID: uid2, TorrentPass: legacy, TorrentPassVersion: 3, CanLeech: false, WaitTime: 60, PeersLimit: 2, TorrentsLimit: 5},
	}
	if len(users) != 2 || users[0] != want[0] || users[1] != want[1] {
		t.Fatalf("LoadUsers = %+v, want %+v", users, want)
	}
	u, err := LookupUser(ctx, db, s, uid2)
	if err != nil || u != want[1] {
		t.Fatalf("LookupUser = %+v, %v", u, err)
	}
	if _, err := LookupUser(ctx, db, s, uid2+100); !errors.Is(err, gosql.ErrNoRows) {
		t.Fatalf("LookupUser of a missing uid: %v, want ErrNoRows", err)
	}
	u, err = LookupUserByTorrentPass(ctx, db, s, legacy)
	if err != nil || u.UID != uid2 {
		t.Fatalf("LookupUserByTorrentPass = %+v, %v", u, err)
	}
	if _, err := LookupUserByTorrentPass(ctx, db, s, ""); !errors.Is(err, gosql.ErrNoRows) {
		t.Fatalf("empty torrent_pass must match nobody, got %v", err)
	}
}

func TestLoadUsersWithoutOptionalColumns(t *testing.T) {
	ctx := context.Background()
	db := migratedDB(t)
	for _, col := range []string{"torrent_pass_version", "can_leech", "wait_time", "peers_limit", "torrents_limit", "torrent_pass"} {
		exec(t, db, "ALTER TABLE xbt_users DROP COLUMN "+col)
	}
	exec(t, db, "INSERT INTO xbt_users() VALUES()")
	s, warnings, err := CheckSchema(ctx, db, DefaultNames())
	if err != nil || len(warnings) != 6 {
		t.Fatalf("CheckSchema: %v, warnings %q", err, warnings)
	}
	users, err := LoadUsers(ctx, db, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 1 || users[0] != (tracker.User{UID: 1, CanLeech: true}) {
		t.Fatalf("LoadUsers = %+v: want XBT defaults for absent columns", users)
	}
}

func TestInsertAndLoadTorrents(t *testing.T) {
	ctx := context.Background()
	db := migratedDB(t)
	s, _, err := CheckSchema(ctx, db, DefaultNames())
	if err != nil {
		t.Fatal(err)
	}
	var a, b tracker.InfoHash
	copy(a[:], "aaaaaaaaaaaaaaaaaaaa")
	copy(b[:], "bbbbbbbbbbbbbbbbbbbb")
	fa, err := InsertFile(ctx, db, DefaultNames(), a)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := InsertFile(ctx, db, DefaultNames(), b)
	if err != nil {
		t.Fatal(err)
	}
	again, err := InsertFile(ctx, db, DefaultNames(), a)
	if err != nil || again != fa {
		t.Fatalf("re-inserting an info_hash: fid %d, %v; want the existing %d", again, err, fa)
	}
	exec(t, db, "UPDATE xbt_files SET completed = 7 WHERE fid = "+itoa(fa))
	exec(t, db, "UPDATE xbt_files SET flags = 1 WHERE fid = "+itoa(fb))
	got, err := LoadTorrents(ctx, db, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Fid != fa || got[0].InfoHash != a || got[0].Completed != 7 || got[0].Ctime == 0 {
		t.Fatalf("LoadTorrents = %+v: want only fid %d (fid %d has flags=1) with completed 7 and a ctime", got, fa, fb)
	}
}

func TestCreateDatabase(t *testing.T) {
	ctx := context.Background()
	existing, dsn := dbtest.New(t)
	created, err := CreateDatabase(ctx, dsn)
	if err != nil || created {
		t.Fatalf("existing database: created=%v err=%v", created, err)
	}
	var current string
	if err := existing.QueryRow("SELECT DATABASE()").Scan(&current); err != nil {
		t.Fatal(err)
	}
	name := current + "_c"
	other, err := dbtest.DSNFor(dbtest.BaseDSN(), name)
	if err != nil {
		t.Fatal(err)
	}
	created, err = CreateDatabase(ctx, other)
	if err != nil || !created {
		t.Fatalf("new database: created=%v err=%v", created, err)
	}
	db, err := Open(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("DROP DATABASE `" + name + "`"); err != nil {
		t.Fatal(err)
	}
	if _, err := CreateDatabase(ctx, "root:@tcp(127.0.0.1:3306)/bad-name"); err == nil {
		t.Fatal("a database name outside [A-Za-z0-9_] must be refused")
	}
}

func itoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }
