package sql

import (
	"context"
	gosql "database/sql"
	"fmt"
	"strings"

	sq "github.com/Masterminds/squirrel"
)

// Schema is what CheckSchema found: the names in use plus which optional
// XBT columns and tables exist.
type Schema struct {
	Names

	// FilesUsersFid is the torrent key column of the files_users table:
	// "fid" (classic) or "tid" (XBT HEAD renamed it), or column_files_fid
	// when that is what the table has.
	FilesUsersFid string

	// HasTorrentPass: xbt_users.torrent_pass exists (legacy 32-character
	// passkeys). Older XBT schemas and some catalogs lack the column, so it
	// is optional like in XBT.
	HasTorrentPass bool

	HasTorrentPassVersion, HasCanLeech, HasWaitTime, HasPeersLimit, HasTorrentsLimit bool
	HasAnnounced                                                                     bool

	// HasTimeSpent, HasLeechTime: xbt_files_users has timespent (seconds
	// seeding, Gazelle's name) and leechtime (seconds leeching). Added by
	// "migrate up --extras" or by the catalog; without them nothing is
	// written, as before: no warning (a note, like the client rules).
	HasTimeSpent, HasLeechTime                                        bool
	HasAnnounceLog, HasScrapeLog, HasDenyFromHosts, HasDenyFromHosts6 bool

	// HasClientWhitelist, HasDenyFromClients: the client rule tables
	// (ClientWhitelistTable, DenyFromClientsTable) exist with a peer_id
	// column. Without them there is no such rule, as before migration
	// 00005; that is normal, so it is a note, not a warning.
	HasClientWhitelist, HasDenyFromClients bool

	// HasSnatched: the completion log table (Names.Snatched, Gazelle's
	// xbt_snatched) exists with uid and fid columns. Without it no
	// completion is logged, as before migration 00006: no warning.
	HasSnatched bool

	// HasFilesUpMulti, HasFilesDownMulti, HasUsersUpMulti,
	// HasUsersDownMulti: Names.Files and Names.Users have the credit factor
	// columns up_multi and down_multi (percent; "migrate up --extras" adds
	// them). HasFreeleechTokens: FreeleechTokensTable exists with uid, fid
	// and expires. Without them every torrent and user credits 100 % and
	// there is no token, as before issue 15: a note, not a warning.
	HasFilesUpMulti, HasFilesDownMulti, HasUsersUpMulti, HasUsersDownMulti bool
	HasFreeleechTokens                                                     bool
}

// Notes returns informational lines about optional features that are off
// because their table or column is not there (serve logs them at info
// level, once, at start): a missing client rule table, credit factor column
// or token table is normal (they are opt-in), so not a warning.
func (s Schema) Notes() []string {
	var out []string
	if !s.HasClientWhitelist {
		out = append(out, "schema: client rules: no allow list (table "+ClientWhitelistTable+" not in use): every client may announce")
	}
	if !s.HasDenyFromClients {
		out = append(out, "schema: client rules: no deny list (table "+DenyFromClientsTable+" not in use): no client is refused by peer_id")
	}
	factors := func(table, what string, up, down bool) {
		var cols, counts []string
		if !up {
			cols, counts = append(cols, "up_multi"), append(counts, "uploads")
		}
		if !down {
			cols, counts = append(cols, "down_multi"), append(counts, "downloads")
		}
		if len(cols) == 0 {
			return
		}
		fix := `"xbt-tracker migrate up --extras" adds `
		if len(cols) == 1 {
			fix += "it"
		} else {
			fix += "them"
		}
		if !extrasCover(table) {
			fix = "the extras migration covers only xbt_files and xbt_users: add with ALTER TABLE " + table + " ADD COLUMN ... smallint unsigned NOT NULL DEFAULT 100"
		}
		out = append(out, fmt.Sprintf("schema: credit factors: %s has no column %s: %s %s count 100 %% (%s)",
			table, strings.Join(cols, " or "), what, strings.Join(counts, " and "), fix))
	}
	factors(s.Files, "on every torrent", s.HasFilesUpMulti, s.HasFilesDownMulti)
	factors(s.Users, "every user's", s.HasUsersUpMulti, s.HasUsersDownMulti)
	if !s.HasFreeleechTokens {
		out = append(out, "schema: credit factors: no freeleech tokens (table "+FreeleechTokensTable+` not in use; "xbt-tracker migrate up" creates it)`)
	}
	return out
}

