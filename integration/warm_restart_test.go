package integration

// Warm restarts (state_file, sync/state.go) with the real binary and
// MariaDB: a SIGTERM saves the swarms and the next start restores them, so
// peer lists survive and the bytes moved during the restart are credited
// exactly once; after kill -9 the start is cold, and an old state file is
// not believed; real clients keep downloading across a restart.

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// wrWarmRE and wrSavedRE are the log lines of a warm start and of a save.
var (
	wrWarmRE  = regexp.MustCompile(`"msg":"warm start: swarms restored from the state file","peers":(\d+),"torrents":(\d+)`)
	wrSavedRE = regexp.MustCompile(`"msg":"saved the swarms to the state file for a warm restart","state_file":"[^"]*","peers":(\d+)`)
)

// wrFixture: a catalog with a seeder and a leecher user and one torrent, a
// tracker whose state file is in the test's directory, and two simulated
// clients.
type wrFixture struct {
	cat              *syCatalog
	env              []string
	state            string
	ih               [20]byte
	fid              uint32
	seedUID, leecUID uint32
	seeder, leecher  *simPeer
}

func wrSetup(t *testing.T) (*wrFixture, *trackerProc) {
	t.Helper()
	f := &wrFixture{cat: newSyCatalog(t), ih: syInfoHash("warm restart")}
	f.seedUID, f.leecUID = f.cat.addUser(t), f.cat.addUser(t)
	f.fid = f.cat.addFile(t, f.ih)
	f.state = filepath.Join(t.TempDir(), "xbt-tracker.state")
	f.env = []string{"XBT_DSN=" + f.cat.dsn, "XBT_STATE_FILE=" + f.state}
	p := f.start(t)
	if !strings.Contains(p.stderr.String(), `"cold start: no state file`) {
		t.Fatalf("first start: no cold-start line:\n%s", p.stderr.String())
	}
	secret := configValue(t, f.cat.db, "torrent_pass_private_key")
	base := p.syBaseURL(t)
	f.seeder = newSimPeer(base, secret, 0, f.seedUID, f.ih, 1, 0)
	f.leecher = newSimPeer(base, secret, 0, f.leecUID, f.ih, 2, 1<<30)
	syMustAnnounce(t, f.seeder, 0, 0, "started")
	syMustAnnounce(t, f.leecher, 0, 0, "started")
	syMustAnnounce(t, f.seeder, 1000, 0, "")
	syMustAnnounce(t, f.leecher, 0, 1000, "")
	f.waitCredit(t, 1000, 1000)
	return f, p
}

// start runs serve with a 30-minute announce interval: only a warm restart
// can give a client its peers before that.
func (f *wrFixture) start(t *testing.T) *trackerProc {
	t.Helper()
	return startServe(t, f.env, append([]string{"--announce-interval", "1800"}, syncFlags...)...)
}

// retarget points the clients at a restarted tracker.
func (f *wrFixture) retarget(t *testing.T, p *trackerProc) {
	base := p.syBaseURL(t)
	f.seeder.base, f.leecher.base = base, base
}

// credit is what xbt_users and xbt_files_users hold for the two users.
func (f *wrFixture) credit(t *testing.T) (seedUp, leechDown, fuSeedUp, fuLeechDown uint64) {
	t.Helper()
	q := func(dst *uint64, query string, args ...any) {
		if err := f.cat.db.QueryRow(query, args...).Scan(dst); err != nil {
			*dst = 0
		}
	}
	q(&seedUp, "SELECT uploaded FROM xbt_users WHERE uid = ?", f.seedUID)
	q(&leechDown, "SELECT downloaded FROM xbt_users WHERE uid = ?", f.leecUID)
	q(&fuSeedUp, "SELECT uploaded FROM xbt_files_users WHERE fid = ? AND uid = ?", f.fid, f.seedUID)
	q(&fuLeechDown, "SELECT downloaded FROM xbt_files_users WHERE fid = ? AND uid = ?", f.fid, f.leecUID)
	return
}

