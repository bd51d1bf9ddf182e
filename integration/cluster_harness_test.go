package integration

// A cluster for the tests of issue 17: n `xbt-tracker serve --cluster 1`
// instances on one catalog database behind HAProxy, run with the shipped
// deploy/haproxy/haproxy.cfg. Instances are numbered from 1, like the
// HAProxy servers t1, t2, t3 they stand behind.
//
//	c := startCluster(t, 3, clusterOpts{})
//	uid := c.cat.addUser(t)
//	fid := c.cat.addFile(t, ih)              // picked up within a second or two
//	body, who := c.get(t, c.announceURL(uid, ih, url.Values{...}))
//	c.stopInstance(2)                        // SIGTERM; returns once HAProxy saw it down
//	c.startInstance(2)                       // same port; returns once HAProxy saw it up
//
// Everything (instances, HAProxy, database) is cleaned up by t.Cleanup.

import (
	"encoding/csv"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xbt-tracker/xbt-tracker/passkey"
)

// clusterMaxInstances is how many servers deploy/haproxy/haproxy.cfg declares.
const clusterMaxInstances = 3

// clusterInstanceHeader is the response header HAProxy adds with the name of
// the server (t1, t2, t3) that answered.
const clusterInstanceHeader = "X-Tracker-Instance"

// requireHAProxy skips the test when haproxy is not installed, or fails it
// when the CI variable is set (CI installs it).
func requireHAProxy(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("haproxy"); err == nil {
		return
	}
	msg := "haproxy not installed: apt-get install -y --no-install-recommends haproxy (then systemctl disable --now haproxy: the tests run their own)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg + " (CI is set, so this is a failure)")
	}
	t.Skip(msg)
}

// clusterOpts are the variations of startCluster. The zero value is a
// fresh migrated catalog and instances that write statistics and re-read
// the catalog every second.
type clusterOpts struct {
	// catalog is the shared database; nil: a new migrated throwaway one.
	// Pass one to register users and torrents before the instances start.
	catalog *syCatalog
	// serveArgs are appended to every instance's serve arguments, after
	// clusterServeArgs: a single-valued flag given again wins. Do not pass
	// --listen-http (repeatable: it would add a listener).
	serveArgs []string
	// env adds XBT_<KEY>=value settings to every instance's environment.
	env []string
	// checkInter is HAProxy's health check interval (XBT_HAPROXY_CHECK_INTER);
	// default 250ms, so that with fall 2 / rise 2 an instance is seen down
	// or up again within about a second.
	checkInter time.Duration
}

// clusterServeArgs are the arguments every instance gets besides its
// --listen-http: the cluster mode the shipped haproxy.cfg requires, HAProxy
// (127.0.0.1) as trusted proxy, no warm-restart state, and short intervals.
var clusterServeArgs = []string{
	"--cluster", "1", "--listen-udp", "off", "--trusted-proxies", "127.0.0.1", "--state-file", "",
	"--write-db-interval", "1", "--read-db-interval", "1", "--read-config-interval", "1",
}

// cluster is a running cluster; see the top of this file.
type cluster struct {
	t      *testing.T
	cat    *syCatalog // the one database every instance uses
	secret string     // torrent_pass_private_key, for passkey.Derive
	env    []string   // every instance's environment (XBT_DSN first)
	args   []string   // every instance's serve arguments but --listen-http

	addrs []string       // instance i's host:port at addrs[i-1], kept across restarts
	procs []*trackerProc // instance i's process at procs[i-1]; nil while stopped

	hapAddr string        // HAProxy's frontend host:port
	socket  string        // HAProxy's runtime API (stats socket, level admin)
	hap     *exec.Cmd     // HAProxy itself
	hapOut  *lineBuffer   // its stdout and stderr (server state changes)
	hapDone chan struct{} // closed when HAProxy has exited
}

