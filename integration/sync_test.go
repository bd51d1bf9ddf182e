package integration

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// syncFlags run the tracker with short database intervals.
var syncFlags = []string{"--listen-http", "127.0.0.1:0",
	"--write-db-interval", "1", "--read-db-interval", "1", "--read-config-interval", "1"}

// TestCatalogSequence drives the tracker through real HTTP the way a
// catalog site and its users do, with plain SQL on the catalog's side.
func TestCatalogSequence(t *testing.T) {
	cat := newSyCatalog(t)
	p := startServe(t, []string{"XBT_DSN=" + cat.dsn}, syncFlags...)
	base := p.syBaseURL(t)
	secret := configValue(t, cat.db, "torrent_pass_private_key")

	// A user registers and uploads a torrent while the tracker runs; a
	// second user registers too.
	uidA, uidB := cat.addUser(t), cat.addUser(t)
	ih := syInfoHash("catalog sequence")
	fid := cat.addFile(t, ih)

	// The first announce works at once (on-demand lookup, no reload).
	a := newSimPeer(base, secret, 0, uidA, ih, 1, 1000)
	syMustAnnounce(t, a, 1000, 0, "started")
	syMustAnnounce(t, a, 4000, 600, "") // uploaded 1000 -> 5000: +4000
	a.left = 0
	syMustAnnounce(t, a, 0, 400, "completed") // downloaded 600 -> 1000
	b := newSimPeer(base, secret, 0, uidB, ih, 2, 500)
	syMustAnnounce(t, b, 0, 0, "started")

	check := func() string {
		var upA, downA, upB, downB uint64
		if err := cat.db.QueryRow("SELECT uploaded, downloaded FROM xbt_users WHERE uid = ?", uidA).Scan(&upA, &downA); err != nil {
			return err.Error()
		}
		if err := cat.db.QueryRow("SELECT uploaded, downloaded FROM xbt_users WHERE uid = ?", uidB).Scan(&upB, &downB); err != nil {
			return err.Error()
		}
		if upA != 4000 || downA != 1000 || upB != 0 || downB != 0 {
			return fmt.Sprintf("xbt_users: A %d/%d B %d/%d, want 4000/1000 and 0/0", upA, downA, upB, downB)
		}
		var seeders, leechers, completed int
		if err := cat.db.QueryRow("SELECT seeders, leechers, completed FROM xbt_files WHERE fid = ?", fid).Scan(&seeders, &leechers, &completed); err != nil {
			return err.Error()
		}
		if seeders != 1 || leechers != 1 || completed != 1 {
			return fmt.Sprintf("xbt_files: seeders %d leechers %d completed %d, want 1 1 1", seeders, leechers, completed)
		}
		type fu struct {
			active                                      int
			announced, completed, up, down, left, mtime uint64
		}
		row := func(uid uint32) (fu, error) {
			var r fu
			err := cat.db.QueryRow("SELECT active, announced, completed, uploaded, downloaded, `left`, mtime FROM xbt_files_users WHERE fid = ? AND uid = ?", fid, uid).
				Scan(&r.active, &r.announced, &r.completed, &r.up, &r.down, &r.left, &r.mtime)
			return r, err
		}
		ra, err := row(uidA)
		if err != nil {
			return "xbt_files_users A: " + err.Error()
		}
		rb, err := row(uidB)
		if err != nil {
			return "xbt_files_users B: " + err.Error()
		}
		if ra.active != 1 || ra.announced != 3 || ra.completed != 1 || ra.up != 4000 || ra.down != 1000 || ra.left != 0 || ra.mtime == 0 {
			return fmt.Sprintf("xbt_files_users A: %+v", ra)
		}
		if rb.active != 1 || rb.announced != 1 || rb.completed != 0 || rb.up != 0 || rb.down != 0 || rb.left != 500 {
			return fmt.Sprintf("xbt_files_users B: %+v", rb)
		}
		return ""
	}
	syEventually(t, 10*time.Second, check)
	syWaitFlushes(t, base, 2, 10*time.Second) // more flushes must not count anything twice
	if msg := check(); msg != "" {
		t.Fatal("after more flushes: " + msg)
	}
	stats := syGet(t, base+"/statistics")
	for _, row := range []string{"<th>last flush</th><td>20", "<th>last reload</th><td>20"} {
		if !strings.Contains(stats, row) {
			t.Fatalf("/statistics lacks %q:\n%s", row, stats)
		}
	}
	if strings.Contains(stats, "flush error") || strings.Contains(stats, "reload error") {
		t.Fatalf("/statistics shows an error:\n%s", stats)
	}
	metrics := syGet(t, base+"/metrics")
	for _, m := range []string{"xbt_tracker_flush_duration_seconds_count ", "xbt_tracker_flush_failures_total 0",
		"xbt_tracker_flush_rows_total ", "xbt_tracker_reload_duration_seconds_count ", "xbt_tracker_reload_failures_total 0",
		"xbt_tracker_ledger_bound_entries 5e+06", `xbt_tracker_lookups_total{kind="user",result="hit"} `,
		`xbt_tracker_lookups_total{kind="torrent",result="hit"} `} {
		if !strings.Contains(metrics, m) {
			t.Fatalf("/metrics lacks %q:\n%s", m, metrics)
		}
	}

	// Revoking the user's passkeys: the old one fails within one reload,
	// the new version's works.
	cat.exec(t, "UPDATE xbt_users SET torrent_pass_version = torrent_pass_version + 1 WHERE uid = ?", uidA)
	start := time.Now()
	syEventually(t, 5*time.Second, func() string {
		body, err := a.announce(0, 0, "")
		if err != nil {
			return err.Error()
		}
		if f := syFailure(body); f != "unregistered torrent pass" {
			return fmt.Sprintf("old passkey after the bump: %q", f)
		}
		return ""
	})
	t.Logf("old passkey refused %v after the bump (read_db_interval 1s)", time.Since(start).Round(10*time.Millisecond))
	a1 := newSimPeer(base, secret, 1, uidA, ih, 1, 0)
	syMustAnnounce(t, a1, 0, 0, "")

	// The catalog deletes the torrent: the tracker forgets it and deletes
	// the row.
	cat.exec(t, "UPDATE xbt_files SET flags = 1 WHERE info_hash = UNHEX(?)", fmt.Sprintf("%x", ih))
	syEventually(t, 5*time.Second, func() string {
		body, err := a1.announce(0, 0, "")
		if err != nil {
			return err.Error()
		}
		if f := syFailure(body); f != "unregistered torrent" {
			return fmt.Sprintf("deleted torrent: %q", f)
		}
		return ""
	})
	syEventually(t, 5*time.Second, func() string {
		var n int
		if err := cat.db.QueryRow("SELECT COUNT(*) FROM xbt_files WHERE fid = ?", fid).Scan(&n); err != nil {
			return err.Error()
		}
		if n != 0 {
			return "the flagged xbt_files row was not deleted"
		}
		return ""
	})

	// announce_interval changed in xbt_config: answers carry it, no restart.
	ih2 := syInfoHash("catalog sequence 2")
	cat.addFile(t, ih2)
	c := newSimPeer(base, secret, 0, uidB, ih2, 3, 0)
	if body := syMustAnnounce(t, c, 0, 0, "started"); !strings.Contains(body, "8:intervali1800e") {
		t.Fatalf("default interval: %q", body)
	}
	cat.exec(t, "INSERT INTO xbt_config(name, value) VALUES('announce_interval', '77') ON DUPLICATE KEY UPDATE value = '77'")
	syEventually(t, 5*time.Second, func() string {
		if body := syMustAnnounce(t, c, 0, 0, ""); !strings.Contains(body, "8:intervali77e") {
			return "interval not changed: " + body
		}
		return ""
	})
	// An invalid value keeps the previous settings, with one warning.
	cat.exec(t, "UPDATE xbt_config SET value = 'soon' WHERE name = 'announce_interval'")
	if !p.stderr.waitFor(`announce_interval = \"soon\"`, 5*time.Second) {
		t.Fatalf("no warning naming the invalid value:\n%s", p.stderr.String())
	}
	// The settings are read again every second, like the flushes run: two
	// flushes after the warning mean the invalid value was read again (the
	// reload of the settings has no metric to wait for).
	syWaitFlushes(t, base, 2, 10*time.Second)
	if body := syMustAnnounce(t, c, 0, 0, ""); !strings.Contains(body, "8:intervali77e") {
		t.Fatalf("an invalid value changed the interval: %q", body)
	}
	if n := strings.Count(p.stderr.String(), `announce_interval = \"soon\"`); n != 1 {
		t.Fatalf("%d warnings about one invalid value, want 1:\n%s", n, p.stderr.String())
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d\n%s", code, p.stderr.String())
	}
	syAssertQuietLog(t, p.stderr.String())
}