// extrasCover reports whether the extras migration adds the credit factor
// columns and indexes to table: it knows only the classic names.
func extrasCover(table string) bool { return table == "xbt_files" || table == "xbt_users" }

// The client rule tables (issue 15). Their names are fixed, the de facto
// ones of the XBT family: Gazelle's allow list and the deny list XBT's own
// schema file sketches.
const (
	ClientWhitelistTable = "xbt_client_whitelist"
	DenyFromClientsTable = "xbt_deny_from_clients"
)

// FreeleechTokensTable holds the personal freeleech tokens (issue 15,
// migration 00007): (uid, fid, expires). Its name is fixed like the client
// rule tables': it is the tracker's own, not one of XBT's configurable ones.
const FreeleechTokensTable = "xbt_freeleech_tokens" //nolint:gosec // G101: a table name ("tokens"), not a credential

// SchemaError lists every missing required table or column. Its message is
// one line.
type SchemaError struct {
	Missing      []string // e.g. `table xbt_users has no column "uploaded" (required)`
	TableMissing bool     // at least one whole table is missing
}

func (e *SchemaError) Error() string {
	fix := `run "xbt-tracker migrate up" or add the column`
	if len(e.Missing) > 1 {
		fix += "s"
	}
	if e.TableMissing {
		fix = `run "xbt-tracker migrate up", or set the table_* settings if your tables have other names`
	}
	return "schema: " + strings.Join(e.Missing, "; ") + ": " + fix + "; see docs/ADOPTING.md"
}

// tableColumns maps a table name to the lower-cased names of its columns.
type tableColumns map[string]map[string]bool

func (tc tableColumns) has(table, column string) bool {
	return tc[table][strings.ToLower(column)]
}