// startCluster starts n instances (1..3) and HAProxy in front of them, and
// returns once HAProxy's health checks pass for all n. The servers of the
// cfg beyond n stay spare slots in maintenance.
func startCluster(t *testing.T, n int, opts clusterOpts) *cluster {
	t.Helper()
	requireHAProxy(t)
	if n < 1 || n > clusterMaxInstances {
		t.Fatalf("startCluster: %d instances; deploy/haproxy/haproxy.cfg has %d server slots", n, clusterMaxInstances)
	}
	cat := opts.catalog
	if cat == nil {
		cat = newSyCatalog(t)
	}
	c := &cluster{t: t, cat: cat, secret: clusterSecret(t, cat)}
	c.env = append([]string{"XBT_DSN=" + cat.dsn}, opts.env...)
	c.args = append(append([]string(nil), clusterServeArgs...), opts.serveArgs...)
	for range n {
		c.addrs = append(c.addrs, fmt.Sprintf("127.0.0.1:%d", freePort(t)))
		c.procs = append(c.procs, nil)
	}
	// Start every instance before waiting for any: they load the catalog
	// in parallel.
	for i := 1; i <= n; i++ {
		c.procs[i-1] = c.launch(i)
	}
	for i := 1; i <= n; i++ {
		c.waitListening(i)
	}
	c.startHAProxy(opts.checkInter)
	for i := 1; i <= n; i++ {
		c.waitServer(serverName(i), "UP", 20*time.Second)
	}
	return c
}

// clusterSecret returns the catalog's torrent_pass_private_key, inserting
// one first when there is none: instances starting together on a fresh
// database would otherwise each generate their own.
func clusterSecret(t *testing.T, cat *syCatalog) string {
	t.Helper()
	var s string
	err := cat.db.QueryRow("SELECT value FROM xbt_config WHERE name = 'torrent_pass_private_key'").Scan(&s)
	if err == nil && s != "" {
		return s
	}
	s = clSecret(t)
	cat.exec(t, "REPLACE INTO xbt_config(name, value) VALUES('torrent_pass_private_key', ?)", s)
	return s
}

// serverName is instance i's server name in haproxy.cfg.
func serverName(i int) string { return fmt.Sprintf("t%d", i) }

// instanceIndex is the instance number behind a server name ("t2" -> 2), 0
// for anything else (HAProxy's own answers carry no name).
func (c *cluster) instanceIndex(name string) int {
	for i := 1; i <= len(c.addrs); i++ {
		if name == serverName(i) {
			return i
		}
	}
	return 0
}

// size is the number of instances (running or stopped).
func (c *cluster) size() int { return len(c.addrs) }

// baseURL is HAProxy's, the one clients announce to.
func (c *cluster) baseURL() string { return "http://" + c.hapAddr }

// instanceURL is instance i's own address, bypassing HAProxy.
func (c *cluster) instanceURL(i int) string { return "http://" + c.addrs[i-1] }

// instance is instance i's process, nil while it is stopped.
func (c *cluster) instance(i int) *trackerProc { return c.procs[i-1] }

// passkey is uid's passkey for the torrent ih.
func (c *cluster) passkey(uid uint32, ih [20]byte) string {
	return passkey.Derive(c.secret, 0, uid, ih)
}

// announceURL is an announce of ih by uid through HAProxy with params
// (peer_id, port, left, ...) added; info_hash is escaped as Go does.
func (c *cluster) announceURL(uid uint32, ih [20]byte, params url.Values) string {
	q := url.Values{}
	for k, v := range params {
		q[k] = v
	}
	q.Set("info_hash", string(ih[:]))
	return c.baseURL() + "/" + c.passkey(uid, ih) + "/announce?" + q.Encode()
}

