package sql

import (
	"context"
	gosql "database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/xbt-tracker/xbt-tracker/internal/dbtest"
	"github.com/xbt-tracker/xbt-tracker/migrations"
)

func migratedDB(t *testing.T) *gosql.DB {
	t.Helper()
	db, _ := dbtest.New(t)
	if _, err := migrations.Up(context.Background(), db); err != nil {
		t.Fatalf("migrations.Up: %v", err)
	}
	return db
}

func exec(t *testing.T, db *gosql.DB, q string) {
	t.Helper()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func TestCheckSchemaMigrated(t *testing.T) {
	db := migratedDB(t)
	s, warnings, err := CheckSchema(context.Background(), db, DefaultNames())
	if err != nil {
		t.Fatalf("CheckSchema: %v", err)
	}
	if len(warnings) != 0 {
		t.Fatalf("warnings on a migrated database: %q", warnings)
	}
	want := Schema{
		Names: DefaultNames(), FilesUsersFid: "fid", HasTorrentPass: true,
		HasTorrentPassVersion: true, HasCanLeech: true, HasWaitTime: true, HasPeersLimit: true, HasTorrentsLimit: true,
		HasAnnounced: true, HasAnnounceLog: true, HasScrapeLog: true, HasDenyFromHosts: true, HasDenyFromHosts6: true,
		HasClientWhitelist: true, HasDenyFromClients: true, HasSnatched: true, HasFreeleechTokens: true,
	}
	if s != want {
		t.Fatalf("CheckSchema = %+v\nwant %+v", s, want)
	}
}

func TestCheckSchemaMissingRequiredColumn(t *testing.T) {
	db := migratedDB(t)
	ctx := context.Background()
	exec(t, db, "ALTER TABLE xbt_users DROP COLUMN uploaded")
	_, _, err := CheckSchema(ctx, db, DefaultNames())
	wantFragments(t, err, `schema: table xbt_users has no column "uploaded" (required)`, `"xbt-tracker migrate up"`, "docs/ADOPTING.md")
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("error is not one line: %q", err)
	}
	var se *SchemaError
	if !errors.As(err, &se) || len(se.Missing) != 1 {
		t.Fatalf("want *SchemaError with 1 entry, got %#v", err)
	}

	exec(t, db, "ALTER TABLE xbt_files DROP COLUMN flags")
	exec(t, db, "ALTER TABLE xbt_files_users DROP COLUMN `left`")
	_, _, err = CheckSchema(ctx, db, DefaultNames())
	wantFragments(t, err, `table xbt_users has no column "uploaded" (required); `,
		`table xbt_files has no column "flags" (required); `, `table xbt_files_users has no column "left" (required)`)
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("error is not one line: %q", err)
	}
}

func TestCheckSchemaMissingTable(t *testing.T) {
	db := migratedDB(t)
	exec(t, db, "DROP TABLE xbt_config")
	_, _, err := CheckSchema(context.Background(), db, DefaultNames())
	wantFragments(t, err, "table xbt_config does not exist (required; setting table_config)", "table_*")
}

func TestCheckSchemaOptionalMissing(t *testing.T) {
	db := migratedDB(t)
	exec(t, db, "ALTER TABLE xbt_users DROP COLUMN can_leech, DROP COLUMN wait_time, DROP COLUMN peers_limit, DROP COLUMN torrents_limit, DROP COLUMN torrent_pass_version")
	exec(t, db, "ALTER TABLE xbt_files_users DROP COLUMN announced")
	exec(t, db, "DROP TABLE xbt_announce_log, xbt_deny_from_hosts6")
	s, warnings, err := CheckSchema(context.Background(), db, DefaultNames())
	if err != nil {
		t.Fatalf("optional columns missing must not be an error: %v", err)
	}
	if s.HasCanLeech || s.HasWaitTime || s.HasPeersLimit || s.HasTorrentsLimit || s.HasTorrentPassVersion ||
		s.HasAnnounced || s.HasAnnounceLog || s.HasDenyFromHosts6 {
		t.Fatalf("Has* true for dropped columns: %+v", s)
	}
	if !s.HasTorrentPass || !s.HasScrapeLog || !s.HasDenyFromHosts || s.FilesUsersFid != "fid" {
		t.Fatalf("Has* false for present columns: %+v", s)
	}
	want := []string{
		`schema: xbt_users has no column "torrent_pass_version": `,
		`schema: xbt_users has no column "can_leech": every user may leech (XBT behaviour); run "xbt-tracker migrate up" to add it`,
		`schema: xbt_users has no column "wait_time": `,
		`schema: xbt_users has no column "peers_limit": `,
		`schema: xbt_users has no column "torrents_limit": `,
		`schema: xbt_files_users has no column "announced": `,
		`schema: table xbt_announce_log does not exist: `,
		`schema: table xbt_deny_from_hosts6 does not exist: `,
	}
	if len(warnings) != len(want) {
		t.Fatalf("got %d warnings, want %d: %q", len(warnings), len(want), warnings)
	}
	for i, w := range want {
		if !strings.HasPrefix(warnings[i], w) {
			t.Errorf("warning %d = %q, want prefix %q", i, warnings[i], w)
		}
		if strings.Contains(warnings[i], "\n") {
			t.Errorf("warning %d spans lines", i)
		}
	}
}

