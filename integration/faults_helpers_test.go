package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Helpers of the fault suite (faults_test.go), prefixed ft.

// ftPeer is a simulated client with the user and torrent it announces for.
type ftPeer struct {
	*simPeer
	uid, fid uint32
}

// ftTorrent is a registered torrent.
type ftTorrent struct {
	ih  [20]byte
	fid uint32
}

// ftUsers adds n users as a catalog does.
func ftUsers(t *testing.T, cat *syCatalog, n int) []uint32 {
	t.Helper()
	uids := make([]uint32, n)
	for i := range uids {
		uids[i] = cat.addUser(t)
	}
	return uids
}

// ftTorrents registers n torrents named after prefix.
func ftTorrents(t *testing.T, cat *syCatalog, prefix string, n int) []ftTorrent {
	t.Helper()
	out := make([]ftTorrent, n)
	for i := range out {
		ih := syInfoHash(fmt.Sprint(prefix, " ", i))
		out[i] = ftTorrent{ih: ih, fid: cat.addFile(t, ih)}
	}
	return out
}

// ftPeers makes one peer per (user, torrent); every other user leeches
// unless seed.
func ftPeers(base, secret string, uids []uint32, files []ftTorrent, seed bool) []*ftPeer {
	var peers []*ftPeer
	for _, f := range files {
		for i, uid := range uids {
			left := uint64(1 << 30)
			if seed || i%2 == 0 {
				left = 0
			}
			sp := newSimPeer(base, secret, 0, uid, f.ih, len(peers), left)
			peers = append(peers, &ftPeer{simPeer: sp, uid: uid, fid: f.fid})
		}
	}
	return peers
}

// ftStartAll sends every peer's started announce (no credit yet).
func ftStartAll(t *testing.T, peers []*ftPeer) {
	t.Helper()
	for _, p := range peers {
		syMustAnnounce(t, p.simPeer, 0, 0, "started")
	}
}

// ftBytes is an uploaded/downloaded pair.
type ftBytes struct{ up, down uint64 }

// ftPerUser is what the peers were credited, per uid.
func ftPerUser(peers []*ftPeer) map[uint32]ftBytes {
	m := map[uint32]ftBytes{}
	for _, p := range peers {
		b := m[p.uid]
		b.up += p.sentUp
		b.down += p.sentDown
		m[p.uid] = b
	}
	return m
}

// ftCredited is what xbt_users must hold per uid after the peers' announces
// in one tracker process: per user and counter floor(Σ delta × factor /
// mlScale), which is what the carried remainder gives whatever the order of
// the announces (nil rules: the reported bytes).
func ftCredited(peers []*ftPeer, rules *mlRules) map[uint32]ftBytes {
	type acc struct{ up, down big.Int }
	sums := map[uint32]*acc{}
	for _, p := range peers {
		a := sums[p.uid]
		if a == nil {
			a = &acc{}
			sums[p.uid] = a
		}
		f := rules.factor(p.fid, p.uid)
		var x big.Int
		a.up.Add(&a.up, x.Mul(new(big.Int).SetUint64(p.sentUp), new(big.Int).SetUint64(f.up)))
		a.down.Add(&a.down, x.Mul(new(big.Int).SetUint64(p.sentDown), new(big.Int).SetUint64(f.down)))
	}
	out := map[uint32]ftBytes{}
	scale := big.NewInt(mlScale)
	for uid, a := range sums {
		out[uid] = ftBytes{
			up:   new(big.Int).Quo(&a.up, scale).Uint64(),
			down: new(big.Int).Quo(&a.down, scale).Uint64(),
		}
	}
	return out
}

// ftSums is what the peers were credited in all.
func ftSums(peers []*ftPeer) (up, down uint64) {
	for _, p := range peers {
		up += p.sentUp
		down += p.sentDown
	}
	return up, down
}

// ftUser reads one xbt_users row's totals.
func ftUser(cat *syCatalog, uid uint32) (ftBytes, error) {
	var b ftBytes
	err := cat.db.QueryRow("SELECT uploaded, downloaded FROM xbt_users WHERE uid = ?", uid).Scan(&b.up, &b.down)
	return b, err
}

// ftFileUser reads one xbt_files_users row's totals (zero when there is no
// row yet).
func ftFileUser(cat *syCatalog, fid, uid uint32) (ftBytes, error) {
	var b ftBytes
	err := cat.db.QueryRow("SELECT COALESCE(SUM(uploaded), 0), COALESCE(SUM(downloaded), 0) FROM xbt_files_users WHERE fid = ? AND uid = ?", fid, uid).
		Scan(&b.up, &b.down)
	return b, err
}