func syMustAnnounce(t *testing.T, p *simPeer, up, down uint64, event string) string {
	t.Helper()
	body, err := p.announce(up, down, event)
	if err != nil {
		t.Fatal(err)
	}
	if f := syFailure(body); f != "" {
		t.Fatalf("announce failed: %q", f)
	}
	return body
}

// syAssertQuietLog checks that info level stayed quiet: no line per
// announce or per flush.
func syAssertQuietLog(t *testing.T, log string) {
	t.Helper()
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, `"level":"debug"`) || strings.Contains(l, "flushed statistics") {
			t.Fatalf("noisy log line at the default level: %s", l)
		}
	}
	if n := strings.Count(log, "\n"); n > 40 {
		t.Fatalf("%d log lines for a short run:\n%s", n, log)
	}
}

// sySwarm is a set of simulated peers announcing in a loop.
type sySwarm struct {
	peers    []*simPeer
	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	failures []string // failure reasons and unexpected errors
	ended    int      // peers stopped by a transport error (stopOnErr)
	ok       int      // announces answered without failure
}

// syStartLoad starts one goroutine per peer: a started announce, then
// announces every pause with random increments. With stopOnErr a peer stops
// at its first transport error (the tracker stopping); otherwise it is a
// failure.
func syStartLoad(t *testing.T, peers []*simPeer, pause time.Duration, stopOnErr bool) *sySwarm {
	t.Helper()
	l := &sySwarm{peers: peers, stop: make(chan struct{})}
	for _, p := range peers {
		l.wg.Go(func() {
			event := "started"
			for {
				var up, down uint64
				if event == "" {
					up, down = rand.Uint64N(1<<24), rand.Uint64N(1<<22)
				}
				body, err := p.announce(up, down, event)
				switch {
				case err != nil && stopOnErr:
					l.mu.Lock()
					l.ended++
					l.mu.Unlock()
					return
				case err != nil:
					l.fail("transport: " + err.Error())
				case syFailure(body) != "":
					l.fail("failure reason: " + syFailure(body))
				default:
					event = ""
					l.mu.Lock()
					l.ok++
					l.mu.Unlock()
				}
				select {
				case <-l.stop:
					return
				case <-time.After(pause):
				}
			}
		})
	}
	return l
}

