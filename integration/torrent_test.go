package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/xbt-tracker/xbt-tracker/internal/dbtest"
)

// mktorrentFile makes a .torrent of a small random file with Debian's
// mktorrent: skipped without it, a failure when CI is set.
func mktorrentFile(t *testing.T, private bool) string {
	t.Helper()
	if _, err := exec.LookPath("mktorrent"); err != nil {
		msg := "mktorrent is not installed; install: " + clInstallHint
		if os.Getenv("CI") != "" {
			t.Fatal(msg + " (CI is set, so this is a failure)")
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data.bin")
	if err := os.WriteFile(data, []byte(strings.Repeat("xbt-tracker torrent test\n", 20000)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "upload.torrent")
	args := []string{"-l", "16", "-a", "http://other.example/announce", "-a", "http://backup.example/announce", "-o", out}
	if private {
		args = append(args, "-p")
	}
	if b, err := exec.Command("mktorrent", append(args, data)...).CombinedOutput(); err != nil {
		t.Fatalf("mktorrent: %v\n%s", err, b)
	}
	return out
}

var torrentInfoHashRE = regexp.MustCompile(`(?m)^info_hash ([0-9a-f]{40})$`)

// TestTorrentStampCatalogWorkflow: upload (force private, register), then
// each download stamped with the user's passkey URL, which must be the one
// `passkey url` prints and `passkey check` accepts, until `user revoke`.
func TestTorrentStampCatalogWorkflow(t *testing.T) {
	upload := mktorrentFile(t, false)
	db, dsn := dbtest.New(t)
	env := []string{"XBT_DSN=" + dsn}
	mustRun(t, env, "migrate", "up")
	if _, err := db.Exec("INSERT INTO xbt_config(name, value) VALUES('torrent_pass_private_key', 'secretkey')"); err != nil {
		t.Fatal(err)
	}
	uid := strings.TrimSpace(mustRun(t, env, "user", "add"))
	dir := t.TempDir()

	orig := torrentInfoHashRE.FindStringSubmatch(mustRun(t, nil, "torrent", "info", upload))
	canonical := filepath.Join(dir, "canonical.torrent")
	r := run(t, env, "torrent", "stamp", "--private", "--register", "-o", canonical, upload)
	if r.code != 0 {
		t.Fatalf("exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	m := torrentInfoHashRE.FindStringSubmatch(r.stdout)
	if orig == nil || m == nil || m[1] == orig[1] {
		t.Fatalf("--private must change the info_hash: %v -> %v\n%s", orig, m, r.stdout)
	}
	ih := m[1]
	if want := "warning: --private set private=1 in the info dictionary: the info_hash changed from " + orig[1] + " to " + ih; !strings.Contains(r.stderr, want) {
		t.Fatalf("stderr %q, want %q", r.stderr, want)
	}
	var fid string
	if err := db.QueryRow("SELECT fid FROM xbt_files WHERE info_hash = UNHEX(?)", ih).Scan(&fid); err != nil {
		t.Fatalf("the private torrent is not registered: %v", err)
	}
	if !strings.Contains(r.stdout, "fid "+fid+"\n") {
		t.Fatalf("stdout lacks fid %s:\n%s", fid, r.stdout)
	}
	if again := strings.TrimSpace(mustRun(t, env, "file", "add", "--info-hash", ih)); again != fid {
		t.Fatalf("file add of the registered torrent: fid %s, want %s", again, fid)
	}
	// --register twice is harmless.
	mustRun(t, env, "torrent", "stamp", "--register", canonical)
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM xbt_files").Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d xbt_files rows (%v), want 1", n, err)
	}

	userCopy := func() string {
		t.Helper()
		dst := filepath.Join(dir, "user.torrent")
		out := mustRun(t, env, "torrent", "stamp", "--uid", uid, "--base", "https://tracker.example.org", "-o", dst, canonical)
		url := strings.TrimSpace(mustRun(t, env, "passkey", "url", "--uid", uid, "--info-hash", ih, "--base", "https://tracker.example.org"))
		if !strings.Contains(out, "announce "+url+"\n") {
			t.Fatalf("stamp announced something else than `passkey url` (%s):\n%s", url, out)
		}
		info := mustRun(t, nil, "torrent", "info", dst)
		if !strings.Contains(info, "info_hash "+ih+"\nprivate 1\n") || !strings.Contains(info, "announce "+url+"\n") {
			t.Fatalf("the user's copy:\n%s", info)
		}
		return regexp.MustCompile(`/([0-9a-f]{32})/announce$`).FindStringSubmatch(url)[1]
	}
	pk := userCopy()
	if out := mustRun(t, env, "passkey", "check", pk, "--info-hash", ih); !strings.HasPrefix(out, "valid: uid "+uid) {
		t.Fatalf("passkey check: %s", out)
	}

	// Revoke: version 1, the old passkey is invalid, a new copy has a new one.
	if v := strings.TrimSpace(mustRun(t, env, "user", "revoke", "--uid", uid)); v != "1" {
		t.Fatalf("user revoke printed %q, want 1", v)
	}
	if r := run(t, env, "passkey", "check", pk, "--info-hash", ih); r.code == 0 || !strings.Contains(r.stderr, "invalid") {
		t.Fatalf("the revoked passkey: exit %d %s%s", r.code, r.stdout, r.stderr)
	}
	if pk2 := userCopy(); pk2 == pk {
		t.Fatal("after revoke the new copy has the old passkey")
	}
	if v := strings.TrimSpace(mustRun(t, env, "user", "revoke", "--uid", uid)); v != "2" {
		t.Fatalf("second revoke printed %q, want 2", v)
	}
	if show := mustRun(t, env, "user", "show", "--uid", uid); !strings.Contains(show, "torrent_pass_version 2\n") {
		t.Fatalf("user show after two revokes:\n%s", show)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"user", "revoke", "--uid", "999"}, "no user with uid 999 in xbt_users"},
		{[]string{"user", "revoke", "--uid", "x"}, `--uid = "x"`},
		{[]string{"torrent", "stamp", "--uid", "999", "-o", filepath.Join(dir, "x.torrent"), canonical}, "no user with uid 999"},
	} {
		r := run(t, env, tc.args...)
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q; want one line with %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x.torrent")); err == nil {
		t.Error("a copy was written for a user that does not exist")
	}
}

// TestTorrentStampAlreadyPrivate: a torrent mktorrent made private keeps its
// info_hash under --private, and no warning is printed.
func TestTorrentStampAlreadyPrivate(t *testing.T) {
	upload := mktorrentFile(t, true)
	info := mustRun(t, nil, "torrent", "info", upload)
	m := torrentInfoHashRE.FindStringSubmatch(info)
	if m == nil || !strings.Contains(info, "private 1\n") {
		t.Fatalf("torrent info of mktorrent -p:\n%s", info)
	}
	dst := filepath.Join(t.TempDir(), "copy.torrent")
	r := run(t, nil, "torrent", "stamp", "--private", "--uid", "3", "--torrent-pass-private-key", "k", "-o", dst, upload)
	if r.code != 0 || r.stderr != "" || !strings.HasPrefix(r.stdout, "info_hash "+m[1]+"\n") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	if info := mustRun(t, nil, "torrent", "info", dst); !strings.Contains(info, "announce http://127.0.0.1:2710/00000003") {
		t.Fatalf("default base: %s", info)
	}
}
