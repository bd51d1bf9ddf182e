package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xbt-tracker/xbt-tracker/internal/dbtest"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestMakeDemo runs the README's first command's script and uses the curl
// line it prints: the announce URL must work.
func TestMakeDemo(t *testing.T) {
	buf, _ := startGroupWait(t, demoCmd(t, freePort(t)))
	if !buf.waitFor("Ctrl-C stops the tracker.", 90*time.Second) {
		t.Fatalf("demo did not get ready:\n%s", buf.String())
	}
	demoCurl(t, buf.String())
}

// demoCurl sends the announce of the curl line a demo script printed in out
// and checks that it succeeds, counting the demo seeder; it returns the
// URL and the answer.
func demoCurl(t *testing.T, out string) (string, *http.Response) {
	t.Helper()
	m := regexp.MustCompile(`curl -s '([^']+)'`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no curl line in the demo's output:\n%s", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m[1], nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(body), "d8:completei1e10:incompletei0e8:intervali") {
		t.Fatalf("the demo's announce got %q, want a successful bencoded answer counting the demo seeder", body)
	}
	return m[1], resp
}

func TestUserAndFileCommands(t *testing.T) {
	db, dsn := dbtest.New(t)
	env := []string{"XBT_DSN=" + dsn}
	mustRun(t, env, "migrate", "up")
	uid := strings.TrimSpace(mustRun(t, env, "user", "add"))
	if _, err := db.Exec("UPDATE xbt_users SET uploaded = 123, downloaded = 45 WHERE uid = ?", uid); err != nil {
		t.Fatal(err)
	}
	show := mustRun(t, env, "user", "show", "--uid", uid)
	if !strings.Contains(show, "uploaded 123\n") || !strings.Contains(show, "downloaded 45\n") || !strings.Contains(show, "can_leech true\n") {
		t.Fatalf("user show:\n%s", show)
	}
	if r := run(t, env, "user", "show", "--uid", "999"); r.code == 0 || !strings.Contains(r.stderr, "no user with uid 999") {
		t.Fatalf("missing user: exit %d %s", r.code, r.stderr)
	}
	const ih = "00112233445566778899aabbccddeeff00112233"
	fid := strings.TrimSpace(mustRun(t, env, "file", "add", "--info-hash", ih))
	if again := strings.TrimSpace(mustRun(t, env, "file", "add", "--info-hash", ih)); again != fid {
		t.Fatalf("file add twice: fid %s then %s", fid, again)
	}
	var hexHash string
	if err := db.QueryRow("SELECT LOWER(HEX(info_hash)) FROM xbt_files WHERE fid = ?", fid).Scan(&hexHash); err != nil || hexHash != ih {
		t.Fatalf("xbt_files row: %q %v", hexHash, err)
	}
	if r := run(t, env, "file", "add", "--info-hash", "zz"); r.code == 0 || !strings.Contains(r.stderr, "want 40 hex digits") {
		t.Fatalf("bad info_hash: exit %d %s", r.code, r.stderr)
	}
}

// demoCmd is scripts/demo.sh on port and a fresh database, in its own
// process group, not started.
func demoCmd(t *testing.T, port int) *exec.Cmd {
	t.Helper()
	return demoScript(t, "scripts/demo.sh", "xbt_test_demo", fmt.Sprintf("XBT_DEMO_PORT=%d", port))
}

// demoScript is the command running a demo script of the repository on a
// throwaway database named after prefix, dropped at cleanup, with env added.
func demoScript(t *testing.T, script, prefix string, env ...string) *exec.Cmd {
	t.Helper()
	db, _ := dbtest.New(t) // proves a server is there; the demo makes its own database
	_, self, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(self))
	dbName := fmt.Sprintf("%s_%d", prefix, time.Now().UnixNano())
	t.Cleanup(func() { _, _ = db.Exec("DROP DATABASE IF EXISTS `" + dbName + "`") })
	cmd := exec.Command("bash", filepath.Join(root, script))
	cmd.Dir = root
	cmd.Env = append(append(cleanEnv(), "XBT_DSN="+dbtest.BaseDSN(), "XBT_DEMO_DB="+dbName), env...)
	return cmd
}

// On a port someone else listens on, the demo fails at once with one line
// naming the port and XBT_DEMO_PORT, instead of announcing success.
func TestMakeDemoBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	b, err := demoCmd(t, port).CombinedOutput()
	out := strings.TrimSpace(string(b))
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("demo on a busy port: %v, want exit status 1; output:\n%s", err, out)
	}
	if strings.Contains(out, "\n") || !strings.Contains(out, fmt.Sprintf("port %d", port)) || !strings.Contains(out, "XBT_DEMO_PORT") {
		t.Fatalf("want one line naming port %d and XBT_DEMO_PORT, got:\n%s", port, out)
	}
}

// Ctrl-C (SIGINT to the whole foreground process group, as a terminal
// sends it) stops the tracker and ends the demo with status 0.
func TestMakeDemoCtrlC(t *testing.T) {
	port := freePort(t)
	cmd := demoCmd(t, port)
	buf, done := startGroupWait(t, cmd)
	if !buf.waitFor("Ctrl-C stops the tracker.", 90*time.Second) {
		t.Fatalf("demo did not get ready:\n%s", buf.String())
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo after Ctrl-C: %v, want exit status 0; output:\n%s", err, buf.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("demo still running 60 s after Ctrl-C:\n%s", buf.String())
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		c.Close()
		t.Fatalf("port %d still answers after the demo ended", port)
	}
}
