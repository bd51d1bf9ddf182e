package integration

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/xbt-tracker/xbt-tracker/internal/dbtest"
)

var benchListenRE = regexp.MustCompile(`"listening","http":"([^"]+)"`)

// TestBenchAgainstServe runs `xbt-tracker bench` briefly against a real
// serve on a throwaway database: set up users and torrents, start the
// tracker, drive 2000 requests, and check the report counts them all with
// no error (every passkey derived from the database's secret verified).
func TestBenchAgainstServe(t *testing.T) {
	_, dsn := dbtest.New(t)
	env := []string{"XBT_DSN=" + dsn}
	r := run(t, env, "bench", "--setup-only", "--users", "100", "--torrents", "100")
	if r.code != 0 || !strings.Contains(r.stderr, "100 users and 100 torrents added") {
		t.Fatalf("setup: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	p := startServe(t, env, "--listen-http", "127.0.0.1:0", "--log-level", "info")
	m := benchListenRE.FindStringSubmatch(p.stderr.String())
	if m == nil {
		t.Fatalf("no listening address in the log:\n%s", p.stderr.String())
	}
	base := "http://" + m[1]

	out := mustRun(t, env, "bench", "--setup=false", "--target", base, "--users", "100", "--torrents", "100",
		"--peers", "300", "--requests", "2000", "--concurrency", "8", "--json", "--quiet")
	var rep struct {
		Requests, OK, Errors, Announces, Scrapes int64
		Events                                   map[string]int64
		ErrorKinds                               map[string]int64
		RPS                                      float64
		P99                                      int64
		PID                                      int
		RSSAfter                                 int64
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if rep.Requests != 2000 || rep.OK != 2000 || rep.Errors != 0 || len(rep.ErrorKinds) != 0 {
		t.Fatalf("report: %s", out)
	}
	if rep.Announces+rep.Scrapes != 2000 || rep.Scrapes == 0 || rep.Events["started"] < 300 || rep.RPS <= 0 || rep.P99 <= 0 {
		t.Fatalf("report: %s", out)
	}
	if rep.PID != p.cmd.Process.Pid || rep.RSSAfter <= 0 {
		t.Errorf("the tracker's process was not found from its port: pid %d (want %d), RSS %d", rep.PID, p.cmd.Process.Pid, rep.RSSAfter)
	}

	// The text report, and the loopback guard.
	text := mustRun(t, env, "bench", "--setup=false", "--target", base, "--users", "100", "--torrents", "100",
		"--requests", "200", "--keepalive=false", "--quiet")
	for _, want := range []string{"requests    200 in", "new connection per request", "errors      0", "latency     p50"} {
		if !strings.Contains(text, want) {
			t.Errorf("text report lacks %q:\n%s", want, text)
		}
	}
	r = run(t, env, "bench", "--setup=false", "--target", "http://192.0.2.1:2710", "--requests", "1", "--quiet")
	if r.code == 0 || !strings.Contains(r.stderr, "not a loopback address") {
		t.Errorf("remote target: exit %d, stderr %s", r.code, r.stderr)
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("serve exit %d:\n%s", code, p.stderr.String())
	}
}
