package integration

import (
	"bufio"
	"context"
	gosql "database/sql"
	"io"
	"io/fs"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xbt-tracker/xbt-tracker/internal/dbtest"
	"github.com/xbt-tracker/xbt-tracker/migrations"
)

func TestMigrateUpDownUp(t *testing.T) {
	db, dsn := dbtest.New(t)
	env := []string{"XBT_DSN=" + dsn}

	out := mustRun(t, env, "migrate", "up")
	if !strings.Contains(out, "00001_xbt_schema.sql") || !strings.Contains(out, "00002_adopt_xbt_database.sql") {
		t.Fatalf("migrate up output lacks the migrations:\n%s", out)
	}
	status := mustRun(t, env, "migrate", "status")
	for _, f := range []string{"00001_xbt_schema.sql", "00002_adopt_xbt_database.sql"} {
		if !regexp.MustCompile(`(?m)^\d+\s+applied\s+.*` + regexp.QuoteMeta(f) + `$`).MatchString(status) {
			t.Fatalf("status does not list %s as applied:\n%s", f, status)
		}
	}
	if v, want := strings.TrimSpace(mustRun(t, env, "migrate", "version")), lastMigration(t); v != want {
		t.Fatalf("version = %q, want %s", v, want)
	}

	mustRun(t, env, "migrate", "down", "--to", "0")
	if n := xbtTables(t, db); n != 0 {
		t.Fatalf("%d xbt_ tables left after down --to 0", n)
	}
	if v := strings.TrimSpace(mustRun(t, env, "migrate", "version")); v != "0" {
		t.Fatalf("version after down = %q, want 0", v)
	}
	mustRun(t, env, "migrate", "up")
	if n := xbtTables(t, db); n < 7 {
		t.Fatalf("only %d xbt_ tables after up again", n)
	}
	if _, err := db.Exec("INSERT INTO xbt_users(torrent_pass) VALUES('')"); err != nil {
		t.Fatalf("catalog insert after up again: %v", err)
	}
}