// launch starts instance i on its port and returns without waiting.
func (c *cluster) launch(i int) *trackerProc {
	c.t.Helper()
	args := append([]string{"serve"}, c.args...)
	args = append(args, "--listen-http", c.addrs[i-1])
	cmd := exec.Command(binary, args...)
	cmd.Env = append(cleanEnv(), c.env...)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	p := &trackerProc{cmd: cmd, stderr: newLineBuffer(pipe), done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	c.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// waitListening waits until instance i logs that it listens.
func (c *cluster) waitListening(i int) {
	c.t.Helper()
	p := c.procs[i-1]
	if !p.stderr.waitFor(`"listening"`, 30*time.Second) {
		_ = p.cmd.Process.Kill()
		c.t.Fatalf("instance %d (%s) did not start listening; stderr:\n%s", i, c.addrs[i-1], p.stderr.String())
	}
}

// stopInstance stops instance i with SIGTERM (it writes its pending
// statistics first), fails the test unless it exits 0, and returns once
// HAProxy marks its server DOWN: from then on its torrents go to the others.
func (c *cluster) stopInstance(i int) {
	c.t.Helper()
	p := c.procs[i-1]
	if p == nil {
		c.t.Fatalf("stopInstance(%d): not running", i)
	}
	if code := p.stop(c.t); code != 0 {
		c.t.Fatalf("instance %d exited %d after SIGTERM; stderr:\n%s", i, code, clTail(p.stderr.String()))
	}
	c.procs[i-1] = nil
	c.waitServer(serverName(i), "DOWN", 15*time.Second)
}

// startInstance starts a stopped instance i again on the same port and
// returns once HAProxy marks its server UP (its torrents come back to it).
func (c *cluster) startInstance(i int) {
	c.t.Helper()
	if c.procs[i-1] != nil {
		c.t.Fatalf("startInstance(%d): already running", i)
	}
	c.procs[i-1] = c.launch(i)
	c.waitListening(i)
	c.waitServer(serverName(i), "UP", 15*time.Second)
}

// disableServer puts a server in maintenance on HAProxy's runtime API (the
// instance keeps running; HAProxy stops sending it requests).
func (c *cluster) disableServer(name string) {
	c.t.Helper()
	c.runtimeOK("disable server trackers/" + name)
	c.waitServer(name, "MAINT", 10*time.Second)
}

// enableServer takes a server out of maintenance and returns once its
// health checks pass.
func (c *cluster) enableServer(name string) {
	c.t.Helper()
	c.runtimeOK("enable server trackers/" + name)
	c.waitServer(name, "UP", 15*time.Second)
}

// runtimeOK runs a runtime API command that prints nothing on success.
func (c *cluster) runtimeOK(cmd string) {
	c.t.Helper()
	out, err := c.runtime(cmd)
	if err != nil || strings.TrimSpace(out) != "" {
		c.t.Fatalf("haproxy runtime API %q: %v %s", cmd, err, out)
	}
}

// runtime sends one command to HAProxy's runtime API and returns its answer.
func (c *cluster) runtime(cmd string) (string, error) {
	conn, err := net.DialTimeout("unix", c.socket, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(conn)
	return string(b), err
}

// showStat returns HAProxy's `show stat` for the servers of the trackers
// backend: server name -> column name (status, check_status, stot, ...) ->
// value. See HAProxy's management guide, "show stat", for the columns.
func (c *cluster) showStat() (map[string]map[string]string, error) {
	out, err := c.runtime("show stat")
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(out, "# ")))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("show stat: %w\n%s", err, out)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("show stat: no answer")
	}
	header := rows[0]
	servers := map[string]map[string]string{}
	for _, row := range rows[1:] {
		if len(row) < 2 || row[0] != "trackers" || row[1] == "BACKEND" {
			continue
		}
		cols := map[string]string{}
		for j, name := range header {
			if j < len(row) {
				cols[name] = row[j]
			}
		}
		servers[row[1]] = cols
	}
	return servers, nil
}

// serverStates returns each server's status (UP, DOWN, MAINT, "UP 1/2",
// ...) and its last health check result (L7OK, L4CON, ...).
func (c *cluster) serverStates() (status, check map[string]string, err error) {
	servers, err := c.showStat()
	if err != nil {
		return nil, nil, err
	}
	status, check = map[string]string{}, map[string]string{}
	for name, cols := range servers {
		status[name], check[name] = cols["status"], cols["check_status"]
	}
	return status, check, nil
}

// serverSessions is how many requests HAProxy has sent each server so far
// (stot; health checks are not counted).
func (c *cluster) serverSessions(t *testing.T) map[string]int {
	t.Helper()
	servers, err := c.showStat()
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for name, cols := range servers {
		v, err := strconv.Atoi(cols["stot"])
		if err != nil {
			t.Fatalf("show stat: server %s stot %q", name, cols["stot"])
		}
		n[name] = v
	}
	return n
}

// waitServer waits until HAProxy reports the server in state want: "UP"
// (and its last health check passed), "DOWN" or "MAINT".
func (c *cluster) waitServer(name, want string, d time.Duration) {
	c.t.Helper()
	var status, check map[string]string
	var err error
	ok := clWait(d, func() bool {
		status, check, err = c.serverStates()
		if err != nil {
			return false
		}
		switch want {
		case "UP":
			return status[name] == "UP" && check[name] == "L7OK"
		case "MAINT":
			return strings.HasPrefix(status[name], "MAINT")
		}
		return status[name] == want
	})
	if !ok {
		c.t.Fatalf("HAProxy server %s not %s after %v: status %q, last check %q (err %v); HAProxy output:\n%s",
			name, want, d, status[name], check[name], err, clTail(c.hapOut.String()))
	}
}

