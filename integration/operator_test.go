package integration

import (
	"strings"
	"testing"

	"github.com/xbt-tracker/xbt-tracker/internal/dbtest"
)

// The operator's first hour, with the real binary: the catalog's delete
// step, an unmigrated or missing database, and bare `config`.

func TestTorrentDeleteCommand(t *testing.T) {
	db, dsn := dbtest.New(t)
	env := []string{"XBT_DSN=" + dsn}
	mustRun(t, env, "migrate", "up")
	const ih = "00112233445566778899aabbccddeeff00112233"
	fid := strings.TrimSpace(mustRun(t, env, "file", "add", "--info-hash", ih))
	out := mustRun(t, env, "torrent", "delete", "--info-hash", ih)
	if !strings.HasPrefix(out, "fid "+fid+" info_hash "+ih+": set flags = 1 in xbt_files") {
		t.Fatalf("torrent delete: %q", out)
	}
	var flags int
	if err := db.QueryRow("SELECT flags FROM xbt_files WHERE fid = ?", fid).Scan(&flags); err != nil || flags != 1 {
		t.Fatalf("flags = %d (%v), want 1", flags, err)
	}
	r := run(t, env, "torrent", "delete", "--info-hash", strings.Repeat("ab", 20))
	if r.code != 1 || !strings.Contains(r.stderr, "no torrent with info_hash") {
		t.Fatalf("unknown torrent: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestServeUnmigratedDatabase(t *testing.T) {
	_, dsn := dbtest.New(t)
	r := run(t, []string{"XBT_DSN=" + dsn}, "serve")
	if r.code != 1 || !strings.Contains(r.stderr, `run "xbt-tracker migrate up"`) || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("serve on an empty database: exit %d, stderr %q", r.code, r.stderr)
	}
	missing := strings.Replace(dsn, "/xbt_test_", "/xbt_test_missing_", 1)
	r = run(t, []string{"XBT_DSN=" + missing}, "serve")
	if r.code != 1 || !strings.Contains(r.stderr, "xbt-tracker migrate up --create-database") {
		t.Fatalf("serve on a missing database: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestConfigBareCommand(t *testing.T) {
	out := mustRun(t, nil, "config", "--announce-interval", "900")
	if !strings.Contains(out, "announce_interval = 900") || out != mustRun(t, nil, "config", "print", "--announce-interval", "900") {
		t.Fatalf("bare config:\n%s", out)
	}
}