// lastMigration is the version of the newest embedded migration.
func lastMigration(t *testing.T) string {
	t.Helper()
	names, err := fs.Glob(migrations.FS(), "*.sql")
	if err != nil || len(names) == 0 {
		t.Fatalf("embedded migrations: %v %v", names, err)
	}
	slices.Sort(names)
	v, err := strconv.Atoi(strings.SplitN(names[len(names)-1], "_", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	return strconv.Itoa(v)
}

func xbtTables(t *testing.T, db *gosql.DB) int {
	t.Helper()
	var n int
	err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'xbt\_%' AND TABLE_NAME <> 'xbt_tracker_created_tables'`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// tracker is a running `xbt-tracker serve` process.
type trackerProc struct {
	cmd    *exec.Cmd
	stderr *lineBuffer
	done   chan error
}

// startServe starts serve and waits until it logs that it is listening.
func startServe(t *testing.T, env []string, args ...string) *trackerProc {
	t.Helper()
	return startServeArgs(t, env, append([]string{"--listen-udp", "off"}, args...))
}

// startServeArgs starts `serve args...` and waits until it logs that it
// listens on HTTP.
func startServeArgs(t *testing.T, env []string, args []string) *trackerProc {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve"}, args...)...)
	cmd.Env = append(cleanEnv(), env...)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &trackerProc{cmd: cmd, stderr: newLineBuffer(pipe), done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	if !p.stderr.waitFor(`"listening"`, 30*time.Second) {
		_ = cmd.Process.Kill()
		t.Fatalf("serve did not start listening; stderr:\n%s", p.stderr.String())
	}
	return p
}

// stop sends SIGTERM and returns the exit code.
func (p *trackerProc) stop(t *testing.T) int {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Fatalf("serve did not exit within 60s of SIGTERM; stderr:\n%s", p.stderr.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

func TestServeGeneratesSecretOnce(t *testing.T) {
	db, dsn := dbtest.New(t)
	env := []string{"XBT_DSN=" + dsn}
	mustRun(t, env, "migrate", "up")

	p := startServe(t, env, "--listen-http", "127.0.0.1:0")
	secret := configValue(t, db, "torrent_pass_private_key")
	if !regexp.MustCompile(`^[0-9A-Za-z]{27}$`).MatchString(secret) {
		t.Fatalf("generated secret %q: want 27 characters from [0-9A-Za-z]", secret)
	}
	if !strings.Contains(p.stderr.String(), "generated torrent_pass_private_key") {
		t.Fatalf("no log line about the generated secret:\n%s", p.stderr.String())
	}
	if strings.Contains(p.stderr.String(), secret) {
		t.Fatal("the secret must never be logged")
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM; stderr:\n%s", code, p.stderr.String())
	}

	p = startServe(t, env, "--listen-http", "127.0.0.1:0")
	if again := configValue(t, db, "torrent_pass_private_key"); again != secret {
		t.Fatalf("second start changed the secret: %q -> %q", secret, again)
	}
	if strings.Contains(p.stderr.String(), "generated torrent_pass_private_key") {
		t.Fatal("second start generated a secret again")
	}
	p.stop(t)
	var rows int
	if err := db.QueryRow("SELECT COUNT(*) FROM xbt_config WHERE name = 'torrent_pass_private_key'").Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("%d secret rows (err %v), want 1", rows, err)
	}
}

func TestServeRefusesMissingRequiredColumn(t *testing.T) {
	db, dsn := dbtest.New(t)
	env := []string{"XBT_DSN=" + dsn}
	mustRun(t, env, "migrate", "up")
	if _, err := db.Exec("ALTER TABLE xbt_users DROP COLUMN uploaded"); err != nil {
		t.Fatal(err)
	}
	r := run(t, env, "serve", "--listen-http", "127.0.0.1:0", "--listen-udp", "off")
	if r.code == 0 {
		t.Fatalf("serve started without xbt_users.uploaded:\n%s", r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "xbt_users") || !strings.Contains(lines[0], `"uploaded"`) {
		t.Fatalf("want one line naming xbt_users and uploaded, got:\n%s", r.stderr)
	}
}

func TestServeUnreachableDatabaseIsOneLine(t *testing.T) {
	r := run(t, []string{"XBT_DSN=root:@tcp(127.0.0.1:1)/xbt"}, "serve", "--listen-http", "127.0.0.1:0")
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if r.code == 0 || len(lines) != 1 || !strings.Contains(lines[0], "unreachable at 127.0.0.1:1") {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

func TestPasskeyCommands(t *testing.T) {
	db, dsn := dbtest.New(t)
	env := []string{"XBT_DSN=" + dsn}
	mustRun(t, env, "migrate", "up")
	for _, q := range []string{
		"INSERT INTO xbt_config(name, value) VALUES('torrent_pass_private_key', 'secretkey')",
		"INSERT INTO xbt_users(uid, torrent_pass_version) VALUES(42, 1)",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	const ih = "0123456789abcdef0123456789abcdef01234567"
	url := strings.TrimSpace(mustRun(t, env, "passkey", "url", "--uid", "42", "--info-hash", ih, "--base", "http://tracker.example:2710/"))
	// docs/XBT-COMPAT.md §2's vector for key "secretkey", version 1, uid 42.
	if url != "http://tracker.example:2710/0000002a980d30f3f8201965463641ef/announce" {
		t.Fatalf("passkey url = %q", url)
	}
	out := mustRun(t, env, "passkey", "check", "0000002A980D30F3F8201965463641EF", "--info-hash", ih)
	if !strings.HasPrefix(out, "valid: uid 42") {
		t.Fatalf("check of the current passkey: %q", out)
	}
	// Version 0's passkey was revoked by the bump to 1.
	r := run(t, env, "passkey", "check", "0000002a74b2c05f1a760db474cd76fa", "--info-hash", ih)
	if r.code == 0 || !strings.Contains(r.stderr, "invalid") {
		t.Fatalf("revoked passkey: exit %d, %s%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, env, "passkey", "check", "0000002b980d30f3f8201965463641ef", "--info-hash", ih)
	if r.code == 0 || !strings.Contains(r.stderr, "uid 43, which is not in the users table") {
		t.Fatalf("unknown uid: exit %d, %s", r.code, r.stderr)
	}
	// Without a database, flags give the secret and version.
	url = strings.TrimSpace(mustRun(t, nil, "passkey", "url", "--uid", "42", "--info-hash", ih, "--pass-version", "0",
		"--torrent-pass-private-key", "secretkey", "--base", "http://h:1"))
	if url != "http://h:1/0000002a74b2c05f1a760db474cd76fa/announce" {
		t.Fatalf("offline passkey url = %q", url)
	}
}

func TestConfigCommands(t *testing.T) {
	out := mustRun(t, []string{"XBT_TORRENT_PASS_PRIVATE_KEY=supersecretvalue", "XBT_DSN=me:hunter2@tcp(127.0.0.1:1)/xbt"},
		"config", "print", "--no-db", "--announce-interval", "900")
	if strings.Contains(out, "supersecretvalue") || strings.Contains(out, "hunter2") {
		t.Fatalf("config print leaks a secret:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^announce_interval = 900\b`).MatchString(out) {
		t.Fatalf("config print lacks the flag's announce_interval:\n%s", out)
	}
	r := run(t, []string{"XBT_ANNOUNCE_INTERVAL=abc"}, "config", "check", "--no-db", "--table-users", "x; drop")
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if r.code == 0 || len(lines) != 2 {
		t.Fatalf("want exit 1 and one line per bad value, got %d:\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, `announce_interval = "abc" (from XBT_ANNOUNCE_INTERVAL)`) || !strings.Contains(r.stderr, `table_users = "x; drop"`) {
		t.Fatalf("lines must name key, value and source:\n%s", r.stderr)
	}
	if out := mustRun(t, nil, "config", "check", "--no-db"); !strings.Contains(out, "valid") {
		t.Fatalf("defaults: %q", out)
	}
}

func configValue(t *testing.T, db *gosql.DB, name string) string {
	t.Helper()
	var v string
	if err := db.QueryRow("SELECT value FROM xbt_config WHERE name = ?", name).Scan(&v); err != nil {
		t.Fatalf("xbt_config %s: %v", name, err)
	}
	return v
}

// lineBuffer collects a process's output as it arrives.
type lineBuffer struct {
	ch  chan struct{} // signalled after each line
	mu  sync.Mutex
	buf strings.Builder
}

func newLineBuffer(r io.Reader) *lineBuffer {
	b := &lineBuffer{ch: make(chan struct{}, 1)}
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for sc.Scan() {
			b.mu.Lock()
			b.buf.WriteString(sc.Text())
			b.buf.WriteByte('\n')
			b.mu.Unlock()
			select {
			case b.ch <- struct{}{}:
			default:
			}
		}
	}()
	return b
}

func (b *lineBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor waits until the output contains s.
func (b *lineBuffer) waitFor(s string, d time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		if strings.Contains(b.String(), s) {
			return true
		}
		select {
		case <-b.ch:
		case <-ctx.Done():
			return false
		}
	}
}