// CheckSchema validates n and reads information_schema.COLUMNS of the
// current database once. A missing required table or column returns a
// *SchemaError (one line naming each and the fix). Each missing optional
// column or table yields one warning line describing how the tracker
// degrades (like XBT does).
func CheckSchema(ctx context.Context, db *gosql.DB, n Names) (Schema, []string, error) {
	s := Schema{Names: n}
	if err := n.Validate(); err != nil {
		return s, nil, fmt.Errorf("schema: bad table/column settings:\n%w", err)
	}

	var dbName gosql.NullString
	if err := db.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&dbName); err != nil {
		return s, nil, fmt.Errorf("schema: %w", err)
	}
	if !dbName.Valid || dbName.String == "" {
		return s, nil, fmt.Errorf("schema: no database selected: name it in the DSN, e.g. %s", DSNExample)
	}

	tables := []string{n.Config, n.Files, n.FilesUsers, n.Users, n.AnnounceLog, n.ScrapeLog, n.DenyFromHosts, n.DenyFromHosts6,
		ClientWhitelistTable, DenyFromClientsTable, n.Snatched, FreeleechTokensTable}
	tc, err := readTableColumns(ctx, db, "COLUMNS", sq.Eq{"TABLE_SCHEMA": dbName.String, "TABLE_NAME": tables})
	if err != nil {
		return s, nil, err
	}

	serr := &SchemaError{}
	requireTable := func(table, key string) bool {
		if tc[table] != nil {
			return true
		}
		serr.Missing = append(serr.Missing, fmt.Sprintf("table %s does not exist (required; setting %s)", table, key))
		serr.TableMissing = true
		return false
	}
	require := func(table string, columns ...string) {
		for _, c := range columns {
			if !tc.has(table, c) {
				serr.Missing = append(serr.Missing, fmt.Sprintf("table %s has no column %q (required)", table, c))
			}
		}
	}
	var warnings []string
	optional := func(table, column, effect string) bool {
		if tc[table] == nil { // table missing: already an error
			return false
		}
		if tc.has(table, column) {
			return true
		}
		warnings = append(warnings, fmt.Sprintf(`schema: %s has no column %q: %s; run "xbt-tracker migrate up" to add it`, table, column, effect))
		return false
	}
	optionalTable := func(table, effect string) bool {
		if tc[table] != nil {
			return true
		}
		warnings = append(warnings, fmt.Sprintf(`schema: table %s does not exist: %s; run "xbt-tracker migrate up" to create it`, table, effect))
		return false
	}

	if requireTable(n.Config, "table_config") {
		require(n.Config, "name", "value")
	}
	if requireTable(n.Users, "table_users") {
		require(n.Users, n.UsersUID, "downloaded", "uploaded")
		s.HasTorrentPass = optional(n.Users, "torrent_pass", "legacy 32-character torrent_pass passkeys are not accepted (derived passkeys work)")
		s.HasTorrentPassVersion = optional(n.Users, "torrent_pass_version", "passkeys use version 0 and cannot be revoked by bumping it")
		s.HasCanLeech = optional(n.Users, "can_leech", "every user may leech (XBT behaviour)")
		s.HasWaitTime = optional(n.Users, "wait_time", "no user has a wait time (XBT behaviour)")
		s.HasPeersLimit = optional(n.Users, "peers_limit", "no per-user peers limit (XBT behaviour)")
		s.HasTorrentsLimit = optional(n.Users, "torrents_limit", "no per-user torrents limit (XBT behaviour)")
		s.HasUsersUpMulti = tc.has(n.Users, "up_multi")
		s.HasUsersDownMulti = tc.has(n.Users, "down_multi")
	}
	if requireTable(n.Files, "table_files") {
		require(n.Files, n.FilesFid, "info_hash", n.FilesLeechers, n.FilesSeeders, n.FilesCompleted, "flags", "mtime", "ctime")
		s.HasFilesUpMulti = tc.has(n.Files, "up_multi")
		s.HasFilesDownMulti = tc.has(n.Files, "down_multi")
	}
	if requireTable(n.FilesUsers, "table_files_users") {
		for _, c := range []string{n.FilesFid, "fid", "tid"} {
			if tc.has(n.FilesUsers, c) {
				s.FilesUsersFid = c
				break
			}
		}
		if s.FilesUsersFid == "" {
			serr.Missing = append(serr.Missing, fmt.Sprintf("table %s has neither column \"fid\" nor \"tid\" (required)", n.FilesUsers))
		}
		require(n.FilesUsers, "uid", "active", "completed", "downloaded", "left", "uploaded", "mtime")
		s.HasAnnounced = optional(n.FilesUsers, "announced", "announce counts per user and torrent are not written")
		s.HasTimeSpent = tc.has(n.FilesUsers, "timespent")
		s.HasLeechTime = tc.has(n.FilesUsers, "leechtime")
	}
	s.HasAnnounceLog = optionalTable(n.AnnounceLog, "log_announce=1 cannot be honoured")
	s.HasScrapeLog = optionalTable(n.ScrapeLog, "log_scrape=1 cannot be honoured")
	s.HasDenyFromHosts = optionalTable(n.DenyFromHosts, "no IPv4 address ranges are denied")
	s.HasDenyFromHosts6 = optionalTable(n.DenyFromHosts6, "no IPv6 address ranges are denied")
	clientRule := func(table, effect string) bool {
		switch {
		case tc[table] == nil: // normal: see Notes
			return false
		case !tc.has(table, "peer_id"):
			warnings = append(warnings, fmt.Sprintf(`schema: %s has no column "peer_id": %s`, table, effect))
			return false
		}
		return true
	}
	s.HasClientWhitelist = clientRule(ClientWhitelistTable, "no client allow list, every client may announce")
	s.HasDenyFromClients = clientRule(DenyFromClientsTable, "no client is denied by peer_id")
	if tc[n.Snatched] != nil {
		s.HasSnatched = tc.has(n.Snatched, "uid") && tc.has(n.Snatched, "fid")
		if !s.HasSnatched {
			warnings = append(warnings, fmt.Sprintf(`schema: %s has no column "uid" or "fid": completions are not logged`, n.Snatched))
		}
	}
	if tc[FreeleechTokensTable] != nil {
		s.HasFreeleechTokens = tc.has(FreeleechTokensTable, "uid") && tc.has(FreeleechTokensTable, "fid") && tc.has(FreeleechTokensTable, "expires")
		if !s.HasFreeleechTokens {
			warnings = append(warnings, fmt.Sprintf(`schema: %s has no column "uid", "fid" or "expires": freeleech tokens are ignored`, FreeleechTokensTable))
		}
	}
	w, err := unindexedFactors(ctx, db, dbName.String, s)
	if err != nil {
		return s, warnings, err
	}
	warnings = append(warnings, w...)

	if len(serr.Missing) > 0 {
		return s, warnings, serr
	}
	return s, warnings, nil
}