// acknowledged is the number of announces answered without a failure so far.
func (l *sySwarm) acknowledged() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ok
}

// syWaitFlushes waits until n more flushes succeeded (each moves
// xbt_tracker_last_flush_timestamp_seconds, empty ones included).
func syWaitFlushes(t *testing.T, base string, n int, d time.Duration) {
	t.Helper()
	last := syMetric(t, base, "xbt_tracker_last_flush_timestamp_seconds")
	for i := range n {
		syEventually(t, d, func() string {
			if v := syMetric(t, base, "xbt_tracker_last_flush_timestamp_seconds"); v > last {
				last = v
				return ""
			}
			return fmt.Sprintf("flush %d of %d: none since %.3f", i+1, n, last)
		})
	}
}

func (l *sySwarm) fail(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) < 20 {
		l.failures = append(l.failures, s)
	}
}

func (l *sySwarm) finish() {
	close(l.stop)
	l.wg.Wait()
}

// sums is what the tracker must have credited: every acknowledged delta.
func (l *sySwarm) sums() (up, down uint64) {
	for _, p := range l.peers {
		up += p.sentUp
		down += p.sentDown
	}
	return up, down
}

// syFixture makes nUsers users and nFiles torrents and one peer per
// (user, torrent) pair; seeders only if seed.
func syFixture(t *testing.T, cat *syCatalog, base, secret string, nUsers, nFiles int, seed bool) []*simPeer {
	t.Helper()
	var uids []uint32
	for range nUsers {
		uids = append(uids, cat.addUser(t))
	}
	var peers []*simPeer
	for f := range nFiles {
		ih := syInfoHash(fmt.Sprint("load ", f))
		cat.addFile(t, ih)
		for i, uid := range uids {
			left := uint64(1 << 30)
			if seed || i%2 == 0 {
				left = 0
			}
			peers = append(peers, newSimPeer(base, secret, 0, uid, ih, len(peers), left))
		}
	}
	return peers
}

