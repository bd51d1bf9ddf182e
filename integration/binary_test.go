package integration

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// binary is the xbt-tracker executable under test, set by TestMain.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		// Every test here runs the binary, a database or real clients.
		fmt.Println("integration: end-to-end tests skipped with -short")
		os.Exit(0)
	}
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	if b := os.Getenv("XBT_TEST_BINARY"); b != "" {
		binary = b
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "xbt-tracker-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "xbt-tracker")
	_, self, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(self))
	cmd := exec.Command("go", "build", "-o", binary, "./cmd/xbt-tracker")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building xbt-tracker:", err)
		return 1
	}
	return m.Run()
}

// result is one finished run of the binary.
type result struct {
	stdout, stderr string
	code           int
}

// run runs the binary to completion with XBT_* variables from env only (the
// test's own environment would leak XBT_TEST_DSN and friends).
func run(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(cleanEnv(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running %v: %v", args, err)
	}
	return r
}

// mustRun is run that fails the test on a non-zero exit.
func mustRun(t *testing.T, env []string, args ...string) string {
	t.Helper()
	r := run(t, env, args...)
	if r.code != 0 {
		t.Fatalf("xbt-tracker %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// cleanEnv is this process's environment without its XBT_ variables, and
// with the state file off (state_file's default would put a file in this
// directory for every test's tracker): a test that wants warm restarts
// passes XBT_STATE_FILE=<its own path> after it, and the last value wins.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "XBT_") {
			env = append(env, kv)
		}
	}
	return append(env, "XBT_STATE_FILE=")
}
