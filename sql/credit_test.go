package sql

import (
	"context"
	gosql "database/sql"
	"maps"
	"strings"
	"testing"

	"github.com/xbt-tracker/xbt-tracker/migrations"
	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// extrasDB is writerDB with the opt-in extras applied too (the credit
// factor columns and their indexes).
func extrasDB(t *testing.T) (*gosql.DB, Schema) {
	t.Helper()
	ctx := context.Background()
	db, _, _ := writerDB(t, "")
	if _, err := migrations.Extras.Up(ctx, db); err != nil {
		t.Fatalf("migrations.Extras.Up: %v", err)
	}
	s, warnings, err := CheckSchema(ctx, db, DefaultNames())
	if err != nil || len(warnings) != 0 {
		t.Fatalf("CheckSchema with extras: %q %v", warnings, err)
	}
	return db, s
}

// notesOn returns the notes of s that start with prefix: each feature's
// tests look at its own notes only.
func notesOn(s Schema, prefix string) []string {
	var out []string
	for _, n := range s.Notes() {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out
}

// creditNotes returns the notes about credit factors.
func creditNotes(s Schema) []string { return notesOn(s, "schema: credit factors: ") }

func factors(up, down uint32) tracker.Factors {
	return tracker.Factors{Up: tracker.Percent(up), Down: tracker.Percent(down)}
}

// wantRules compares r with the wanted maps (nil and empty alike).
func wantRules(t *testing.T, r *tracker.CreditRules, torrents, users map[uint32]tracker.Factors, tokens map[tracker.FileUserKey]int64) {
	t.Helper()
	if r == nil {
		r = &tracker.CreditRules{}
	}
	if !maps.Equal(r.Torrents, torrents) {
		t.Errorf("torrents %v, want %v", r.Torrents, torrents)
	}
	if !maps.Equal(r.Users, users) {
		t.Errorf("users %v, want %v", r.Users, users)
	}
	if !maps.Equal(r.Tokens, tokens) {
		t.Errorf("tokens %v, want %v", r.Tokens, tokens)
	}
}

// With the extras: the torrents and users whose factors are not 100 each
// come back, the 100/100 ones do not; tokens not expired come back.
func TestLoaderCreditRules(t *testing.T) {
	ctx := context.Background()
	db, s := extrasDB(t)
	if !s.HasFilesUpMulti || !s.HasFilesDownMulti || !s.HasUsersUpMulti || !s.HasUsersDownMulti || !s.HasFreeleechTokens {
		t.Fatalf("schema with extras: %+v", s)
	}
	if n := creditNotes(s); len(n) != 0 {
		t.Fatalf("credit notes with everything there: %q", n)
	}
	l := NewLoader(db, s)
	if r, err := l.CreditRules(ctx); err != nil || r != nil {
		t.Fatalf("nothing set: %+v, %v; want nil", r, err)
	}

	seedFiles(t, db, 1, 2, 3, 4, 5)
	seedUsers(t, db, 1, 2, 3)
	mustExec(t, db, "UPDATE xbt_files SET down_multi = 0 WHERE fid = 2")                       // freeleech
	mustExec(t, db, "UPDATE xbt_files SET up_multi = 200 WHERE fid = 3")                       // double upload
	mustExec(t, db, "UPDATE xbt_files SET up_multi = 200, down_multi = 50 WHERE fid = 4")      // both
	mustExec(t, db, "UPDATE xbt_files SET up_multi = 65535, down_multi = 65535 WHERE fid = 5") // the column's largest
	mustExec(t, db, "UPDATE xbt_users SET up_multi = 150 WHERE uid = 2")
	mustExec(t, db, "UPDATE xbt_users SET down_multi = 0 WHERE uid = 3")
	mustExec(t, db, `INSERT INTO xbt_freeleech_tokens VALUES
		(1, 2, 4000000000),              -- valid
		(1, 3, UNIX_TIMESTAMP() - 10),   -- expired
		(2, 2, UNIX_TIMESTAMP()),        -- expires now: no longer counts
		(3, 1, 4294967295)`)
	r, err := l.CreditRules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantRules(t, r,
		map[uint32]tracker.Factors{2: factors(100, 0), 3: factors(200, 100), 4: factors(200, 50), 5: factors(65535, 65535)},
		map[uint32]tracker.Factors{2: factors(150, 100), 3: factors(100, 0)},
		map[tracker.FileUserKey]int64{{Fid: 2, UID: 1}: 4000000000, {Fid: 1, UID: 3}: 4294967295})
	// The change poll's part: the same valid tokens, nothing else.
	tokens, err := l.FreeleechTokens(ctx)
	if err != nil || !maps.Equal(tokens, r.Tokens) {
		t.Fatalf("FreeleechTokens: %v, %v; want %v", tokens, err, r.Tokens)
	}

	// Back to 100: gone at the next read.
	mustExec(t, db, "UPDATE xbt_files SET up_multi = 100, down_multi = 100")
	mustExec(t, db, "UPDATE xbt_users SET up_multi = 100, down_multi = 100")
	mustExec(t, db, "DELETE FROM xbt_freeleech_tokens")
	if r, err := l.CreditRules(ctx); err != nil || r != nil {
		t.Fatalf("all back to 100: %+v, %v; want nil", r, err)
	}
}

// Catalog-shaped factor columns (signed, nullable, no index): NULL is
// 100 %, negative 0 %, too large is clamped; rows whose key the tracker
// cannot have are skipped. Without an index each column is a warning.
func TestLoaderCreditRulesCatalogValues(t *testing.T) {
	ctx := context.Background()
	db, _, _ := writerDB(t, "")
	mustExec(t, db, "ALTER TABLE xbt_files ADD COLUMN up_multi int NULL, ADD COLUMN down_multi int NULL")
	mustExec(t, db, "ALTER TABLE xbt_users ADD COLUMN up_multi bigint NULL DEFAULT 100, ADD COLUMN down_multi bigint NULL DEFAULT 100")
	tests := []struct {
		up, down string // SQL values
		want     *tracker.Factors
	}{
		{"NULL", "NULL", nil},
		{"100", "NULL", nil},
		{"NULL", "0", &tracker.Factors{Up: tracker.Percent(100), Down: tracker.Percent(0)}},
		{"-5", "100", &tracker.Factors{Up: tracker.Percent(0), Down: tracker.Percent(100)}},
		{"-1", "-2147483648", &tracker.Factors{Up: tracker.Percent(0), Down: tracker.Percent(0)}},
		{"2000000", "100", &tracker.Factors{Up: tracker.Percent(tracker.MaxPercent), Down: tracker.Percent(100)}},
		{"100", "100001", &tracker.Factors{Up: tracker.Percent(100), Down: tracker.Percent(tracker.MaxPercent)}},
		{"100000", "99999", &tracker.Factors{Up: tracker.Percent(100000), Down: tracker.Percent(99999)}},
	}
	wantTorrents := map[uint32]tracker.Factors{}
	for i, tc := range tests {
		fid := uint32(i + 1)
		h := hashOf(int(fid))
		mustExec(t, db, "INSERT INTO xbt_files (fid, info_hash, mtime, ctime, up_multi, down_multi) VALUES (?, ?, 1, 1, "+tc.up+", "+tc.down+")", fid, h[:])
		if tc.want != nil {
			wantTorrents[fid] = *tc.want
		}
	}
	// Keys out of 1..2^32-1 (xbt_files.fid and xbt_users.uid are signed).
	mustExec(t, db, "INSERT INTO xbt_files (fid, info_hash, mtime, ctime, up_multi, down_multi) VALUES (-3, 'negative-fid-3456789', 1, 1, 0, 0)")
	mustExec(t, db, "INSERT INTO xbt_users (uid, up_multi, down_multi) VALUES (-1, 0, 0), (7, NULL, 300), (8, 100, 100)")

	s, warnings, err := CheckSchema(ctx, db, DefaultNames())
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 4 {
		t.Fatalf("%d warnings, want one per unindexed column: %q", len(warnings), warnings)
	}
	r, err := NewLoader(db, s).CreditRules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantRules(t, r, wantTorrents, map[uint32]tracker.Factors{7: factors(100, 300)}, nil)
}

// One column of the two (a catalog that has only a freeleech switch, or only
// a class upload bonus): it is read, the other is 100 %, and the note names
// the missing one.
func TestLoaderCreditRulesOneColumn(t *testing.T) {
	tests := []struct {
		name      string
		ddl       []string
		update    string
		want      [4]bool // files up, files down, users up, users down
		torrents  map[uint32]tracker.Factors
		users     map[uint32]tracker.Factors
		noteParts []string
	}{
		{
			name:     "files down_multi only",
			ddl:      []string{"ALTER TABLE xbt_files ADD COLUMN down_multi tinyint unsigned NOT NULL DEFAULT 100, ADD INDEX fl (down_multi)"},
			update:   "UPDATE xbt_files SET down_multi = 0 WHERE fid = 2",
			want:     [4]bool{false, true, false, false},
			torrents: map[uint32]tracker.Factors{2: factors(100, 0)},
			noteParts: []string{
				"xbt_files has no column up_multi: on every torrent uploads count 100 %",
				"xbt_users has no column up_multi or down_multi: every user's uploads and downloads count 100 %",
			},
		},
		{
			name:   "users up_multi only",
			ddl:    []string{"ALTER TABLE xbt_users ADD COLUMN up_multi smallint NOT NULL DEFAULT 100, ADD INDEX bonus (up_multi, uid)"},
			update: "UPDATE xbt_users SET up_multi = 125 WHERE uid = 3",
			want:   [4]bool{false, false, true, false},
			users:  map[uint32]tracker.Factors{3: factors(125, 100)},
			noteParts: []string{
				"xbt_files has no column up_multi or down_multi",
				"xbt_users has no column down_multi: every user's downloads count 100 % (\"xbt-tracker migrate up --extras\" adds it)",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			db, _, _ := writerDB(t, "")
			for _, q := range tc.ddl {
				mustExec(t, db, q)
			}
			seedFiles(t, db, 1, 2)
			seedUsers(t, db, 3, 4)
			mustExec(t, db, tc.update)
			s, warnings, err := CheckSchema(ctx, db, DefaultNames())
			if err != nil || len(warnings) != 0 {
				t.Fatalf("CheckSchema: %q %v", warnings, err)
			}
			if got := [4]bool{s.HasFilesUpMulti, s.HasFilesDownMulti, s.HasUsersUpMulti, s.HasUsersDownMulti}; got != tc.want {
				t.Fatalf("detected %v, want %v", got, tc.want)
			}
			notes := creditNotes(s)
			if len(notes) != len(tc.noteParts) {
				t.Fatalf("notes %q", notes)
			}
			for i, p := range tc.noteParts {
				if !strings.Contains(notes[i], p) {
					t.Errorf("note %q, want it to contain %q", notes[i], p)
				}
			}
			r, err := NewLoader(db, s).CreditRules(ctx)
			if err != nil {
				t.Fatal(err)
			}
			wantRules(t, r, tc.torrents, tc.users, nil)
		})
	}
}

// A database without any of it (migrate up from before 00007, no extras):
// no rules, not one query, a note each and no warning.
func TestLoaderCreditRulesNothingThere(t *testing.T) {
	ctx := context.Background()
	db, _, dsn := writerDB(t, "")
	mustExec(t, db, "DROP TABLE xbt_freeleech_tokens")
	s, warnings, err := CheckSchema(ctx, db, DefaultNames())
	if err != nil || len(warnings) != 0 {
		t.Fatalf("CheckSchema: %q %v", warnings, err)
	}
	if s.HasFilesUpMulti || s.HasFilesDownMulti || s.HasUsersUpMulti || s.HasUsersDownMulti || s.HasFreeleechTokens {
		t.Fatalf("detected what is not there: %+v", s)
	}
	notes := creditNotes(s)
	if len(notes) != 3 || !strings.Contains(notes[0], "xbt_files") || !strings.Contains(notes[1], "xbt_users") ||
		!strings.Contains(notes[2], "xbt_freeleech_tokens") || !strings.Contains(notes[0], "--extras") {
		t.Fatalf("notes %q", notes)
	}
	// A closed pool fails any query: the loader must not send one.
	closed, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	if r, err := NewLoader(closed, s).CreditRules(ctx); err != nil || r != nil {
		t.Fatalf("nothing there: %+v, %v; want nil, nil", r, err)
	}
	if tk, err := NewLoader(closed, s).FreeleechTokens(ctx); err != nil || tk != nil {
		t.Fatalf("no token table: %v, %v; want nil, nil", tk, err)
	}
	// The same loader with the columns claimed present does query, and
	// fails: the test above can fail.
	s.HasFilesUpMulti = true
	if _, err := NewLoader(closed, s).CreditRules(ctx); err == nil || !strings.Contains(err.Error(), "xbt_files") {
		t.Fatalf("query on a closed pool: %v, want an error naming xbt_files", err)
	}
}

// A token table of another shape is a warning and is not read; a failing
// token query names the table.
func TestLoaderCreditRulesTokenTable(t *testing.T) {
	ctx := context.Background()
	db, _, _ := writerDB(t, "")
	mustExec(t, db, "DROP TABLE xbt_freeleech_tokens")
	mustExec(t, db, "CREATE TABLE xbt_freeleech_tokens (UserID int NOT NULL, TorrentID int NOT NULL, Expired tinyint NOT NULL)")
	s, warnings, err := CheckSchema(ctx, db, DefaultNames())
	if err != nil || s.HasFreeleechTokens || len(warnings) != 1 || !strings.HasPrefix(warnings[0], "schema: xbt_freeleech_tokens has no column") {
		t.Fatalf("other shape: %v %q %v", s.HasFreeleechTokens, warnings, err)
	}
	if r, err := NewLoader(db, s).CreditRules(ctx); err != nil || r != nil {
		t.Fatalf("table not read: %+v %v", r, err)
	}
	s.HasFreeleechTokens = true
	if _, err := NewLoader(db, s).CreditRules(ctx); err == nil || !strings.Contains(err.Error(), "load xbt_freeleech_tokens") {
		t.Fatalf("token query on a table without its columns: %v", err)
	}

	// A catalog's own table with signed columns: keys out of range skipped.
	mustExec(t, db, "DROP TABLE xbt_freeleech_tokens")
	mustExec(t, db, "CREATE TABLE xbt_freeleech_tokens (uid int NOT NULL, fid int NOT NULL, expires bigint NOT NULL)")
	mustExec(t, db, "INSERT INTO xbt_freeleech_tokens VALUES (-1, 1, 4000000000), (1, 0, 4000000000), (1, 1, 4000000000), (2, 1, -5)")
	if s, _, err = CheckSchema(ctx, db, DefaultNames()); err != nil || !s.HasFreeleechTokens {
		t.Fatalf("catalog's table: %v %v", s.HasFreeleechTokens, err)
	}
	r, err := NewLoader(db, s).CreditRules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantRules(t, r, nil, nil, map[tracker.FileUserKey]int64{{Fid: 1, UID: 1}: 4000000000})
}

// The factors are read with the configured names (XBT HEAD: xbt_torrents
// keyed by tid); the extras do not cover those, which the note and the
// warning say.
func TestLoaderCreditRulesConfiguredNames(t *testing.T) {
	ctx := context.Background()
	db, _, _ := writerDB(t, "")
	for _, q := range headSchema {
		mustExec(t, db, strings.Replace(q, "xbt_users", "xbt_users_head", 1))
	}
	mustExec(t, db, "ALTER TABLE xbt_torrents ADD COLUMN down_multi int NOT NULL DEFAULT 100")
	mustExec(t, db, "ALTER TABLE xbt_users_head CHANGE uid user_id int NOT NULL AUTO_INCREMENT, ADD COLUMN up_multi int NOT NULL DEFAULT 100, ADD COLUMN down_multi int NOT NULL DEFAULT 100, ADD INDEX u (up_multi), ADD INDEX d (down_multi)")
	mustExec(t, db, "INSERT INTO xbt_torrents (tid, info_hash, mtime, ctime, down_multi) VALUES (9, 'head-torrent-9-34567', 1, 1, 0), (10, 'head-torrent-10-4567', 1, 1, 100)")
	mustExec(t, db, "INSERT INTO xbt_users_head (user_id, up_multi) VALUES (4, 300), (5, 100)")
	n := DefaultNames()
	n.Files, n.FilesUsers, n.FilesFid, n.Users, n.UsersUID = "xbt_torrents", "xbt_peers", "tid", "xbt_users_head", "user_id"
	s, warnings, err := CheckSchema(ctx, db, n)
	if err != nil {
		t.Fatal(err)
	}
	var unindexed []string
	for _, w := range warnings {
		if strings.Contains(w, "has no index") {
			unindexed = append(unindexed, w)
		}
	}
	if len(unindexed) != 1 || !strings.Contains(unindexed[0], "ALTER TABLE xbt_torrents ADD INDEX xbt_tracker_down_multi (down_multi)") ||
		strings.Contains(unindexed[0], "--extras") {
		t.Fatalf("unindexed warnings %q", unindexed)
	}
	notes := creditNotes(s)
	if len(notes) != 1 || !strings.Contains(notes[0], "xbt_torrents has no column up_multi") || strings.Contains(notes[0], "--extras") {
		t.Fatalf("notes %q", notes)
	}
	r, err := NewLoader(db, s).CreditRules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantRules(t, r, map[uint32]tracker.Factors{9: factors(100, 0)}, map[uint32]tracker.Factors{4: factors(300, 100)},
		map[tracker.FileUserKey]int64(nil))
}

// A factor column needs an index that starts with it, or every reload
// scans the table: one warning per column without one, naming the fix.
func TestCheckSchemaUnindexedFactors(t *testing.T) {
	tests := []struct {
		name string
		ddl  string
		want []string // fragments of the one warning; nil: none
	}{
		{"extras indexes", "", nil},
		{"index dropped", "ALTER TABLE xbt_users DROP INDEX xbt_tracker_up_multi", []string{
			"schema: xbt_users.up_multi has no index starting with it: every reload scans xbt_users",
			`ALTER TABLE xbt_users ADD INDEX xbt_tracker_up_multi (up_multi), or "xbt-tracker migrate up --extras"`,
		}},
		{"catalog's composite index starting with it", "ALTER TABLE xbt_files DROP INDEX xbt_tracker_down_multi, ADD INDEX dl (down_multi, fid)", nil},
		{"only an index with it second", "ALTER TABLE xbt_files DROP INDEX xbt_tracker_down_multi, ADD INDEX dl (fid, down_multi)", []string{
			"schema: xbt_files.down_multi has no index starting with it",
			"ALTER TABLE xbt_files ADD INDEX xbt_tracker_down_multi (down_multi)",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			db, _ := extrasDB(t)
			if tc.ddl != "" {
				mustExec(t, db, tc.ddl)
			}
			s, warnings, err := CheckSchema(ctx, db, DefaultNames())
			if err != nil {
				t.Fatal(err)
			}
			if !s.HasFilesDownMulti || !s.HasUsersUpMulti {
				t.Fatalf("columns not detected: %+v", s)
			}
			if tc.want == nil {
				if len(warnings) != 0 {
					t.Fatalf("warnings %q", warnings)
				}
				return
			}
			if len(warnings) != 1 || strings.Contains(warnings[0], "\n") {
				t.Fatalf("warnings %q, want one line", warnings)
			}
			for _, f := range tc.want {
				if !strings.Contains(warnings[0], f) {
					t.Errorf("warning %q lacks %q", warnings[0], f)
				}
			}
		})
	}
}
