package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/xbt-tracker/xbt-tracker/internal/dbtest"
)

// runEnv runs the command line in-process with this environment.
func runEnv(t *testing.T, environ []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"xbt-tracker"}, args...), environ, &out, &errb)
	return out.String(), errb.String(), code
}

func TestTorrentDelete(t *testing.T) {
	db, dsn := dbtest.New(t)
	env := []string{"XBT_DSN=" + dsn}
	if _, errOut, code := runEnv(t, env, "migrate", "up"); code != 0 {
		t.Fatalf("migrate up: %s", errOut)
	}
	const ih = "0123456789abcdef0123456789abcdef01234567"
	fid, errOut, code := runEnv(t, env, "file", "add", "--info-hash", ih)
	if code != 0 {
		t.Fatalf("file add: %s", errOut)
	}
	fid = strings.TrimSpace(fid)

	out, errOut, code := runEnv(t, env, "torrent", "delete", "--info-hash", strings.ToUpper(ih))
	if code != 0 || !strings.HasPrefix(out, "fid "+fid+" info_hash "+ih+": set flags = 1 in xbt_files") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	var flags int
	if err := db.QueryRow("SELECT flags FROM xbt_files WHERE info_hash = UNHEX(?)", ih).Scan(&flags); err != nil || flags != 1 {
		t.Fatalf("flags = %d (%v), want 1", flags, err)
	}
	if out, _, code := runEnv(t, env, "torrent", "delete", "--info-hash", ih); code != 0 || !strings.Contains(out, "already flags = 1") {
		t.Fatalf("second delete: exit %d, %q", code, out)
	}

	const other = "ffffffffffffffffffffffffffffffffffffffff"
	out, errOut, code = runEnv(t, env, "torrent", "delete", "--info-hash", other)
	if code != 1 || out != "" || !strings.Contains(errOut, "no torrent with info_hash "+other+" in xbt_files") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("unknown torrent: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, errOut, code := runEnv(t, env, "torrent", "delete", "--info-hash", "xyz"); code != 1 || !strings.Contains(errOut, "want 40 hex digits") {
		t.Fatalf("bad hash: exit %d, %q", code, errOut)
	}
}

// An unmigrated database names the command that fixes it.
func TestUnmigratedDatabaseNamesMigrateUp(t *testing.T) {
	_, dsn := dbtest.New(t)
	env := []string{"XBT_DSN=" + dsn}
	for _, args := range [][]string{{"serve"}, {"config"}, {"user", "add"}} {
		_, errOut, code := runEnv(t, env, args...)
		if code != 1 || !strings.Contains(errOut, `run "xbt-tracker migrate up"`) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
}

// Bare `config` prints the configuration, as `config print` does.
func TestConfigBarePrints(t *testing.T) {
	bare, errOut, code := runCmd(t, "config", "--announce-interval", "900")
	if code != 0 || !strings.Contains(bare, "announce_interval = 900") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, bare, errOut)
	}
	if printed, _, _ := runCmd(t, "config", "print", "--announce-interval", "900"); printed != bare {
		t.Fatalf("config and config print differ:\n%s\n---\n%s", bare, printed)
	}
}

// Each subcommand lists its own flags and the database ones; serve and
// config list every key.
func TestSubcommandFlags(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		want, not []string
	}{
		{args: []string{"user", "add"}, want: []string{"--dsn", "--config", "--table-users", "--torrent-pass"}, not: []string{"--announce-interval", "--listen-http", "--torrent-pass-private-key"}},
		{args: []string{"migrate", "up"}, want: []string{"--dsn", "--create-database", "--extras"}, not: []string{"--table-users", "--announce-interval"}},
		{args: []string{"migrate", "down"}, want: []string{"--dsn", "--to", "--extras"}},
		{args: []string{"migrate", "status"}, want: []string{"--dsn", "--extras"}},
		{args: []string{"migrate", "version"}, want: []string{"--dsn", "--extras"}},
		{args: []string{"passkey", "url"}, want: []string{"--dsn", "--torrent-pass-private-key", "--listen-port", "--uid"}, not: []string{"--announce-interval", "--listen-http"}},
		{args: []string{"torrent", "stamp"}, want: []string{"--dsn", "--torrent-pass-private-key", "--private"}, not: []string{"--announce-interval"}},
		{args: []string{"torrent", "delete"}, want: []string{"--dsn", "--info-hash"}, not: []string{"--announce-interval"}},
		{args: []string{"serve"}, want: []string{"--dsn", "--announce-interval", "--listen-http", "--state-file"}},
		{args: []string{"config", "print"}, want: []string{"--dsn", "--announce-interval", "--no-db"}},
	} {
		out, _, code := runCmd(t, append(tc.args, "--help")...)
		if code != 0 {
			t.Errorf("%v --help: exit %d", tc.args, code)
		}
		for _, f := range tc.want {
			if !strings.Contains(out, "   "+f+" ") {
				t.Errorf("%v --help lacks %s", tc.args, f)
			}
		}
		for _, f := range tc.not {
			if strings.Contains(out, "   "+f+" ") {
				t.Errorf("%v --help lists %s", tc.args, f)
			}
		}
	}
}