// syWaitTotals waits until xbt_users' sums equal the load's.
func syWaitTotals(t *testing.T, cat *syCatalog, l *sySwarm, d time.Duration) {
	t.Helper()
	wantUp, wantDown := l.sums()
	syEventually(t, d, func() string {
		up, down := cat.userTotals(t)
		if up != wantUp || down != wantDown {
			return fmt.Sprintf("xbt_users sums uploaded %d downloaded %d, clients sent %d and %d (diff %d, %d)",
				up, down, wantUp, wantDown, int64(wantUp-up), int64(wantDown-down))
		}
		return ""
	})
}

// TestOutageLosesNothing: the database disappears (a proxy between the
// tracker and MariaDB cuts every connection and refuses new ones) for
// several flush intervals under steady announces. No announce fails, and
// once the database is back xbt_users holds every byte the clients sent.
func TestOutageLosesNothing(t *testing.T) {
	cat := newSyCatalog(t)
	proxy := newSyProxy(t, syDSNAddr(t, cat.dsn))
	p := startServe(t, []string{"XBT_DSN=" + syViaProxy(t, cat.dsn, proxy.addr())},
		append(syncFlags, "--announce-interval", "60")...)
	base := p.syBaseURL(t)
	secret := configValue(t, cat.db, "torrent_pass_private_key")
	peers := syFixture(t, cat, base, secret, 4, 2, false)
	l := syStartLoad(t, peers, 10*time.Millisecond, false)

	syEventually(t, 10*time.Second, func() string { // the load reaches the database before the cut
		if up, _ := cat.userTotals(t); up == 0 {
			return "nothing written before the cut"
		}
		return ""
	})
	proxy.cut()
	t.Log("database cut")
	failures := syMetric(t, base, "xbt_tracker_flush_failures_total")
	syEventually(t, 20*time.Second, func() string { // five failed flushes
		if n := syMetric(t, base, "xbt_tracker_flush_failures_total"); n < failures+5 {
			return fmt.Sprintf("%v flush failures since the cut, want 5", n-failures)
		}
		return ""
	})
	if !strings.Contains(p.stderr.String(), "writing statistics to the database failed") {
		t.Fatalf("the outage was not noticed:\n%s", p.stderr.String())
	}
	pending := syMetric(t, base, "xbt_tracker_ledger_entries")
	proxy.restore()
	t.Log("database back")
	syWaitFlushes(t, base, 2, 20*time.Second) // announces go on while writes work again
	l.finish()
	if len(l.failures) > 0 {
		t.Fatalf("announces failed during the outage: %v", l.failures)
	}
	syWaitTotals(t, cat, l, 20*time.Second)
	up, down := l.sums()
	t.Logf("outage: %d announces from %d peers, none failed; %d pending rows at the cut's end; %d bytes up / %d down, all written; flush failures %v",
		l.ok, len(peers), int(pending), up, down, syMetric(t, base, "xbt_tracker_flush_failures_total"))
	if !strings.Contains(p.stderr.String(), "writing statistics to the database works again") {
		t.Fatalf("no recovery line:\n%s", p.stderr.String())
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d\n%s", code, p.stderr.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(p.stderr.String()), "\n") {
		if !strings.HasPrefix(line, "{") {
			t.Fatalf("a log line that is not the tracker's JSON: %s", line)
		}
	}
	if gotUp, gotDown := cat.userTotals(t); gotUp != up || gotDown != down {
		t.Fatalf("after stop: %d/%d, want %d/%d (counted twice?)", gotUp, gotDown, up, down)
	}
}

