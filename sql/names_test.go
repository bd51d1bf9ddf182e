package sql

import (
	"strings"
	"testing"
)

func TestDefaultNamesValid(t *testing.T) {
	n := DefaultNames()
	if err := n.Validate(); err != nil {
		t.Fatal(err)
	}
	if n.Users != "xbt_users" || n.FilesUsers != "xbt_files_users" || n.FilesFid != "fid" || n.UsersUID != "uid" ||
		n.Config != "xbt_config" || n.DenyFromHosts6 != "xbt_deny_from_hosts6" || n.FilesCompleted != "completed" {
		t.Fatalf("DefaultNames = %+v", n)
	}
}

func TestValidateRejectsBadIdentifiers(t *testing.T) {
	n := DefaultNames()
	n.Users = "xbt_users; drop"
	err := n.Validate()
	if err == nil {
		t.Fatal("accepted xbt_users; drop")
	}
	if !strings.Contains(err.Error(), `table_users = "xbt_users; drop"`) {
		t.Fatalf("error %q does not name the setting and value", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("one bad name gave several lines: %q", err)
	}

	n.FilesFid = "fid`"
	n.Config = ""
	err = n.Validate()
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 lines, got %q", lines)
	}
	for i, want := range []string{"table_config", "table_users", "column_files_fid"} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d %q does not name %s", i, lines[i], want)
		}
	}
}

func TestValidIdent(t *testing.T) {
	for _, s := range []string{"xbt_users", "A9_z", strings.Repeat("a", 64)} {
		if !ValidIdent(s) {
			t.Errorf("ValidIdent(%q) = false", s)
		}
	}
	for _, s := range []string{"", "a b", "a-b", "a`b", "a.b", "ä", strings.Repeat("a", 65), "x;drop", "x\x00"} {
		if ValidIdent(s) {
			t.Errorf("ValidIdent(%q) = true", s)
		}
	}
	if q, err := quoteIdent("xbt_users"); err != nil || q != "`xbt_users`" {
		t.Fatalf("quoteIdent = %q, %v", q, err)
	}
	if _, err := quoteIdent("x`; drop table t; --"); err == nil {
		t.Fatal("quoteIdent accepted an injection")
	}
}