// headSchema is XBT's current (HEAD) Tracker/xbt_tracker.sql: xbt_torrents
// and xbt_peers keyed by tid, no announced, no torrent_pass.
var headSchema = []string{
	`create table if not exists xbt_config
(
	name varchar(255) not null,
	value varchar(255) not null
)`,
	"create table if not exists xbt_peers\n(\n\ttid int not null,\n\tuid int not null,\n\tactive tinyint not null,\n\tcompleted int not null,\n\tdownloaded bigint unsigned not null,\n\t`left` bigint unsigned not null,\n\tuploaded bigint unsigned not null,\n\tmtime int not null,\n\tprimary key (tid, uid),\n\tkey (uid)\n)",
	`create table if not exists xbt_torrents
(
	tid int not null auto_increment,
	info_hash binary(20) not null,
	seeders int not null default 0,
	leechers int not null default 0,
	completed int not null default 0,
	flags int not null default 0,
	mtime int not null,
	ctime int not null,
	primary key (tid),
	unique key (info_hash)
)`,
	`create table if not exists xbt_users
(
	uid int not null auto_increment,
	torrent_pass_version int not null default 0,
	downloaded bigint unsigned not null default 0,
	uploaded bigint unsigned not null default 0,
	primary key (uid)
)`,
}

func TestCheckSchemaHEAD(t *testing.T) {
	db, _ := dbtest.New(t)
	for _, q := range headSchema {
		exec(t, db, q)
	}
	n := DefaultNames()
	n.Files, n.FilesUsers, n.FilesFid = "xbt_torrents", "xbt_peers", "tid"
	s, warnings, err := CheckSchema(context.Background(), db, n)
	if err != nil {
		t.Fatalf("HEAD schema: %v", err)
	}
	if s.FilesUsersFid != "tid" || s.HasAnnounced || s.HasTorrentPass || !s.HasTorrentPassVersion || s.HasCanLeech {
		t.Fatalf("HEAD schema detected as %+v", s)
	}
	if len(warnings) != 10 { // torrent_pass, can_leech, wait_time, peers_limit, torrents_limit, announced, 4 tables
		t.Fatalf("got %d warnings: %q", len(warnings), warnings)
	}

	// files_users keyed by tid is detected even when column_files_fid still
	// says fid; the torrents table then lacks "fid" and that is the error.
	n.FilesFid = "fid"
	s, _, err = CheckSchema(context.Background(), db, n)
	wantFragments(t, err, `table xbt_torrents has no column "fid" (required)`)
	if strings.Contains(err.Error(), "xbt_peers") || s.FilesUsersFid != "tid" {
		t.Fatalf("xbt_peers.tid not detected: %v (FilesUsersFid=%q)", err, s.FilesUsersFid)
	}
}

func TestCheckSchemaConfiguredNames(t *testing.T) {
	db := migratedDB(t)
	exec(t, db, "ALTER TABLE xbt_users CHANGE uid user_id int NOT NULL AUTO_INCREMENT")
	exec(t, db, "ALTER TABLE xbt_files CHANGE seeders seeds int NOT NULL DEFAULT 0")
	n := DefaultNames()
	if _, _, err := CheckSchema(context.Background(), db, n); err == nil ||
		!strings.Contains(err.Error(), `xbt_users has no column "uid"`) || !strings.Contains(err.Error(), `xbt_files has no column "seeders"`) {
		t.Fatalf("renamed columns not reported: %v", err)
	}
	n.UsersUID, n.FilesSeeders = "user_id", "seeds"
	if _, w, err := CheckSchema(context.Background(), db, n); err != nil || len(w) != 0 {
		t.Fatalf("configured names: %v %q", err, w)
	}
}

func TestCheckSchemaRejectsBadNames(t *testing.T) {
	db := migratedDB(t)
	n := DefaultNames()
	n.Users = "xbt_users; drop"
	_, _, err := CheckSchema(context.Background(), db, n)
	wantFragments(t, err, `table_users = "xbt_users; drop"`)
}