// TestStopUnderLoadWritesEverything: SIGTERM while clients announce. The
// tracker stops listening, answers what is in flight, writes everything and
// exits 0; the database then holds exactly what the clients were credited.
func TestStopUnderLoadWritesEverything(t *testing.T) {
	cat := newSyCatalog(t)
	// A long write interval: at SIGTERM everything since the start is
	// still pending, so the final flush alone must write it.
	p := startServe(t, []string{"XBT_DSN=" + cat.dsn}, "--listen-http", "127.0.0.1:0",
		"--write-db-interval", "600", "--read-db-interval", "1", "--announce-interval", "60")
	base := p.syBaseURL(t)
	secret := configValue(t, cat.db, "torrent_pass_private_key")
	peers := syFixture(t, cat, base, secret, 5, 3, false)
	l := syStartLoad(t, peers, 5*time.Millisecond, true)
	syEventually(t, 10*time.Second, func() string { // a large ledger pending: 100 announces per peer
		if n := l.acknowledged(); n < 100*len(peers) {
			return fmt.Sprintf("%d announces acknowledged, want %d", n, 100*len(peers))
		}
		return ""
	})
	if up, _ := cat.userTotals(t); up != 0 {
		t.Fatalf("written before the stop (%d): the test needs a pending ledger", up)
	}
	code := p.stop(t)
	l.finish()
	if code != 0 {
		t.Fatalf("exit %d after SIGTERM\n%s", code, p.stderr.String())
	}
	if len(l.failures) > 0 {
		t.Fatalf("announces failed: %v", l.failures)
	}
	wantUp, wantDown := l.sums()
	if up, down := cat.userTotals(t); up != wantUp || down != wantDown {
		t.Fatalf("after stop: xbt_users %d/%d, clients sent %d/%d", up, down, wantUp, wantDown)
	}
	if !strings.Contains(p.stderr.String(), "final write to the database done") {
		t.Fatalf("no final flush line:\n%s", p.stderr.String())
	}
	t.Logf("stop: %d announces from %d peers, %d bytes up written by the final flush", l.ok, len(peers), wantUp)
}

