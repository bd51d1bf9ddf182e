package integration

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xbt-tracker/xbt-tracker/internal/dbtest"
)

// TestDemoClientCommands runs `make demo`'s script and then, verbatim, the
// client command lines it prints: the aria2c seeder, and both downloads
// (transmission-cli and aria2c) must end with the demo file.
func TestDemoClientCommands(t *testing.T) {
	requireClients(t, kindAria2)
	for _, b := range []string{"mktorrent", "transmission-cli"} {
		if _, err := exec.LookPath(b); err != nil {
			msg := b + " is not installed; install: " + clInstallHint
			if os.Getenv("CI") != "" {
				t.Fatal(msg + " (CI is set, so this is a failure)")
			}
			t.Skip(msg)
		}
	}
	db, _ := dbtest.New(t) // proves a server is there; the demo makes its own database
	dbName := fmt.Sprintf("xbt_test_demo_clients_%d", time.Now().UnixNano())
	t.Cleanup(func() { _, _ = db.Exec("DROP DATABASE IF EXISTS `" + dbName + "`") })
	demoDir := t.TempDir()
	port := freePort(t)

	demo := exec.Command("bash", filepath.Join(clRepoRoot(), "scripts/demo.sh"))
	demo.Dir = clRepoRoot()
	demo.Env = append(cleanEnv(), "XBT_DSN="+dbtest.BaseDSN(), "XBT_DEMO_DB="+dbName,
		fmt.Sprintf("XBT_DEMO_PORT=%d", port), "XBT_DEMO_DIR="+demoDir)
	out := startGroup(t, demo)
	if !out.waitFor("Ctrl-C stops the tracker.", 90*time.Second) {
		t.Fatalf("demo did not get ready:\n%s", out.String())
	}
	text := out.String()
	// The command line follows each heading, indented by two spaces.
	command := func(heading string) string {
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(heading) + `.*\n  (.+)$`).FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("no %q command in the demo's output:\n%s", heading, text)
		}
		return m[1]
	}
	seedCmd, trCmd, a2Cmd := command("seed it"), command("download it"), command("or with aria2c")
	for _, c := range []string{seedCmd, trCmd, a2Cmd} {
		if !strings.Contains(c, filepath.Join(demoDir, "demo.torrent")) {
			t.Fatalf("command does not use the stamped demo torrent: %s", c)
		}
	}
	if !strings.Contains(text, "announce URL") || !regexp.MustCompile(`curl -s '[^']+'`).MatchString(text) {
		t.Fatalf("the demo lost its announce URL or curl lines:\n%s", text)
	}
	want := clFileSHA256(filepath.Join(demoDir, "seed", "xbt-demo.bin"))

	seeder := startGroup(t, exec.Command("bash", "-c", "exec "+seedCmd))
	time.Sleep(2 * time.Second) // its first announce: the downloads' first answer lists it
	start := time.Now()
	tr := startGroup(t, exec.Command("bash", "-c", "exec "+trCmd))
	a2 := startGroup(t, exec.Command("bash", "-c", "exec "+a2Cmd))
	for _, d := range []struct {
		name string
		file string
		out  *lineBuffer
	}{
		{"aria2c", filepath.Join(demoDir, "download-aria2", "xbt-demo.bin"), a2},
		{"transmission-cli", filepath.Join(demoDir, "download-transmission", "xbt-demo.bin"), tr},
	} {
		if !clWait(clTransferTimeout, func() bool { return clFileSHA256(d.file) == want }) {
			t.Fatalf("%s did not download the demo file within %s\nits output:\n%s\nseeder:\n%s\ndemo:\n%s",
				d.name, clTransferTimeout, clTail(d.out.String()), clTail(seeder.String()), clTail(out.String()))
		}
		t.Logf("%s downloaded the demo file %s after the downloads started", d.name, time.Since(start).Round(100*time.Millisecond))
	}
}

// startGroup starts cmd in its own process group, with its output collected,
// and stops the group (SIGINT, then SIGKILL) when the test ends.
func startGroup(t *testing.T, cmd *exec.Cmd) *lineBuffer {
	t.Helper()
	out, _ := startGroupWait(t, cmd)
	return out
}

// startGroupWait is startGroup that also returns the command's exit.
func startGroupWait(t *testing.T, cmd *exec.Cmd) (*lineBuffer, <-chan error) {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exit := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		exit <- cmd.Wait()
		pw.Close()
		close(done)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	return newLineBuffer(pr), exit
}