// waitCredit waits until both tables show exactly up and down, then makes
// sure they stay there (nothing is credited twice by a later flush).
func (f *wrFixture) waitCredit(t *testing.T, up, down uint64) {
	t.Helper()
	check := func() string {
		a, b, c, d := f.credit(t)
		if a != up || b != down || c != up || d != down {
			return fmt.Sprintf("credited: xbt_users seeder up %d, leecher down %d; xbt_files_users %d, %d; want %d and %d", a, b, c, d, up, down)
		}
		return ""
	}
	syEventually(t, 10*time.Second, check)
	time.Sleep(2500 * time.Millisecond) // two more flushes (write_db_interval 1 s)
	if msg := check(); msg != "" {
		t.Fatal("later: " + msg)
	}
}

// counts is xbt_files' seeders, leechers and completed for the torrent.
func (f *wrFixture) counts(t *testing.T) string {
	t.Helper()
	var s, l, c int
	if err := f.cat.db.QueryRow("SELECT seeders, leechers, completed FROM xbt_files WHERE fid = ?", f.fid).Scan(&s, &l, &c); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("seeders %d leechers %d completed %d", s, l, c)
}

// wrCompact is a peer's compact entry as the tracker hands it out: the
// simulated clients announce from 127.0.0.1.
func wrCompact(p *simPeer) string {
	return string([]byte{127, 0, 0, 1, byte(p.port >> 8), byte(p.port)})
}

// wrStopSaved sends SIGTERM, expects exit 0 and a state file with peers.
func (f *wrFixture) wrStopSaved(t *testing.T, p *trackerProc, peers int) {
	t.Helper()
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM:\n%s", code, p.stderr.String())
	}
	m := wrSavedRE.FindStringSubmatch(p.stderr.String())
	if m == nil || m[1] != strconv.Itoa(peers) {
		t.Fatalf("after SIGTERM: want a line saving %d peers to the state file:\n%s", peers, p.stderr.String())
	}
	if _, err := os.Stat(f.state); err != nil {
		t.Fatalf("no state file after SIGTERM: %v", err)
	}
}