// TestStopWithoutDatabaseReportsLoss: SIGTERM while the database is gone:
// the tracker retries until shutdown_timeout, then says at error level what
// it could not write, and exits non-zero.
func TestStopWithoutDatabaseReportsLoss(t *testing.T) {
	cat := newSyCatalog(t)
	proxy := newSyProxy(t, syDSNAddr(t, cat.dsn))
	p := startServe(t, []string{"XBT_DSN=" + syViaProxy(t, cat.dsn, proxy.addr())}, "--listen-http", "127.0.0.1:0",
		"--write-db-interval", "600", "--shutdown-timeout", "2s")
	base := p.syBaseURL(t)
	secret := configValue(t, cat.db, "torrent_pass_private_key")
	peers := syFixture(t, cat, base, secret, 2, 1, true)
	for _, pr := range peers {
		syMustAnnounce(t, pr, 0, 0, "started")
		syMustAnnounce(t, pr, 1234, 0, "")
	}
	proxy.cut()
	start := time.Now()
	code := p.stop(t)
	if code == 0 {
		t.Fatalf("exit 0 although nothing could be written:\n%s", p.stderr.String())
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("stop took %v with shutdown_timeout 2s", took)
	}
	log := p.stderr.String()
	if !strings.Contains(log, `"level":"error"`) || !strings.Contains(log, `"uploaded_bytes_lost":2468`) || !strings.Contains(log, `"xbt_users_rows":2`) {
		t.Fatalf("no error line with what was lost:\n%s", log)
	}
}

// TestCatalogDeadlocksLoseNothing: the catalog updates the same xbt_users
// rows in transactions, in reverse key order, while the tracker flushes
// deltas to them: deadlocks and lock waits are retried, no delta is lost.
func TestCatalogDeadlocksLoseNothing(t *testing.T) {
	cat := newSyCatalog(t)
	p := startServe(t, []string{"XBT_DSN=" + cat.dsn}, append(syncFlags, "--announce-interval", "60")...)
	base := p.syBaseURL(t)
	secret := configValue(t, cat.db, "torrent_pass_private_key")
	// Seeders only: toggling can_leech must not refuse announces.
	peers := syFixture(t, cat, base, secret, 8, 2, true)
	var uids []uint32
	if err := func() error {
		rows, err := cat.db.Query("SELECT uid FROM xbt_users ORDER BY uid DESC")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var u uint32
			if err := rows.Scan(&u); err != nil {
				return err
			}
			uids = append(uids, u)
		}
		return rows.Err()
	}(); err != nil {
		t.Fatal(err)
	}

	l := syStartLoad(t, peers, 5*time.Millisecond, false)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	var commits, deadlocks, lockWaits, other int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for ctx.Err() == nil {
				err := syCatalogToggle(ctx, cat, uids)
				mu.Lock()
				var me *mysql.MySQLError
				switch {
				case err == nil:
					commits++
				case errors.As(err, &me) && me.Number == 1213:
					deadlocks++
				case errors.As(err, &me) && me.Number == 1205:
					lockWaits++
				case ctx.Err() == nil:
					other++
					t.Logf("catalog: %v", err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	l.finish()
	if len(l.failures) > 0 {
		t.Fatalf("announces failed: %v", l.failures)
	}
	syWaitTotals(t, cat, l, 20*time.Second)
	retries := syMetric(t, base, "xbt_tracker_flush_retries_total")
	t.Logf("catalog: %d transactions committed, %d deadlocks, %d lock wait timeouts; tracker: %v statement retries, %v failed flushes",
		commits, deadlocks, lockWaits, retries, syMetric(t, base, "xbt_tracker_flush_failures_total"))
	if other > 0 {
		t.Fatalf("%d unexpected catalog errors", other)
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d\n%s", code, p.stderr.String())
	}
	wantUp, wantDown := l.sums()
	if up, down := cat.userTotals(t); up != wantUp || down != wantDown {
		t.Fatalf("after stop: %d/%d, want %d/%d", up, down, wantUp, wantDown)
	}
}

// syCatalogToggle flips can_leech of every uid in one transaction, one row at
// a time in the order given (descending), holding the locks a little.
func syCatalogToggle(ctx context.Context, cat *syCatalog, uids []uint32) error {
	tx, err := cat.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	for _, uid := range uids {
		if _, err := tx.ExecContext(ctx, "UPDATE xbt_users SET can_leech = 1 - can_leech WHERE uid = ?", uid); err != nil {
			_ = tx.Rollback()
			return err
		}
		time.Sleep(time.Millisecond)
	}
	return tx.Commit()
}
