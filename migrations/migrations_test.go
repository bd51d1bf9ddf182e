package migrations_test

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/pressly/goose/v3"

	"github.com/xbt-tracker/xbt-tracker/internal/dbtest"
	"github.com/xbt-tracker/xbt-tracker/migrations"
)

// lastVersion is the newest embedded migration.
const lastVersion = 8

type column struct {
	typ      string
	nullable bool
}

func columns(t *testing.T, db *sql.DB, table string) map[string]column {
	t.Helper()
	rows, err := db.Query(`SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?`, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]column{}
	for rows.Next() {
		var name, typ, nullable string
		if err := rows.Scan(&name, &typ, &nullable); err != nil {
			t.Fatal(err)
		}
		out[name] = column{typ: typ, nullable: nullable == "YES"}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func tables(t *testing.T, db *sql.DB) []string {
	t.Helper()
	out := queryStrings(t, db, `SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()`)
	sort.Strings(out)
	return out
}

// queryStrings returns the first column of every row of q.
func queryStrings(t *testing.T, db *sql.DB, q string, args ...any) []string {
	t.Helper()
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func xbtTables(t *testing.T, db *sql.DB) []string {
	var out []string
	for _, n := range tables(t, db) {
		if strings.HasPrefix(n, "xbt_") {
			out = append(out, n)
		}
	}
	return out
}

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func mustUp(t *testing.T, db *sql.DB) []*goose.MigrationResult {
	t.Helper()
	res, err := migrations.Up(context.Background(), db)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	return res
}

func isDuplicateKey(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1062
}

// The schema of docs/XBT-COMPAT.md §1 (classic names) plus our IPv6 deny table.
var wantSchema = map[string]map[string]string{
	"xbt_config": {"name": "varchar(255)", "value": "varchar(255)"},
	"xbt_files": {"fid": "int", "info_hash": "binary(20)", "leechers": "int", "seeders": "int",
		"completed": "int", "flags": "int", "mtime": "int", "ctime": "int"},
	"xbt_files_users": {"fid": "int", "uid": "int", "active": "tinyint", "announced": "int",
		"completed": "int", "downloaded": "bigint unsigned", "left": "bigint unsigned",
		"uploaded": "bigint unsigned", "mtime": "int"},
	"xbt_users": {"uid": "int", "torrent_pass": "char(32)", "torrent_pass_version": "int",
		"downloaded": "bigint unsigned", "uploaded": "bigint unsigned", "can_leech": "tinyint",
		"wait_time": "int", "peers_limit": "int", "torrents_limit": "int"},
	"xbt_announce_log": {"id": "bigint", "ipa": "int unsigned", "ipv6": "varbinary(16)", "port": "int",
		"event": "int", "info_hash": "binary(20)", "peer_id": "binary(20)", "downloaded": "bigint unsigned",
		"left0": "bigint unsigned", "uploaded": "bigint unsigned", "uid": "int", "mtime": "int"},
	"xbt_scrape_log": {"id": "bigint", "ipa": "int unsigned", "ipv6": "varbinary(16)",
		"info_hash": "binary(20)", "uid": "int", "mtime": "int"},
	"xbt_deny_from_hosts":   {"begin": "int unsigned", "end": "int unsigned"},
	"xbt_deny_from_hosts6":  {"begin": "varbinary(16)", "end": "varbinary(16)"},
	"xbt_client_whitelist":  {"id": "int unsigned", "peer_id": "varchar(20)", "vstring": "varchar(200)"},
	"xbt_deny_from_clients": {"peer_id": "varbinary(20)"},
	"xbt_snatched":          {"uid": "int", "tstamp": "int", "fid": "int", "IP": "varchar(39)", "seedtime": "int"},
	"xbt_freeleech_tokens":  {"uid": "int unsigned", "fid": "int unsigned", "expires": "int unsigned"},
}

// normType strips MariaDB/MySQL 5.7 display widths: int(11) -> int.
func normType(s string) string {
	for _, p := range []string{"tinyint", "bigint", "int"} {
		if strings.HasPrefix(s, p+"(") {
			rest := s[strings.Index(s, ")")+1:]
			return p + rest
		}
	}
	return s
}

func checkSchema(t *testing.T, db *sql.DB) {
	t.Helper()
	checkSchemaExcept(t, db)
}

// clientRuleTables are the tables of 00005.
var clientRuleTables = []string{"xbt_client_whitelist", "xbt_deny_from_clients"}

// checkSchemaExcept is checkSchema without the tables skip (those of a
// migration rolled back).
func checkSchemaExcept(t *testing.T, db *sql.DB, skip ...string) {
	t.Helper()
	for table, want := range wantSchema {
		if slices.Contains(skip, table) {
			continue
		}
		got := columns(t, db, table)
		if len(got) == 0 {
			t.Errorf("table %s missing", table)
			continue
		}
		for col, typ := range want {
			c, ok := got[col]
			if !ok {
				t.Errorf("%s.%s missing", table, col)
				continue
			}
			if normType(c.typ) != typ {
				t.Errorf("%s.%s type %q, want %q", table, col, c.typ, typ)
			}
			if c.nullable {
				t.Errorf("%s.%s is nullable", table, col)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s has %d columns, want %d: %v", table, len(got), len(want), got)
		}
	}
}

// strictDB opens dsn again with strict SQL mode on every connection, so an
// INSERT that leaves out a column without a default fails whatever the
// server's own sql_mode is.
func strictDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["sql_mode"] = "'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'"
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var mode string
	if err := db.QueryRow("SELECT @@SESSION.sql_mode").Scan(&mode); err != nil || !strings.Contains(mode, "STRICT_ALL_TABLES") {
		t.Fatalf("sql_mode %q, %v", mode, err)
	}
	return db
}

func TestUpOnEmptyDatabase(t *testing.T) {
	plain, dsn := dbtest.New(t)
	db := strictDB(t, dsn)
	ctx := context.Background()

	res := mustUp(t, plain)
	if len(res) != lastVersion || res[0].Source.Version != 1 || res[len(res)-1].Source.Version != lastVersion {
		t.Fatalf("Up applied %v, want versions 1 to %d", res, lastVersion)
	}
	checkSchema(t, db)

	// Catalog: only torrent_pass given, every other column defaults.
	mustExec(t, db, `INSERT INTO xbt_users(torrent_pass) VALUES('x')`)
	mustExec(t, db, `INSERT INTO xbt_users() VALUES()`)
	var (
		uid, ver, canLeech, wait, peers, torrents int
		down, up                                  uint64
		pass                                      string
	)
	err := db.QueryRow(`SELECT uid, torrent_pass, torrent_pass_version, downloaded, uploaded, can_leech,
		wait_time, peers_limit, torrents_limit FROM xbt_users WHERE torrent_pass = 'x'`).
		Scan(&uid, &pass, &ver, &down, &up, &canLeech, &wait, &peers, &torrents)
	if err != nil {
		t.Fatal(err)
	}
	if uid != 1 || pass != "x" || ver != 0 || down != 0 || up != 0 || canLeech != 1 || wait != 0 || peers != 0 || torrents != 0 {
		t.Fatalf("defaults: uid=%d pass=%q ver=%d down=%d up=%d can_leech=%d wait=%d peers=%d torrents=%d",
			uid, pass, ver, down, up, canLeech, wait, peers, torrents)
	}
	if err := db.QueryRow(`SELECT torrent_pass FROM xbt_users WHERE uid = 2`).Scan(&pass); err != nil || pass != "" {
		t.Fatalf("INSERT xbt_users() VALUES(): torrent_pass=%q err=%v", pass, err)
	}

	// Catalog: new torrent.
	const hash = "0123456789abcdef0123456789abcdef01234567"
	mustExec(t, db, `INSERT INTO xbt_files(info_hash, mtime, ctime) VALUES(UNHEX(?), UNIX_TIMESTAMP(), UNIX_TIMESTAMP())`, hash)
	var (
		fid, leechers, seeders, completed, flags int
		mtime, ctime                             int64
		gotHash                                  string
	)
	err = db.QueryRow(`SELECT fid, LOWER(HEX(info_hash)), leechers, seeders, completed, flags, mtime, ctime FROM xbt_files`).
		Scan(&fid, &gotHash, &leechers, &seeders, &completed, &flags, &mtime, &ctime)
	if err != nil {
		t.Fatal(err)
	}
	if fid != 1 || gotHash != hash || leechers != 0 || seeders != 0 || completed != 0 || flags != 0 || mtime < 1e9 || ctime < 1e9 {
		t.Fatalf("xbt_files row: fid=%d hash=%s l=%d s=%d c=%d flags=%d mtime=%d ctime=%d", fid, gotHash, leechers, seeders, completed, flags, mtime, ctime)
	}
	if _, err := db.Exec(`INSERT INTO xbt_files(info_hash, mtime, ctime) VALUES(UNHEX(?), 1, 1)`, hash); !isDuplicateKey(err) {
		t.Fatalf("duplicate info_hash: err=%v, want 1062", err)
	}

	// files_users row naming only fid, uid.
	mustExec(t, db, `INSERT INTO xbt_files_users(fid, uid) VALUES(1, 1)`)
	var active, announced, fuCompleted, fuMtime int
	var fuDown, fuLeft, fuUp uint64
	err = db.QueryRow("SELECT active, announced, completed, downloaded, `left`, uploaded, mtime FROM xbt_files_users").
		Scan(&active, &announced, &fuCompleted, &fuDown, &fuLeft, &fuUp, &fuMtime)
	if err != nil {
		t.Fatal(err)
	}
	if active != 0 || announced != 0 || fuCompleted != 0 || fuDown != 0 || fuLeft != 0 || fuUp != 0 || fuMtime != 0 {
		t.Fatalf("xbt_files_users defaults wrong")
	}
	if _, err := db.Exec(`INSERT INTO xbt_files_users(fid, uid) VALUES(1, 1)`); !isDuplicateKey(err) {
		t.Fatalf("duplicate (fid,uid): err=%v, want 1062", err)
	}
	// Unsigned 64-bit counters hold the full range.
	mustExec(t, db, `UPDATE xbt_files_users SET uploaded = 18446744073709551615`)

	// Config names are unique.
	mustExec(t, db, `INSERT INTO xbt_config(name, value) VALUES('announce_interval', '1800')`)
	if _, err := db.Exec(`INSERT INTO xbt_config(name, value) VALUES('announce_interval', '900')`); !isDuplicateKey(err) {
		t.Fatalf("duplicate config name: err=%v, want 1062", err)
	}

	// Logs and deny tables accept what the tracker writes.
	mustExec(t, db, `INSERT INTO xbt_announce_log(port, event, info_hash, peer_id, downloaded, left0, uploaded, uid, mtime)
		VALUES(6881, 2, UNHEX(?), 'ABCDEFGHIJKLMNOPQRST', 0, 0, 0, 1, UNIX_TIMESTAMP())`, hash)
	mustExec(t, db, `INSERT INTO xbt_scrape_log(uid, mtime) VALUES(1, 1)`)
	mustExec(t, db, "INSERT INTO xbt_deny_from_hosts(`begin`, `end`) VALUES(3232235520, 3232301055)")
	mustExec(t, db, "INSERT INTO xbt_deny_from_hosts6(`begin`, `end`) VALUES(UNHEX('20010db8000000000000000000000000'), UNHEX('20010db8ffffffffffffffffffffffff'))")
	var ipv6Len int
	if err := db.QueryRow("SELECT LENGTH(`end`) FROM xbt_deny_from_hosts6").Scan(&ipv6Len); err != nil || ipv6Len != 16 {
		t.Fatalf("deny6 end length %d err %v", ipv6Len, err)
	}

	st, err := migrations.Status(ctx, db)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if len(st) != lastVersion {
		t.Fatalf("Status has %d entries, want %d", len(st), lastVersion)
	}
	for _, s := range st {
		if s.State != goose.StateApplied || s.AppliedAt.IsZero() {
			t.Errorf("migration %d: state %s applied at %v", s.Source.Version, s.State, s.AppliedAt)
		}
	}
	if v, err := migrations.Version(ctx, db); err != nil || v != lastVersion {
		t.Fatalf("Version = %d, %v; want %d", v, err, lastVersion)
	}
	// Up again is a no-op.
	if res := mustUp(t, db); len(res) != 0 {
		t.Fatalf("second Up applied %d migrations", len(res))
	}
}

func TestDownToZeroAndUpAgain(t *testing.T) {
	db, _ := dbtest.New(t)
	ctx := context.Background()
	mustUp(t, db)

	res, err := migrations.DownTo(ctx, db, 0)
	if err != nil {
		t.Fatalf("DownTo(0): %v", err)
	}
	if len(res) != lastVersion {
		t.Fatalf("DownTo(0) rolled back %d migrations, want %d", len(res), lastVersion)
	}
	if left := xbtTables(t, db); len(left) != 0 {
		t.Fatalf("tables left after down to 0: %v", left)
	}
	if v, err := migrations.Version(ctx, db); err != nil || v != 0 {
		t.Fatalf("Version after DownTo(0) = %d, %v", v, err)
	}
	st, err := migrations.Status(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.State != goose.StatePending {
			t.Errorf("migration %d is %s after DownTo(0)", s.Source.Version, s.State)
		}
	}

	mustUp(t, db)
	checkSchema(t, db)

	// One step at a time. The tracker's own objects (00003, 00004, 00005)
	// go first; see tracking_test.go for what they leave behind.
	for v := int64(lastVersion); v > 2; v-- {
		if r, err := migrations.Down(ctx, db); err != nil || r.Source.Version != v {
			t.Fatalf("Down: %v, %v; want version %d rolled back", r, err, v)
		}
	}
	r, err := migrations.Down(ctx, db)
	if err != nil || r.Source.Version != 2 {
		t.Fatalf("Down: %v, %v", r, err)
	}
	if v, _ := migrations.Version(ctx, db); v != 1 {
		t.Fatalf("Version after one Down = %d, want 1", v)
	}
	checkSchemaExcept(t, db, append([]string{"xbt_snatched", "xbt_freeleech_tokens"}, clientRuleTables...)...) // 00002 Down is a no-op by design
	if r, err = migrations.Down(ctx, db); err != nil || r.Source.Version != 1 {
		t.Fatalf("second Down: %v, %v", r, err)
	}
	if left := xbtTables(t, db); len(left) != 0 {
		t.Fatalf("tables left: %v", left)
	}
	if _, err := migrations.Down(ctx, db); !errors.Is(err, goose.ErrNoNextVersion) {
		t.Fatalf("Down with nothing applied: %v, want ErrNoNextVersion", err)
	}
}

// classicXBT is a classic-named XBT database as older catalogs have it:
// xbt_config without any key, xbt_users without can_leech/wait_time/
// peers_limit/torrents_limit and without torrent_pass (older XBT schema files
// and some catalogs lack it; XBT's current schema file has it), no log tables.
var classicXBT = []string{
	`create table if not exists xbt_config
(
	name varchar(255) not null,
	value varchar(255) not null
)`,
	`create table if not exists xbt_files
(
	fid int not null auto_increment,
	info_hash binary(20) not null,
	leechers int not null default 0,
	seeders int not null default 0,
	completed int not null default 0,
	flags int not null default 0,
	mtime int not null,
	ctime int not null,
	primary key (fid),
	unique key (info_hash)
)`,
	"create table if not exists xbt_files_users\n(\n\tfid int not null,\n\tuid int not null,\n\tactive tinyint not null,\n\tannounced int not null,\n\tcompleted int not null,\n\tdownloaded bigint unsigned not null,\n\t`left` bigint unsigned not null,\n\tuploaded bigint unsigned not null,\n\tmtime int not null,\n\tunique key (fid, uid),\n\tkey (uid)\n)",
	`create table if not exists xbt_users
(
	uid int not null auto_increment,
	-- can_leech tinyint not null default 1,
	-- wait_time int not null default 0,
	-- peers_limit int not null default 0,
	-- torrent_pass char(32) not null,
	torrent_pass_version int not null default 0,
	downloaded bigint unsigned not null default 0,
	uploaded bigint unsigned not null default 0,
	primary key (uid)
)`,
}

func configRows(t *testing.T, db *sql.DB) map[string][]string {
	t.Helper()
	rows, err := db.Query(`SELECT name, value FROM xbt_config`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var n, v string
		if err := rows.Scan(&n, &v); err != nil {
			t.Fatal(err)
		}
		out[n] = append(out[n], v)
	}
	return out
}

func TestAdoptClassicXBTDatabase(t *testing.T) {
	db, _ := dbtest.New(t)
	ctx := context.Background()
	for _, ddl := range classicXBT {
		mustExec(t, db, ddl)
	}
	// A live catalog's data, duplicate config names included.
	mustExec(t, db, `INSERT INTO xbt_config(name, value) VALUES
		('announce_interval', '1800'), ('torrent_pass_private_key', 'uBm6upQ2RziQL6QkYUcTp3XNbpL'),
		('listen_port', '2710'), ('announce_interval', '900'), ('listen_port', '2711'),
		('listen_port', '2710'), ('redirect_url', 'https://example.org/'),
		('listen_ipa', '192.0.2.1'), ('listen_ipa', '::1')`)
	mustExec(t, db, `INSERT INTO xbt_users(uid, torrent_pass_version, downloaded, uploaded) VALUES
		(1, 3, 1000, 2000), (7, 0, 18446744073709551615, 5)`)
	mustExec(t, db, `INSERT INTO xbt_files(info_hash, seeders, leechers, completed, mtime, ctime) VALUES
		(UNHEX('7a0fac1e0994b78f5c74625f93fd43cfb45dc589'), 4, 2, 9, 100, 50)`)
	mustExec(t, db, "INSERT INTO xbt_files_users(fid, uid, active, announced, completed, downloaded, `left`, uploaded, mtime) VALUES (1, 7, 1, 12, 1, 300, 0, 400, 100)")

	res := mustUp(t, db)
	if len(res) != lastVersion {
		t.Fatalf("Up applied %d migrations, want %d", len(res), lastVersion)
	}
	checkSchema(t, db)

	// Data survived; added columns carry their defaults.
	type user struct {
		uid, ver                              int
		down, up                              uint64
		pass                                  string
		canLeech, wait, peersLim, torrentsLim int
	}
	var users []user
	rows, err := db.Query(`SELECT uid, torrent_pass_version, downloaded, uploaded, torrent_pass, can_leech, wait_time, peers_limit, torrents_limit FROM xbt_users ORDER BY uid`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var u user
		if err := rows.Scan(&u.uid, &u.ver, &u.down, &u.up, &u.pass, &u.canLeech, &u.wait, &u.peersLim, &u.torrentsLim); err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
	}
	rows.Close()
	want := []user{
		{uid: 1, ver: 3, down: 1000, up: 2000, canLeech: 1},
		{uid: 7, ver: 0, down: 18446744073709551615, up: 5, canLeech: 1},
	}
	if len(users) != len(want) || users[0] != want[0] || users[1] != want[1] {
		t.Fatalf("xbt_users after adoption = %+v, want %+v", users, want)
	}
	var seeders, leechers, completed int
	if err := db.QueryRow(`SELECT seeders, leechers, completed FROM xbt_files WHERE info_hash = UNHEX('7a0fac1e0994b78f5c74625f93fd43cfb45dc589')`).
		Scan(&seeders, &leechers, &completed); err != nil || seeders != 4 || leechers != 2 || completed != 9 {
		t.Fatalf("xbt_files row after adoption: %d %d %d %v", seeders, leechers, completed, err)
	}
	var announced, up int
	if err := db.QueryRow(`SELECT announced, uploaded FROM xbt_files_users WHERE fid = 1 AND uid = 7`).Scan(&announced, &up); err != nil || announced != 12 || up != 400 {
		t.Fatalf("xbt_files_users row after adoption: %d %d %v", announced, up, err)
	}
	// The catalog's usual insert works on the adopted table too.
	mustExec(t, db, `INSERT INTO xbt_users(torrent_pass) VALUES('abc')`)

	// Config: one row per name; the last duplicate (what XBT used) kept;
	// listen_port and listen_ipa values merged.
	cfg := configRows(t, db)
	wantCfg := map[string]string{
		"announce_interval":        "900",
		"torrent_pass_private_key": "uBm6upQ2RziQL6QkYUcTp3XNbpL",
		"listen_port":              "2710,2711",
		"redirect_url":             "https://example.org/",
		"listen_ipa":               "192.0.2.1,::1",
	}
	if len(cfg) != len(wantCfg) {
		t.Fatalf("config after adoption = %v", cfg)
	}
	for name, v := range wantCfg {
		if got := cfg[name]; len(got) != 1 || got[0] != v {
			t.Errorf("config %s = %q, want [%q]", name, got, v)
		}
	}
	if _, err := db.Exec(`INSERT INTO xbt_config(name, value) VALUES('announce_interval', '60')`); !isDuplicateKey(err) {
		t.Fatalf("config name not unique after adoption: %v", err)
	}

	// Rolling everything back must leave the catalog's own tables and data.
	if _, err := migrations.DownTo(ctx, db, 0); err != nil {
		t.Fatalf("DownTo(0): %v", err)
	}
	got := xbtTables(t, db)
	wantTables := []string{"xbt_config", "xbt_files", "xbt_files_users", "xbt_users"}
	if strings.Join(got, ",") != strings.Join(wantTables, ",") {
		t.Fatalf("after DownTo(0) tables = %v, want the catalog's %v", got, wantTables)
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM xbt_users`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("xbt_users rows after DownTo(0): %d %v", n, err)
	}
	// And adopting again is fine.
	mustUp(t, db)
	checkSchema(t, db)
}

// An older/odd variant: MyISAM tables, xbt_files_users without announced,
// xbt_config already keyed by name. Only what is missing changes.
func TestAdoptPartialSchema(t *testing.T) {
	db, _ := dbtest.New(t)
	mustExec(t, db, `CREATE TABLE xbt_config (name varchar(255) NOT NULL, value varchar(255) NOT NULL, UNIQUE KEY name (name)) ENGINE=MyISAM`)
	mustExec(t, db, "CREATE TABLE xbt_files_users (fid int NOT NULL, uid int NOT NULL, active tinyint NOT NULL, completed int NOT NULL, downloaded bigint unsigned NOT NULL, `left` bigint unsigned NOT NULL, uploaded bigint unsigned NOT NULL, mtime int NOT NULL, UNIQUE KEY (fid, uid), KEY (uid)) ENGINE=MyISAM")
	mustExec(t, db, `CREATE TABLE xbt_users (uid int NOT NULL AUTO_INCREMENT, torrent_pass char(32) NOT NULL, can_leech tinyint NOT NULL DEFAULT 0, downloaded bigint unsigned NOT NULL DEFAULT 0, uploaded bigint unsigned NOT NULL DEFAULT 0, PRIMARY KEY (uid))`)
	mustExec(t, db, `INSERT INTO xbt_config VALUES ('listen_port', '2710'), ('log_announce', '1')`)
	mustExec(t, db, "INSERT INTO xbt_files_users(fid, uid, active, completed, downloaded, `left`, uploaded, mtime) VALUES (5, 6, 1, 0, 10, 20, 30, 40)")
	mustExec(t, db, `INSERT INTO xbt_users(uid, torrent_pass, can_leech) VALUES (3, '0123456789abcdef0123456789abcdef', 0)`)

	mustUp(t, db)

	var announced, down int
	if err := db.QueryRow(`SELECT announced, downloaded FROM xbt_files_users WHERE fid = 5 AND uid = 6`).Scan(&announced, &down); err != nil || announced != 0 || down != 10 {
		t.Fatalf("files_users after adoption: announced=%d downloaded=%d err=%v", announced, down, err)
	}
	var pass string
	var canLeech, ver, wait int
	if err := db.QueryRow(`SELECT torrent_pass, can_leech, torrent_pass_version, wait_time FROM xbt_users WHERE uid = 3`).Scan(&pass, &canLeech, &ver, &wait); err != nil {
		t.Fatal(err)
	}
	// can_leech existed with the catalog's own default and value: untouched.
	if pass != "0123456789abcdef0123456789abcdef" || canLeech != 0 || ver != 0 || wait != 0 {
		t.Fatalf("xbt_users after adoption: %q %d %d %d", pass, canLeech, ver, wait)
	}
	var engine string
	if err := db.QueryRow(`SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_config'`).Scan(&engine); err != nil || engine != "MyISAM" {
		t.Fatalf("xbt_config engine %q (%v): existing tables must not be rebuilt", engine, err)
	}
	cfg := configRows(t, db)
	if len(cfg) != 2 || cfg["listen_port"][0] != "2710" || cfg["log_announce"][0] != "1" {
		t.Fatalf("config = %v", cfg)
	}
	// Existing unique key kept, no second primary key added.
	var keys int
	if err := db.QueryRow(`SELECT COUNT(DISTINCT INDEX_NAME) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'xbt_config'`).Scan(&keys); err != nil || keys != 1 {
		t.Fatalf("xbt_config has %d indexes (%v), want its original 1", keys, err)
	}
}

func TestStatusWithoutParseTimeExplains(t *testing.T) {
	_, dsn := dbtest.New(t)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ParseTime = false
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := migrations.Up(context.Background(), db); err != nil {
		t.Fatalf("Up without parseTime: %v", err)
	}
	_, err = migrations.Status(context.Background(), db)
	if err == nil || !strings.Contains(err.Error(), "parseTime=true") {
		t.Fatalf("Status without parseTime: err=%v, want a parseTime=true hint", err)
	}
}

func TestFSHasOrderedMigrations(t *testing.T) {
	p, err := migrations.NewProvider(&sql.DB{})
	if err != nil {
		t.Fatal(err)
	}
	src := p.ListSources()
	if len(src) != lastVersion || src[0].Version != 1 || src[len(src)-1].Version != lastVersion {
		t.Fatalf("sources %v", src)
	}
}

// XBT's current (HEAD) Tracker/xbt_tracker.sql, verbatim in substance:
// xbt_torrents/xbt_peers keyed by tid, no announced, no torrent_pass.
var headXBT = []string{
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

func TestUpOnHEADNamedDatabase(t *testing.T) {
	db, _ := dbtest.New(t)
	for _, q := range headXBT {
		mustExec(t, db, q)
	}
	mustExec(t, db, "INSERT INTO xbt_peers(tid, uid, active, completed, downloaded, `left`, uploaded, mtime) VALUES (1, 2, 1, 0, 5, 6, 7, 8)")
	mustUp(t, db)
	peers := columns(t, db, "xbt_peers")
	if len(peers) != 8 {
		t.Fatalf("xbt_peers was changed: %v", peers)
	}
	if _, ok := columns(t, db, "xbt_users")["can_leech"]; !ok {
		t.Fatal("xbt_users.can_leech not added")
	}
	if _, err := migrations.DownTo(context.Background(), db, 0); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(xbtTables(t, db), ",")
	if got != "xbt_config,xbt_peers,xbt_torrents,xbt_users" {
		t.Fatalf("after DownTo(0): %s", got)
	}
	var up int
	if err := db.QueryRow("SELECT uploaded FROM xbt_peers WHERE tid = 1 AND uid = 2").Scan(&up); err != nil || up != 7 {
		t.Fatalf("xbt_peers row: %d %v", up, err)
	}
}

// upTo applies the main set up to version v: a database as a catalog had it
// before migration v+1.
func upTo(t *testing.T, db *sql.DB, v int64) {
	t.Helper()
	p, err := migrations.NewProvider(db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(context.Background(), v); err != nil {
		t.Fatal(err)
	}
}