// startHAProxy runs haproxy -db with the shipped configuration, the
// instances' addresses in its environment, on a free port.
func (c *cluster) startHAProxy(checkInter time.Duration) {
	t := c.t
	t.Helper()
	if checkInter == 0 {
		checkInter = 250 * time.Millisecond
	}
	// A Unix socket path must stay short (108 bytes): not under t.TempDir().
	dir, err := os.MkdirTemp("", "xbt-haproxy")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c.socket = filepath.Join(dir, "admin.sock")
	c.hapAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	env := append(cleanEnv(),
		"XBT_HAPROXY_BIND="+c.hapAddr,
		"XBT_HAPROXY_SOCKET="+c.socket,
		fmt.Sprintf("XBT_HAPROXY_CHECK_INTER=%dms", checkInter.Milliseconds()))
	for i, a := range c.addrs {
		env = append(env, fmt.Sprintf("XBT_TRACKER_%d=%s", i+1, a))
	}
	cfg := filepath.Join(clRepoRoot(), "deploy/haproxy/haproxy.cfg")
	c.hap = exec.Command("haproxy", "-f", cfg, "-db")
	c.hap.Env = env
	c.hap.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	c.hap.Stdout, c.hap.Stderr = pw, pw
	c.hapOut = newLineBuffer(pr)
	c.hapDone = make(chan struct{})
	if err := c.hap.Start(); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	go func() {
		_ = c.hap.Wait()
		pw.Close()
		close(c.hapDone)
	}()
	t.Cleanup(c.stopHAProxy)
	// Up means the runtime API answers and lists the servers.
	if !clWait(15*time.Second, func() bool {
		select {
		case <-c.hapDone:
			return true
		default:
		}
		_, _, err := c.serverStates()
		return err == nil
	}) || c.hapExited() {
		t.Fatalf("haproxy did not start (runtime API %s); its output:\n%s", c.socket, c.hapOut.String())
	}
}

func (c *cluster) hapExited() bool {
	select {
	case <-c.hapDone:
		return true
	default:
		return false
	}
}

// stopHAProxy stops HAProxy (SIGTERM is its immediate stop).
func (c *cluster) stopHAProxy() {
	if c.hap == nil || c.hap.Process == nil || c.hapExited() {
		return
	}
	_ = c.hap.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.hapDone:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-c.hap.Process.Pid, syscall.SIGKILL)
		<-c.hapDone
	}
}

// clusterHTTP opens a new connection per request, so that a request either
// reached HAProxy and was answered or failed without effect. HAProxy
// balances every request on its own, on a kept-alive connection too.
var clusterHTTP = &http.Client{
	Timeout:   10 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true},
}

// answeredBy is the instance (server name: t1, t2, t3) that answered a
// response that came through HAProxy; "" for HAProxy's own answers (503
// when no server is up, 400 for a request it refuses).
func answeredBy(resp *http.Response) string { return resp.Header.Get(clusterInstanceHeader) }

// get sends a GET (a new connection) and returns the body and the instance
// that answered. Transport errors and non-200 answers fail the test.
func (c *cluster) get(t *testing.T, u string) (body, instance string) {
	t.Helper()
	return c.getWith(t, clusterHTTP, u)
}

// getWith is get with a given client (for keep-alive connections).
func (c *cluster) getWith(t *testing.T, hc *http.Client, u string) (body, instance string) {
	t.Helper()
	resp, err := hc.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d from %q: %s", u, resp.StatusCode, answeredBy(resp), b)
	}
	return string(b), answeredBy(resp)
}

// ownerOf is the instance HAProxy sends the torrent ih to right now, asked
// with a scrape by uid (a scrape changes nothing).
func (c *cluster) ownerOf(t *testing.T, uid uint32, ih [20]byte) string {
	t.Helper()
	u := c.baseURL() + "/" + c.passkey(uid, ih) + "/scrape?info_hash=" + url.QueryEscape(string(ih[:]))
	_, who := c.get(t, u)
	if who == "" {
		t.Fatalf("scrape through HAProxy without %s header", clusterInstanceHeader)
	}
	return who
}