// TestWarmRestartSIGTERM: SIGTERM, then a restart. Before any client
// announces again, the swarm is there (scrape and the database's counts);
// the leecher's next announce lists the seeder at once (announce_interval
// is 30 minutes); the bytes both moved while the tracker was down are
// credited exactly once, in xbt_users and xbt_files_users.
func TestWarmRestartSIGTERM(t *testing.T) {
	f, p := wrSetup(t)
	before := f.counts(t)
	if before != "seeders 1 leechers 1 completed 0" {
		t.Fatalf("xbt_files before the restart: %s", before)
	}
	f.wrStopSaved(t, p, 2)

	p = f.start(t)
	f.retarget(t, p)
	m := wrWarmRE.FindStringSubmatch(p.stderr.String())
	if m == nil || m[1] != "2" || m[2] != "1" {
		t.Fatalf("restart after SIGTERM: want a warm start with 2 peers on 1 torrent:\n%s", p.stderr.String())
	}
	if _, err := os.Stat(f.state); !os.IsNotExist(err) {
		t.Fatalf("the state file is still there after a warm start (a crash must not reuse it): %v", err)
	}
	// The swarm answers before anyone announced.
	scrape := syGet(t, f.leecher.base+"/"+f.leecher.pk+"/scrape?info_hash="+clEscapeHex(fmt.Sprintf("%x", f.ih)))
	if !strings.Contains(scrape, "8:completei1e") || !strings.Contains(scrape, "10:incompletei1e") {
		t.Fatalf("scrape right after the restart: %q, want 1 seeder and 1 leecher", scrape)
	}
	if got := f.counts(t); got != before {
		t.Fatalf("xbt_files after the restart: %s, want %s", got, before)
	}

	// Both moved 5000 bytes while the tracker was down.
	body := syMustAnnounce(t, f.leecher, 0, 5000, "")
	if !strings.Contains(body, wrCompact(f.seeder)) {
		t.Fatalf("the leecher's first announce after the restart does not list the seeder: %q", body)
	}
	body = syMustAnnounce(t, f.seeder, 5000, 0, "")
	if !strings.Contains(body, wrCompact(f.leecher)) {
		t.Fatalf("the seeder's first announce after the restart does not list the leecher: %q", body)
	}
	f.waitCredit(t, 6000, 6000)
	if got := f.counts(t); got != before {
		t.Fatalf("xbt_files after the announces: %s, want %s", got, before)
	}
	// Announcing the same counters again credits nothing more.
	syMustAnnounce(t, f.leecher, 0, 0, "")
	syMustAnnounce(t, f.seeder, 0, 0, "")
	f.waitCredit(t, 6000, 6000)

	// And again: a second warm restart continues just the same.
	f.wrStopSaved(t, p, 2)
	p = f.start(t)
	f.retarget(t, p)
	if m := wrWarmRE.FindStringSubmatch(p.stderr.String()); m == nil || m[1] != "2" {
		t.Fatalf("second restart not warm:\n%s", p.stderr.String())
	}
	syMustAnnounce(t, f.leecher, 0, 700, "")
	syMustAnnounce(t, f.seeder, 700, 0, "")
	f.waitCredit(t, 6700, 6700)
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestWarmRestartAfterKillIsCold: after kill -9 there is no fresh state
// file and the start is cold; an older state file (saved by an earlier
// clean stop, and put back) is not believed either, because a tracker
// that did not stop cleanly has used the database since. A cold start
// credits a peer's next announce nothing (no previous counters) and its
// answer lists nobody.
func TestWarmRestartAfterKillIsCold(t *testing.T) {
	f, p := wrSetup(t)
	f.wrStopSaved(t, p, 2)
	old, err := os.ReadFile(f.state)
	if err != nil {
		t.Fatal(err)
	}

	p = f.start(t) // warm: uses and removes the file
	f.retarget(t, p)
	if wrWarmRE.FindStringSubmatch(p.stderr.String()) == nil {
		t.Fatalf("restart after SIGTERM not warm:\n%s", p.stderr.String())
	}
	syMustAnnounce(t, f.leecher, 0, 2000, "")
	f.waitCredit(t, 1000, 3000)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	if strings.Contains(p.stderr.String(), "saved the swarms") {
		t.Fatal("a killed tracker saved its state")
	}

	// The stale file from the earlier clean stop is back: not used.
	if err := os.WriteFile(f.state, old, 0o600); err != nil {
		t.Fatal(err)
	}
	p = f.start(t)
	f.retarget(t, p)
	log := p.stderr.String()
	if wrWarmRE.MatchString(log) || !strings.Contains(log, `"cold start: the state file is not used"`) ||
		!strings.Contains(log, "other tracker process(es) used the database since it was saved") {
		t.Fatalf("restart after kill -9 with an old state file: want a cold start naming the reason:\n%s", log)
	}
	if _, err := os.Stat(f.state); !os.IsNotExist(err) {
		t.Fatalf("the refused state file is still there: %v", err)
	}
	body := syMustAnnounce(t, f.leecher, 0, 4000, "")
	if strings.Contains(body, wrCompact(f.seeder)) {
		t.Fatalf("a cold start listed the seeder before it announced: %q", body)
	}
	// Cold: the 4000 bytes have no baseline and are not credited.
	f.waitCredit(t, 1000, 3000)

	// kill -9 again, no file at all: cold, said so.
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	p = f.start(t)
	if log := p.stderr.String(); wrWarmRE.MatchString(log) || !strings.Contains(log, `"cold start: no state file`) {
		t.Fatalf("restart after kill -9: want a cold start (no state file):\n%s", log)
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestWarmRestartRealClients: an aria2 seeder (upload limited to 256 KiB/s,
// so the 4 MiB transfer takes about 16 s) and a libtorrent leecher of a
// private torrent; announce_interval is 30 minutes, and neither client
// announces on its own before that. Mid-transfer the tracker is restarted
// (SIGTERM, start), then the leecher is restarted too (its stop announce,
// then a new process on a new port resuming the partial file): the new
// process learns of the seeder only from the tracker, so its download
// continues only if the restarted tracker kept the swarm. At the end both
// stop; the seeder's whole upload, announced once in its stop, is credited
// from the counters of its start announce, which only the state file
// carried across the restart; the leecher's two processes' downloads are
// credited exactly as reported.
//
// aria2 seeds (it accepts connections from a leecher that dials it and
// does not announce again by itself without --bt-tracker-interval);
// libtorrent leeches (a new lt_driver process resumes a partial download
// by checking the pieces on disk, no control file needed).
func TestWarmRestartRealClients(t *testing.T) {
	requireClients(t, kindAria2, kindLibtorrent)
	cat := newClCatalog(t)
	pay := makeClPayload(t, "warm-restart.bin", clPayloadSize)
	work := t.TempDir()
	canonical := filepath.Join(work, "canonical.torrent")
	r := run(t, cat.env, "torrent", "stamp", "--private", "--register", "-o", canonical, pay.torrent)
	fidM := regexp.MustCompile(`(?m)^fid (\d+)$`).FindStringSubmatch(r.stdout)
	ihM := clInfoHashRE.FindStringSubmatch(r.stdout)
	if r.code != 0 || fidM == nil || ihM == nil {
		t.Fatalf("torrent stamp --private --register: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	fid, infoHash := fidM[1], ihM[1]

	// One tracker address for both runs, behind the recording proxy the
	// torrents announce to.
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	state := filepath.Join(t.TempDir(), "xbt-tracker.state")
	env := append(append([]string(nil), cat.env...), "XBT_STATE_FILE="+state)
	startTracker := func() *trackerProc {
		return startServe(t, env, "--listen-http", addr, "--announce-interval", "1800")
	}
	p := startTracker()
	proxy := startRecordingProxy(t, addr)
	seedTorrent, seedPK := clStamp(t, cat.env, cat.seeder, proxy.base(), canonical, filepath.Join(work, "seeder.torrent"))
	leechTorrent, leechPK := clStamp(t, cat.env, cat.leecher, proxy.base(), canonical, filepath.Join(work, "leecher.torrent"))
	proxy.name(seedPK, kindAria2, "seeder")
	proxy.name(leechPK, kindLibtorrent, "leecher")
	scrape := func() string {
		return clGet(t, "http://"+addr+"/"+seedPK+"/scrape?info_hash="+clEscapeHex(infoHash))
	}

	seeder := wrStartAria2Seeder(t, seedTorrent, pay.dir, "256K")
	if !clWait(30*time.Second, func() bool { return strings.Contains(scrape(), "8:completei1e") }) {
		t.Fatalf("the aria2 seeder never counted; scrape %q; output:\n%s", scrape(), clTail(seeder.out.String()))
	}
	leechDir := filepath.Join(work, "leech")
	leecher := startBTClient(t, kindLibtorrent, leechTorrent, leechDir, false)
	if !clWait(60*time.Second, func() bool { return wrProgress(leecher.out.String()) >= 0.2 }) {
		t.Fatalf("the leecher did not reach 20%%; output:\n%s\nseeder:\n%s", clTail(leecher.out.String()), clTail(seeder.out.String()))
	}
	t.Logf("restarting the tracker at %.0f%%", 100*wrProgress(leecher.out.String()))

	// The tracker restarts mid-transfer.
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM:\n%s", code, p.stderr.String())
	}
	if m := wrSavedRE.FindStringSubmatch(p.stderr.String()); m == nil || m[1] != "2" {
		t.Fatalf("SIGTERM did not save the 2 peers:\n%s", p.stderr.String())
	}
	p = startTracker()
	if m := wrWarmRE.FindStringSubmatch(p.stderr.String()); m == nil || m[1] != "2" {
		t.Fatalf("the restart is not warm with 2 peers:\n%s", p.stderr.String())
	}

	// The leecher restarts too: stop (event=stopped), then a new process.
	progress := wrProgress(leecher.out.String())
	if progress >= 1 {
		t.Fatalf("the download finished before the leecher could be restarted (too fast for this test)")
	}
	isStopped := func(r clRequest) bool { return r.event() == "stopped" }
	leecher.stop(func() bool { return proxy.waitFor("leecher", 0, isStopped) })
	if !proxy.waitFor("leecher", 20*time.Second, isStopped) {
		t.Fatal("no event=stopped from the first leecher process")
	}
	t.Logf("first leecher process stopped at %.0f%%", 100*progress)
	started := time.Now()
	leecher2 := startBTClient(t, kindLibtorrent, leechTorrent, leechDir, false)
	got := filepath.Join(leechDir, pay.name)
	if !clWait(60*time.Second, func() bool { return clFileSHA256(got) == pay.sha256 }) {
		t.Fatalf("the restarted leecher did not finish within 60 s (announce_interval is 1800 s: its peers can only come from the restored swarm)\nleecher:\n%s\nseeder:\n%s\ntracker:\n%s",
			clTail(leecher2.out.String()), clTail(seeder.out.String()), clTail(p.stderr.String()))
	}
	t.Logf("the restarted leecher finished %s after it started", time.Since(started).Round(100*time.Millisecond))

	for _, c := range []struct {
		role   string
		client *btClient
	}{{"leecher", leecher2}, {"seeder", seeder}} {
		n := len(proxy.requests(c.role))
		stoppedNow := func() bool {
			for _, r := range proxy.requests(c.role)[n:] {
				if isStopped(r) {
					return true
				}
			}
			return false
		}
		c.client.stop(stoppedNow)
		if !clWait(20*time.Second, stoppedNow) {
			t.Fatalf("no event=stopped from the %s", c.role)
		}
	}
	// What the clients reported: the seeder's upload (one peer), the
	// leecher's downloads (two peers: one per process).
	seedUp := clMaxParam(proxy.requests("seeder"), "uploaded")
	byPeer := map[string][]clRequest{}
	for _, r := range proxy.requests("leecher") {
		byPeer[r.query.Get("peer_id")] = append(byPeer[r.query.Get("peer_id")], r)
	}
	if len(byPeer) != 2 {
		t.Fatalf("%d leecher peer ids, want 2 (one per process)", len(byPeer))
	}
	var leechDown uint64
	for _, rs := range byPeer {
		leechDown += clMaxParam(rs, "downloaded")
	}
	t.Logf("reported: seeder uploaded %d, leecher downloaded %d (two processes), payload %d", seedUp, leechDown, pay.size)
	if seedUp < uint64(pay.size) {
		t.Fatalf("the seeder reported %d bytes uploaded, less than the payload", seedUp)
	}

	var st clStats
	if !clWait(20*time.Second, func() bool {
		st = readClStats(t, cat.db, fid, cat.seeder, cat.leecher)
		return st.seederUp == seedUp && st.fuSeederUp == seedUp && st.leecherDown == leechDown && st.fuLeecherDown == leechDown &&
			st.seeders == 0 && st.leechers == 0
	}) {
		t.Fatalf("database %+v; want the seeder credited its %d bytes uploaded and the leecher %d downloaded, exactly, and no peers left", st, seedUp, leechDown)
	}
	t.Logf("database: %+v", st)
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
}

var wrProgressRE = regexp.MustCompile(`"progress": ([0-9.]+)`)

// wrProgress is the last progress an lt_driver reported (0 to 1).
func wrProgress(out string) float64 {
	m := wrProgressRE.FindAllStringSubmatch(out, -1)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[len(m)-1][1], 64)
	return v
}

// wrStartAria2Seeder is startBTClient's aria2 seeder with an upload limit
// and no --bt-tracker-interval: it announces when it starts and stops, and
// otherwise only at the tracker's interval.
func wrStartAria2Seeder(t *testing.T, torrent, dir, uploadLimit string) *btClient {
	t.Helper()
	c := &btClient{t: t, kind: kindAria2, dir: dir, port: freePort(t), done: make(chan struct{})}
	c.logFile = filepath.Join(t.TempDir(), "aria2.log")
	c.cmd = exec.Command("aria2c",
		"--no-conf=true", "--dir="+dir, "--listen-port="+fmt.Sprint(c.port),
		"--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false",
		"--interface=127.0.0.1", "--disable-ipv6=true", "--file-allocation=none",
		"--summary-interval=0", "--console-log-level=notice", "--log="+c.logFile, "--log-level=info",
		"--check-integrity=true", "--bt-tracker-connect-timeout=10", "--bt-tracker-timeout=10",
		"--auto-save-interval=0", "--save-not-found=false",
		"--seed-ratio=0.0", "--max-overall-upload-limit="+uploadLimit,
		torrent)
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	c.cmd.Stdout, c.cmd.Stderr = pw, pw
	c.out = newLineBuffer(pr)
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start aria2c: %v", err)
	}
	go func() {
		_ = c.cmd.Wait()
		pw.Close()
		close(c.done)
	}()
	t.Cleanup(c.kill)
	return c
}