// ftCheckUsers compares xbt_users with want for the given uids ("" when
// they are equal).
func ftCheckUsers(cat *syCatalog, uids []uint32, want map[uint32]ftBytes) string {
	var bad []string
	for _, uid := range uids {
		got, err := ftUser(cat, uid)
		if err != nil {
			return fmt.Sprintf("xbt_users uid %d: %v", uid, err)
		}
		if got != want[uid] {
			bad = append(bad, fmt.Sprintf("uid %d has %d/%d, want %d/%d", uid, got.up, got.down, want[uid].up, want[uid].down))
		}
	}
	if len(bad) > 0 {
		return "xbt_users uploaded/downloaded: " + strings.Join(bad, "; ")
	}
	return ""
}

// ftCheckFileUsers compares every peer's xbt_files_users row with what it
// sent ("" when equal).
func ftCheckFileUsers(cat *syCatalog, peers []*ftPeer) string {
	var bad []string
	for _, p := range peers {
		got, err := ftFileUser(cat, p.fid, p.uid)
		if err != nil {
			return fmt.Sprintf("xbt_files_users fid %d uid %d: %v", p.fid, p.uid, err)
		}
		if got.up != p.sentUp || got.down != p.sentDown {
			bad = append(bad, fmt.Sprintf("fid %d uid %d has %d/%d, client sent %d/%d", p.fid, p.uid, got.up, got.down, p.sentUp, p.sentDown))
		}
	}
	if len(bad) > 0 {
		return "xbt_files_users uploaded/downloaded: " + strings.Join(bad, "; ")
	}
	return ""
}

// ftCheckTotals compares SUM(uploaded), SUM(downloaded) of xbt_users with
// the sums ("" when equal). cat's pool must not hang: for the private
// server, its read timeout bounds the query.
func ftCheckTotals(t *testing.T, cat *syCatalog, wantUp, wantDown uint64) string {
	t.Helper()
	var up, down uint64
	if err := cat.db.QueryRow("SELECT COALESCE(SUM(uploaded), 0), COALESCE(SUM(downloaded), 0) FROM xbt_users").Scan(&up, &down); err != nil {
		return "reading xbt_users: " + err.Error()
	}
	if up != wantUp || down != wantDown {
		return fmt.Sprintf("xbt_users sums uploaded %d downloaded %d, clients sent %d and %d (diff %d, %d)",
			up, down, wantUp, wantDown, int64(up-wantUp), int64(down-wantDown))
	}
	return ""
}

// ftLoad is simulated clients announcing in a loop, bounded both in
// announces per peer and in time.
type ftLoad struct {
	peers    []*ftPeer
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup

	mu       sync.Mutex
	started  int      // peers whose started announce was answered
	ok       int      // announces answered without failure
	failures []string // transport errors and failure reasons (first 20)
	nFail    int
}

// ftStartLoad starts one goroutine per peer: a started announce, then up to
// maxPer announces with random increments (multiples of granule) every
// pause, until finish or maxDur. finish runs at t's cleanup at the latest.
// Any transport error or failure reason is a failure.
func ftStartLoad(t *testing.T, peers []*ftPeer, pause time.Duration, maxPer int, maxDur time.Duration, granule uint64) *ftLoad {
	t.Helper()
	l := &ftLoad{peers: peers, stop: make(chan struct{})}
	deadline := time.Now().Add(maxDur)
	for _, p := range peers {
		l.wg.Go(func() {
			event := "started"
			for n := 0; n < maxPer && time.Now().Before(deadline); n++ {
				var up, down uint64
				if event == "" {
					up, down = granule*rand.Uint64N((1<<24)/granule), granule*rand.Uint64N((1<<22)/granule)
				}
				body, err := p.announce(up, down, event)
				l.mu.Lock()
				switch {
				case err != nil:
					l.failLocked("transport: " + err.Error())
				case syFailure(body) != "":
					l.failLocked("failure reason: " + syFailure(body))
				default:
					if event != "" {
						l.started++
					}
					event = ""
					l.ok++
				}
				l.mu.Unlock()
				select {
				case <-l.stop:
					return
				case <-time.After(pause):
				}
			}
		})
	}
	t.Cleanup(l.finish)
	return l
}

func (l *ftLoad) failLocked(s string) {
	l.nFail++
	if len(l.failures) < 20 {
		l.failures = append(l.failures, s)
	}
}

// finish stops the load and waits for every peer (idempotent).
func (l *ftLoad) finish() {
	l.stopOnce.Do(func() { close(l.stop) })
	l.wg.Wait()
}

