package sql

import (
	"errors"
	"fmt"
)

// maxIdentLen is MySQL's limit for table and column names.
const maxIdentLen = 64

// ValidIdent reports whether s may be used as a table or column name:
// 1 to 64 characters matching ^[A-Za-z0-9_]+$.
func ValidIdent(s string) bool {
	if len(s) == 0 || len(s) > maxIdentLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// quoteIdent returns s backquoted, or an error if s is not a valid
// identifier. Every configured name goes through here before it reaches SQL.
func quoteIdent(s string) (string, error) {
	if !ValidIdent(s) {
		return "", fmt.Errorf("%q is not a valid SQL identifier (use 1-%d characters from A-Z, a-z, 0-9 and _)", s, maxIdentLen)
	}
	return "`" + s + "`", nil
}

// Names are the table and column names the tracker uses; xbt_config's
// table_* and column_* settings override the classic defaults.
type Names struct {
	Config, Files, FilesUsers, Users, AnnounceLog, ScrapeLog, DenyFromHosts, DenyFromHosts6 string
	Snatched                                                                                string // completion log (optional)

	FilesFid, FilesLeechers, FilesSeeders, FilesCompleted, UsersUID string
}

// DefaultNames returns the classic XBT names.
func DefaultNames() Names {
	return Names{
		Config:         "xbt_config",
		Files:          "xbt_files",
		FilesUsers:     "xbt_files_users",
		Users:          "xbt_users",
		AnnounceLog:    "xbt_announce_log",
		ScrapeLog:      "xbt_scrape_log",
		Snatched:       "xbt_snatched",
		DenyFromHosts:  "xbt_deny_from_hosts",
		DenyFromHosts6: "xbt_deny_from_hosts6",
		FilesFid:       "fid",
		FilesLeechers:  "leechers",
		FilesSeeders:   "seeders",
		FilesCompleted: "completed",
		UsersUID:       "uid",
	}
}

// setting pairs a configuration key with its value.
type setting struct{ key, value string }

func (n Names) settings() []setting {
	return []setting{
		{"table_config", n.Config},
		{"table_files", n.Files},
		{"table_files_users", n.FilesUsers},
		{"table_users", n.Users},
		{"table_announce_log", n.AnnounceLog},
		{"table_scrape_log", n.ScrapeLog},
		{"table_snatched", n.Snatched},
		{"table_deny_from_hosts", n.DenyFromHosts},
		{"table_deny_from_hosts6", n.DenyFromHosts6},
		{"column_files_fid", n.FilesFid},
		{"column_files_leechers", n.FilesLeechers},
		{"column_files_seeders", n.FilesSeeders},
		{"column_files_completed", n.FilesCompleted},
		{"column_users_uid", n.UsersUID},
	}
}

// Validate checks every name. The error has one line per bad name, naming
// the setting and its value.
func (n Names) Validate() error {
	var errs []error
	for _, s := range n.settings() {
		if !ValidIdent(s.value) {
			errs = append(errs, fmt.Errorf("setting %s = %q is not a valid SQL identifier (use 1-%d characters from A-Z, a-z, 0-9 and _)",
				s.key, s.value, maxIdentLen))
		}
	}
	return errors.Join(errs...)
}
