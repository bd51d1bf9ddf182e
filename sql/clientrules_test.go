package sql

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

func TestLoaderClientRules(t *testing.T) {
	ctx := context.Background()
	db, s, _ := writerDB(t, "")
	if !s.HasClientWhitelist || !s.HasDenyFromClients {
		t.Fatalf("migrated schema: whitelist %v, deny %v", s.HasClientWhitelist, s.HasDenyFromClients)
	}
	if n := notesOn(s, "schema: client rules: "); len(n) != 0 {
		t.Fatalf("notes on a migrated database: %q", n)
	}
	l := NewLoader(db, s)
	allow, deny, err := l.ClientRules(ctx)
	if err != nil || len(allow) != 0 || len(deny) != 0 {
		t.Fatalf("empty tables: %q %q %v", allow, deny, err)
	}
	mustExec(t, db, "INSERT INTO xbt_client_whitelist (peer_id, vstring) VALUES ('-TR3', 'Transmission 3'), ('-UT3', 'uTorrent 3')")
	mustExec(t, db, "INSERT INTO xbt_deny_from_clients (peer_id) VALUES ('-XL0'), (UNHEX('00FF'))")
	allow, deny, err = l.ClientRules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%q %q", allow, deny); got != `["-TR3" "-UT3"] ["\x00\xff" "-XL0"]` {
		t.Fatalf("read %s", got)
	}
}

// Gazelle creates xbt_client_whitelist itself, peer_id nullable; XBT's
// schema file sketches xbt_deny_from_clients(peer_id char(20) not null).
func TestLoaderClientRulesCatalogShapes(t *testing.T) {
	ctx := context.Background()
	db, _, _ := writerDB(t, "")
	mustExec(t, db, "DROP TABLE xbt_client_whitelist")
	mustExec(t, db, "DROP TABLE xbt_deny_from_clients")
	mustExec(t, db, "CREATE TABLE xbt_client_whitelist (id int unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, peer_id varchar(20) DEFAULT NULL, vstring varchar(200) DEFAULT '', UNIQUE KEY peer_id (peer_id))")
	mustExec(t, db, "CREATE TABLE xbt_deny_from_clients (peer_id char(20) NOT NULL)")
	mustExec(t, db, "INSERT INTO xbt_client_whitelist (peer_id, vstring) VALUES ('-TR2', 'Transmission 2'), (NULL, 'nothing')")
	mustExec(t, db, "INSERT INTO xbt_deny_from_clients VALUES ('-XL0')")
	s, warnings, err := CheckSchema(ctx, db, DefaultNames())
	if err != nil || len(warnings) != 0 || !s.HasClientWhitelist || !s.HasDenyFromClients {
		t.Fatalf("CheckSchema: %+v %q %v", s, warnings, err)
	}
	allow, deny, err := NewLoader(db, s).ClientRules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%q %q", allow, deny); got != `["" "-TR2"] ["-XL0"]` && got != `["-TR2" ""] ["-XL0"]` {
		t.Fatalf("read %s", got)
	}
}

// Without the tables (a database from before 00005): no rule, no query,
// a note each, no warning. A table without peer_id is a warning.
func TestLoaderClientRulesMissingTables(t *testing.T) {
	ctx := context.Background()
	db, _, _ := writerDB(t, "")
	mustExec(t, db, "DROP TABLE xbt_client_whitelist")
	mustExec(t, db, "DROP TABLE xbt_deny_from_clients")
	s, warnings, err := CheckSchema(ctx, db, DefaultNames())
	if err != nil || len(warnings) != 0 {
		t.Fatalf("CheckSchema: %q %v", warnings, err)
	}
	if s.HasClientWhitelist || s.HasDenyFromClients {
		t.Fatalf("tables found: %+v", s)
	}
	notes := strings.Join(notesOn(s, "schema: client rules: "), "\n")
	if !strings.Contains(notes, "xbt_client_whitelist") || !strings.Contains(notes, "xbt_deny_from_clients") || len(notesOn(s, "schema: client rules: ")) != 2 {
		t.Fatalf("notes %q", s.Notes())
	}
	allow, deny, err := NewLoader(db, s).ClientRules(ctx)
	if err != nil || allow != nil || deny != nil {
		t.Fatalf("missing tables: %q %q %v", allow, deny, err)
	}

	mustExec(t, db, "CREATE TABLE xbt_deny_from_clients (client varchar(20) NOT NULL)")
	s, warnings, err = CheckSchema(ctx, db, DefaultNames())
	if err != nil || s.HasDenyFromClients || len(warnings) != 1 || !strings.Contains(warnings[0], `xbt_deny_from_clients has no column "peer_id"`) {
		t.Fatalf("table without peer_id: %+v %q %v", s, warnings, err)
	}
}