// waitStarted waits until every peer's started announce was answered.
func (l *ftLoad) waitStarted(t *testing.T, d time.Duration) {
	t.Helper()
	syEventually(t, d, func() string {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.started < len(l.peers) {
			return fmt.Sprintf("%d of %d peers started (failures: %v)", l.started, len(l.peers), l.failures)
		}
		return ""
	})
}

// report returns the announces answered and the failures (after finish).
func (l *ftLoad) report() (ok, nFail int, failures []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ok, l.nFail, append([]string(nil), l.failures...)
}

// ftLogLine is one JSON log line of the tracker.
type ftLogLine map[string]any

func (l ftLogLine) str(k string) string {
	v, ok := l[k]
	if !ok {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func (l ftLogLine) has(k string) bool { _, ok := l[k]; return ok }

// ftLevels orders zap's levels.
var ftLevels = map[string]int{"debug": 0, "info": 1, "warn": 2, "error": 3, "dpanic": 4, "panic": 5, "fatal": 6}

// ftLogs returns the log lines at minLevel or above whose msg contains msg
// (case-insensitive). Lines that are not JSON are ignored.
func ftLogs(log, minLevel, msg string) []ftLogLine {
	var out []ftLogLine
	for _, s := range strings.Split(log, "\n") {
		if !strings.HasPrefix(s, "{") {
			continue
		}
		var l ftLogLine
		if json.Unmarshal([]byte(s), &l) != nil {
			continue
		}
		if ftLevels[l.str("level")] < ftLevels[minLevel] {
			continue
		}
		if !strings.Contains(strings.ToLower(l.str("msg")), strings.ToLower(msg)) {
			continue
		}
		out = append(out, l)
	}
	return out
}

// ftNumber reads a JSON number field as uint64 (exact below 2^53).
func ftNumber(l ftLogLine, k string) (uint64, bool) {
	switch v := l[k].(type) {
	case float64:
		return uint64(v), v >= 0
	case string:
		var n uint64
		_, err := fmt.Sscan(v, &n)
		return n, err == nil
	}
	return 0, false
}

// ftMetric is syMetric without failing: ok is false when /metrics does not
// answer or lacks the metric.
func ftMetric(base, name string) (v float64, ok bool) {
	resp, err := syHTTP.Get(base + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, false
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(string(body))
	if m == nil {
		return 0, false
	}
	if _, err := fmt.Sscan(m[1], &v); err != nil {
		return 0, false
	}
	return v, true
}

// ftStatisticsCount finds the /statistics row whose name contains word and
// returns its number.
func ftStatisticsCount(body, word string) (int64, bool) {
	re := regexp.MustCompile(`(?is)<tr><th>[^<]*` + regexp.QuoteMeta(word) + `[^<]*</th><td[^>]*>\s*(\d+)`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		return 0, false
	}
	var n int64
	fmt.Sscan(m[1], &n)
	return n, true
}

// ftStop sends SIGTERM and waits at most d for the exit; on timeout it
// sends SIGQUIT (the Go runtime then writes every goroutine's stack to the
// log, which the test prints), kills the process and reports ok false. took
// is the time from SIGTERM to the exit.
func ftStop(p *trackerProc, d time.Duration) (code int, took time.Duration, ok bool) {
	start := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), time.Since(start), true
	case <-time.After(d):
	}
	took = time.Since(start)
	_ = p.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	time.Sleep(100 * time.Millisecond) // the last lines of the dump
	return -1, took, false
}

// ftTryTotals is ftCheckTotals with a context bound, for a server that may
// be hung.
func ftTryTotals(cat *syCatalog, d time.Duration) (up, down uint64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	err = cat.db.QueryRowContext(ctx, "SELECT COALESCE(SUM(uploaded), 0), COALESCE(SUM(downloaded), 0) FROM xbt_users").Scan(&up, &down)
	return up, down, err
}

// ftStallWarning checks the log for the warning of a failed or timed-out
// periodic flush: level warn, msg "writing statistics to the database
// failed", fields pending_rows and oldest_delta_age. It returns "" when
// there is one, else what is wrong.
func ftStallWarning(log string) string {
	lines := ftLogs(log, "warn", "writing statistics to the database failed")
	for _, l := range lines {
		if l.str("level") == "warn" && l.has("pending_rows") && l.has("oldest_delta_age") {
			return ""
		}
	}
	if len(lines) == 0 {
		return "no warn line \"writing statistics to the database failed\""
	}
	return fmt.Sprintf("no warn line \"writing statistics to the database failed\" with pending_rows and oldest_delta_age; got %v", lines[0])
}