// unindexedFactors returns a warning for each credit factor column without
// an index that starts with it: the Loader reads the rows whose factor is
// not 100 at every reload, and without such an index that is a scan of the
// whole table (a million rows) each time. It still works, so it is not an
// error.
func unindexedFactors(ctx context.Context, db *gosql.DB, dbName string, s Schema) ([]string, error) {
	if !s.HasFilesUpMulti && !s.HasFilesDownMulti && !s.HasUsersUpMulti && !s.HasUsersDownMulti {
		return nil, nil
	}
	indexed, err := readTableColumns(ctx, db, "STATISTICS", sq.Eq{
		"TABLE_SCHEMA": dbName, "TABLE_NAME": []string{s.Files, s.Users},
		"COLUMN_NAME": []string{"up_multi", "down_multi"}, "SEQ_IN_INDEX": 1,
	})
	if err != nil {
		return nil, err
	}
	var warnings []string
	for _, c := range []struct {
		has           bool
		table, column string
	}{
		{s.HasFilesUpMulti, s.Files, "up_multi"},
		{s.HasFilesDownMulti, s.Files, "down_multi"},
		{s.HasUsersUpMulti, s.Users, "up_multi"},
		{s.HasUsersDownMulti, s.Users, "down_multi"},
	} {
		if !c.has || indexed.has(c.table, c.column) {
			continue
		}
		fix := fmt.Sprintf("ALTER TABLE %s ADD INDEX xbt_tracker_%s (%s)", c.table, c.column, c.column)
		if extrasCover(c.table) {
			fix += `, or "xbt-tracker migrate up --extras" if not applied yet`
		}
		warnings = append(warnings, fmt.Sprintf("schema: %s.%s has no index starting with it: every reload scans %s for the rows whose factor is not 100; add one: %s",
			c.table, c.column, c.table, fix))
	}
	return warnings, nil
}

// readTableColumns reads the (TABLE_NAME, COLUMN_NAME) rows of
// information_schema.view that match where: the columns of tables
// (COLUMNS), or the columns that start an index (STATISTICS).
func readTableColumns(ctx context.Context, db *gosql.DB, view string, where sq.Eq) (tableColumns, error) {
	query, args, err := sq.Select("TABLE_NAME", "COLUMN_NAME").From("information_schema." + view).Where(where).ToSql()
	if err != nil {
		return nil, fmt.Errorf("schema: build query: %w", err)
	}
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("schema: read information_schema.%s: %w", view, err)
	}
	defer rows.Close()
	tc := tableColumns{}
	for rows.Next() {
		var table, column string
		if err := rows.Scan(&table, &column); err != nil {
			return nil, fmt.Errorf("schema: read information_schema.%s: %w", view, err)
		}
		if tc[table] == nil {
			tc[table] = map[string]bool{}
		}
		tc[table][strings.ToLower(column)] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("schema: read information_schema.%s: %w", view, err)
	}
	return tc, nil
}
