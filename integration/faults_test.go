package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The fault suite of issue 12: a write-back that no row can poison, that is
// loud when it stalls, and a stop that keeps its deadline. Every test runs
// the real binary against a real MariaDB: the shared test server for faults
// confined to the test's own database (t.Parallel), a private mariadbd
// (privatedb_test.go) for hanging and killing the server, and a
// MySQL-protocol proxy (mysqlproxy_test.go) for a forged COMMIT reply.

// ftFlags run the tracker with short database intervals.
var ftFlags = []string{"--listen-http", "127.0.0.1:0", "--announce-interval", "60",
	"--write-db-interval", "1", "--read-db-interval", "1", "--read-config-interval", "1"}

// ftUint64Max is BIGINT UNSIGNED's maximum.
const ftUint64Max = uint64(18446744073709551615)

// TestPoisonedRowIsQuarantined: the catalog's own BEFORE UPDATE trigger
// refuses every update of one user. That row is set aside (quarantined:
// metric, gauge, one warn line naming table, key and error, a /statistics
// row); every other row of the same flush is written in that flush, later
// flushes are not blocked, and SIGTERM exits 0 with only the quarantined row
// left.
func TestPoisonedRowIsQuarantined(t *testing.T) {
	t.Parallel()
	cat := newSyCatalog(t)
	uids := ftUsers(t, cat, 5)
	honest, poisoned := uids[:4], uids[4]
	cat.exec(t, fmt.Sprintf("CREATE TRIGGER ft_catalog_refuses BEFORE UPDATE ON xbt_users FOR EACH ROW "+
		"IF NEW.uid = %d THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'catalog refuses'; END IF", poisoned))
	files := ftTorrents(t, cat, "poison", 2)

	p := startServe(t, []string{"XBT_DSN=" + cat.dsn}, ftFlags...)
	base := p.syBaseURL(t)
	secret := configValue(t, cat.db, "torrent_pass_private_key")
	peers := ftPeers(base, secret, uids, files, false)
	ftStartAll(t, peers)
	// One announce with credit per peer, the poisoned user's included,
	// back to back (so the poisoned user's credit is one xbt_users row in
	// one flush, or at most two).
	for i, pr := range peers {
		syMustAnnounce(t, pr.simPeer, uint64(1000*(i+1)+7), uint64(100*(i+1)+3), "")
	}
	var honestPeers []*ftPeer
	for _, pr := range peers {
		if pr.uid != poisoned {
			honestPeers = append(honestPeers, pr)
		}
	}

	// Every honest byte arrives: xbt_users of the honest users, and every
	// xbt_files_users row (the trigger refuses only xbt_users updates, so
	// the poisoned user's per-torrent rows are honest rows too).
	check := func() string {
		if msg := ftCheckUsers(cat, honest, ftPerUser(peers)); msg != "" {
			return msg
		}
		return ftCheckFileUsers(cat, peers)
	}
	syEventually(t, 15*time.Second, check)
	if got, err := ftUser(cat, poisoned); err != nil || got != (ftBytes{}) {
		t.Fatalf("poisoned uid %d: %+v %v, want 0/0 (the trigger refuses it)", poisoned, got, err)
	}

	// The quarantine is visible.
	syEventually(t, 5*time.Second, func() string {
		total, ok1 := ftMetric(base, "xbt_tracker_flush_quarantined_rows_total")
		now, ok2 := ftMetric(base, "xbt_tracker_flush_quarantined_rows")
		if !ok1 || !ok2 || total < 1 || now < 1 {
			return fmt.Sprintf("xbt_tracker_flush_quarantined_rows_total %v (present %v), xbt_tracker_flush_quarantined_rows %v (present %v): want both >= 1",
				total, ok1, now, ok2)
		}
		return ""
	})
	uidRE := regexp.MustCompile(`(^|[^0-9])` + strconv.Itoa(int(poisoned)) + `([^0-9]|$)`)
	quarantineLines := func() (poisonedLines, others []ftLogLine) {
		for _, l := range ftLogs(p.stderr.String(), "warn", "quarantined") {
			switch {
			case l.str("level") == "warn" && strings.Contains(l.str("table"), "xbt_users") && uidRE.MatchString(l.str("key")):
				poisonedLines = append(poisonedLines, l)
			case l.has("key"): // a per-row line about another row
				others = append(others, l)
			}
		}
		return
	}
	var ql, other []ftLogLine
	syEventually(t, 5*time.Second, func() string {
		if ql, other = quarantineLines(); len(ql) == 0 {
			return "no warn line saying \"quarantined\" with table xbt_users and key " + strconv.Itoa(int(poisoned))
		}
		return ""
	})
	if len(ql) > 2 {
		t.Fatalf("%d warn lines saying \"quarantined\" with table xbt_users and key %d, want 1 (2 if its credit straddled a flush); other quarantine lines %v; log:\n%s",
			len(ql), poisoned, other, p.stderr.String())
	}
	if len(other) > 0 {
		t.Fatalf("quarantine lines for rows that are not the poisoned one: %v", other)
	}
	for _, l := range ql {
		if !l.has("error") || !strings.Contains(l.str("error"), "catalog refuses") {
			t.Fatalf("quarantine line without the database's error (\"catalog refuses\"): %v", l)
		}
	}
	syEventually(t, 5*time.Second, func() string {
		stats := syGet(t, base+"/statistics")
		if n, ok := ftStatisticsCount(stats, "quarantined"); !ok || n < 1 {
			return "/statistics has no quarantined row with a count >= 1:\n" + stats
		}
		return ""
	})

	// Nothing is blocked: the honest users' next credit is written too,
	// exactly once, and the quarantined row is not logged again every
	// flush.
	for i, pr := range honestPeers {
		syMustAnnounce(t, pr.simPeer, uint64(50*(i+1)), uint64(5*(i+1)), "")
	}
	syEventually(t, 10*time.Second, check)
	time.Sleep(3 * time.Second) // three more flushes
	if msg := check(); msg != "" {
		t.Fatal("after more flushes: " + msg)
	}
	if again, _ := quarantineLines(); len(again) != len(ql) {
		t.Fatalf("the quarantined row was logged again (%d lines, then %d): it is retried every flush", len(ql), len(again))
	}

	code, took, ok := ftStop(p, 40*time.Second)
	if !ok || code != 0 {
		t.Fatalf("SIGTERM with only the quarantined row left: exit %d after %v (exited: %v), want 0\n%s", code, took, ok, p.stderr.String())
	}
	if msg := check(); msg != "" {
		t.Fatal("after stop: " + msg)
	}
	t.Logf("quarantined uid %d; %d honest peers written; stop took %v", poisoned, len(honestPeers), took.Round(time.Millisecond))
}

// TestUploadedNearMaxSaturates: a user whose xbt_users.uploaded is 1000
// below BIGINT UNSIGNED's maximum announces 5000 more bytes among honest
// users. The sum is clamped at the maximum (counted), the user's downloaded
// and everybody else's bytes are credited exactly in the same flush, no
// flush fails, and SIGTERM exits 0.
func TestUploadedNearMaxSaturates(t *testing.T) {
	t.Parallel()
	cat := newSyCatalog(t)
	uids := ftUsers(t, cat, 4)
	full := uids[1] // not the first, not the last uid of the chunk
	cat.exec(t, "UPDATE xbt_users SET uploaded = ? WHERE uid = ?", ftUint64Max-1000, full)
	files := ftTorrents(t, cat, "saturate", 2)

	p := startServe(t, []string{"XBT_DSN=" + cat.dsn}, ftFlags...)
	base := p.syBaseURL(t)
	secret := configValue(t, cat.db, "torrent_pass_private_key")
	peers := ftPeers(base, secret, uids, files, true)
	ftStartAll(t, peers)
	fullPeer := -1
	for i, pr := range peers {
		up, down := uint64(3000*(i+1)+11), uint64(300*(i+1)+1)
		if pr.uid == full && fullPeer < 0 {
			fullPeer, up, down = i, 5000, 777
		} else if pr.uid == full {
			up = 0 // the full user's other peer only downloads
		}
		syMustAnnounce(t, pr.simPeer, up, down, "")
	}

	var others []uint32
	for _, u := range uids {
		if u != full {
			others = append(others, u)
		}
	}
	want := ftPerUser(peers)
	check := func() string {
		if msg := ftCheckUsers(cat, others, want); msg != "" {
			return msg
		}
		got, err := ftUser(cat, full)
		if err != nil {
			return err.Error()
		}
		if got.up != ftUint64Max || got.down != want[full].down {
			return fmt.Sprintf("uid %d (uploaded was max-1000, +5000 announced): %d/%d, want %d (clamped) / %d",
				full, got.up, got.down, ftUint64Max, want[full].down)
		}
		return ftCheckFileUsers(cat, peers)
	}
	syEventually(t, 15*time.Second, check)
	syEventually(t, 5*time.Second, func() string {
		if v, ok := ftMetric(base, "xbt_tracker_flush_clamped_rows_total"); !ok || v < 1 {
			return fmt.Sprintf("xbt_tracker_flush_clamped_rows_total %v (present %v), want >= 1", v, ok)
		}
		return ""
	})
	if v, ok := ftMetric(base, "xbt_tracker_flush_quarantined_rows"); !ok || v != 0 {
		t.Errorf("xbt_tracker_flush_quarantined_rows %v (present %v): a saturated sum is clamped, not set aside", v, ok)
	}
	if l := ftLogs(p.stderr.String(), "warn", "writing statistics to the database failed"); len(l) > 0 {
		t.Errorf("a flush failed although the sum only saturates: %v", l[0])
	}
	time.Sleep(2 * time.Second) // more flushes change nothing
	if msg := check(); msg != "" {
		t.Fatal("after more flushes: " + msg)
	}
	code, took, ok := ftStop(p, 40*time.Second)
	if !ok || code != 0 {
		t.Fatalf("SIGTERM: exit %d after %v (exited: %v), want 0\n%s", code, took, ok, p.stderr.String())
	}
	if msg := check(); msg != "" {
		t.Fatal("after stop: " + msg)
	}
}

// TestCreditCapped: with --max-credit-per-announce 1000000, an announce
// whose uploaded (or downloaded) counter jumped by more than that credits
// nothing for that counter (the other counter and the next normal delta
// are credited); a delta of exactly the cap is credited; each capped
// announce is counted in xbt_tracker_credit_capped_total.
func TestCreditCapped(t *testing.T) {
	t.Parallel()
	cat := newSyCatalog(t)
	uids := ftUsers(t, cat, 3)
	files := ftTorrents(t, cat, "cap", 1)
	p := startServe(t, []string{"XBT_DSN=" + cat.dsn}, append(ftFlags, "--max-credit-per-announce", "1000000")...)
	base := p.syBaseURL(t)
	secret := configValue(t, cat.db, "torrent_pass_private_key")
	peers := ftPeers(base, secret, uids, files, false)
	a, b, c := peers[0], peers[1], peers[2]
	ftStartAll(t, peers)

	syMustAnnounce(t, a.simPeer, 500_000, 1000, "")
	syMustAnnounce(t, a.simPeer, 2_000_000_000_000, 2000, "") // uploaded over the cap
	syMustAnnounce(t, a.simPeer, 700_000, 3000, "")
	syMustAnnounce(t, b.simPeer, 100, 0, "")
	syMustAnnounce(t, b.simPeer, 100, 3_000_000_000_000, "") // downloaded over the cap
	syMustAnnounce(t, b.simPeer, 100, 400_000, "")
	syMustAnnounce(t, c.simPeer, 999_999, 1_000_000, "") // at the cap: credited
	want := map[uint32]ftBytes{
		a.uid: {up: 500_000 + 700_000, down: 1000 + 2000 + 3000},
		b.uid: {up: 300, down: 400_000},
		c.uid: {up: 999_999, down: 1_000_000},
	}
	syEventually(t, 15*time.Second, func() string { return ftCheckUsers(cat, uids, want) })
	syEventually(t, 5*time.Second, func() string {
		if v, ok := ftMetric(base, "xbt_tracker_credit_capped_total"); !ok || v < 2 {
			return fmt.Sprintf("xbt_tracker_credit_capped_total %v (present %v), want >= 2 (two capped announces)", v, ok)
		}
		return ""
	})
	time.Sleep(2 * time.Second)
	if msg := ftCheckUsers(cat, uids, want); msg != "" {
		t.Fatal("after more flushes: " + msg)
	}
	if code, took, ok := ftStop(p, 40*time.Second); !ok || code != 0 {
		t.Fatalf("SIGTERM: exit %d after %v (exited: %v)\n%s", code, took, ok, p.stderr.String())
	}
}

// TestStopWithHungDatabaseKeepsDeadline (private MariaDB): deltas are
// pending (the periodic flush that took them hangs on a SIGSTOPped server)
// when the tracker gets SIGTERM with --shutdown-timeout 10s. It exits
// within 12 s, and before that logs the loss report with exactly the
// uploaded and downloaded bytes that never reached the database.
func TestStopWithHungDatabaseKeepsDeadline(t *testing.T) {
	srv := pdbStart(t)
	cat := pdbCatalog(t, srv)
	uids := ftUsers(t, cat, 3)
	files := ftTorrents(t, cat, "hung stop", 2)
	p := startServe(t, []string{"XBT_DSN=" + cat.dsn}, append(ftFlags, "--shutdown-timeout", "10s")...)
	base := p.syBaseURL(t)
	secret := configValue(t, cat.db, "torrent_pass_private_key")
	peers := ftPeers(base, secret, uids, files, true)
	ftStartAll(t, peers)
	for i, pr := range peers {
		syMustAnnounce(t, pr.simPeer, uint64(10_000+i), uint64(20+i), "")
	}
	beforeUp, beforeDown := ftSums(peers)
	syEventually(t, 15*time.Second, func() string { return ftCheckTotals(t, cat, beforeUp, beforeDown) })

	srv.hang(t)
	t.Cleanup(func() { srv.resume(t) })
	t.Log("database hung (SIGSTOP)")
	for i, pr := range peers {
		syMustAnnounce(t, pr.simPeer, uint64(1_000_000+7*i), uint64(3000+i), "")
	}
	afterUp, afterDown := ftSums(peers)
	lostUp, lostDown := afterUp-beforeUp, afterDown-beforeDown
	time.Sleep(2500 * time.Millisecond) // a periodic flush takes the deltas and hangs

	code, took, exited := ftStop(p, 20*time.Second)
	srv.resume(t)
	log := p.stderr.String()
	if !exited {
		t.Fatalf("no exit within 20s of SIGTERM with shutdown_timeout 10s (killed)\n%s", log)
	}
	t.Logf("exit %d %v after SIGTERM", code, took.Round(time.Millisecond))
	if took > 12*time.Second {
		t.Errorf("the stop took %v with shutdown_timeout 10s: want at most 12s", took.Round(time.Millisecond))
	}
	reports := ftLogs(log, "error", "SHUTDOWN DEADLINE PASSED")
	if len(reports) != 1 {
		t.Fatalf("%d loss reports (error line \"SHUTDOWN DEADLINE PASSED\"), want 1; log:\n%s", len(reports), log)
	}
	r := reports[0]
	gotUp, ok1 := ftNumber(r, "uploaded_bytes_lost")
	gotDown, ok2 := ftNumber(r, "downloaded_bytes_lost")
	if !ok1 || gotUp != lostUp || (ok2 && gotDown != lostDown) {
		t.Errorf("loss report uploaded_bytes_lost %d (present %v), downloaded_bytes_lost %d (present %v); the bytes not written are %d and %d: %v",
			gotUp, ok1, gotDown, ok2, lostUp, lostDown, r)
	}
	if code == 0 {
		t.Errorf("exit 0 although %d bytes were not written", lostUp)
	}
	// Nothing the report calls lost reached the database afterwards.
	syEventually(t, 15*time.Second, func() string { return ftCheckTotals(t, cat, beforeUp, beforeDown) })
}

// TestRowLockLongerThanFlushDeadline: the catalog holds SELECT ... FOR
// UPDATE on every hot xbt_users row for longer than the periodic flush's
// deadline (max(4 × write_db_interval, 30s) = 30 s) while clients announce.
// The tracker's session lock wait timeout is below that deadline, so it
// gets lock wait timeouts (1205) and retries them (counted), logs a warning
// with the rows pending and the oldest delta's age, and once the lock is
// released writes every byte exactly once.
func TestRowLockLongerThanFlushDeadline(t *testing.T) {
	t.Parallel()
	const hold = 36 * time.Second
	cat := newSyCatalog(t)
	uids := ftUsers(t, cat, 4)
	files := ftTorrents(t, cat, "row lock", 2)
	p := startServe(t, []string{"XBT_DSN=" + cat.dsn}, ftFlags...)
	base := p.syBaseURL(t)
	secret := configValue(t, cat.db, "torrent_pass_private_key")
	peers := ftPeers(base, secret, uids, files, true)
	l := ftStartLoad(t, peers, 50*time.Millisecond, 2000, hold+40*time.Second, 1)
	l.waitStarted(t, 10*time.Second)
	time.Sleep(2 * time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), hold+30*time.Second)
	defer cancel()
	tx, err := cat.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	args := make([]any, len(uids))
	for i, u := range uids {
		args[i] = u
	}
	rows, err := tx.QueryContext(ctx, "SELECT uid FROM xbt_users WHERE uid IN (?"+strings.Repeat(", ?", len(uids)-1)+") FOR UPDATE", args...)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		n++
	}
	rows.Close()
	if n != len(uids) {
		t.Fatalf("locked %d rows, want %d", n, len(uids))
	}
	locked := time.Now()
	t.Logf("catalog holds the xbt_users rows for %v", hold)
	warned := p.stderr.waitFor("writing statistics to the database failed", hold)
	time.Sleep(time.Until(locked.Add(hold)))
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	t.Logf("lock released after %v; warning during the lock: %v", time.Since(locked).Round(time.Millisecond), warned)
	time.Sleep(3 * time.Second)
	l.finish()
	ok, nFail, failures := l.report()
	if nFail > 0 {
		t.Fatalf("%d announces failed: %v", nFail, failures)
	}
	wantUp, wantDown := ftSums(peers)
	syEventually(t, 45*time.Second, func() string { return ftCheckTotals(t, cat, wantUp, wantDown) })

	if v, ok := ftMetric(base, "xbt_tracker_flush_retries_total"); !ok || v < 1 {
		t.Errorf("xbt_tracker_flush_retries_total %v (present %v): want > 0, lock wait timeouts (1205) retried before the flush deadline", v, ok)
	}
	if msg := ftStallWarning(p.stderr.String()); msg != "" {
		t.Errorf("rows locked for %v (longer than the flush deadline): %s", hold, msg)
	}
	if len(ftLogs(p.stderr.String(), "info", "writing statistics to the database works again")) == 0 {
		t.Errorf("no recovery line after the lock was released")
	}
	code, took, exited := ftStop(p, 40*time.Second)
	if !exited || code != 0 {
		t.Fatalf("SIGTERM: exit %d after %v (exited: %v)\n%s", code, took, exited, p.stderr.String())
	}
	if msg := ftCheckTotals(t, cat, wantUp, wantDown); msg != "" {
		t.Fatal("after stop: " + msg)
	}
	t.Logf("%d announces; %d bytes up written exactly once", ok, wantUp)
}

// TestCommitErrorReplyCountsOnce: between the tracker and MariaDB a proxy
// replaces the server's reply to the first COMMIT of a transaction that
// updated xbt_users with "2013 Lost connection" (the server did commit).
// The tracker does not know the outcome, settles it from its commit marker
// (xbt_tracker_writers) as committed, logs so, and the bytes count once.
func TestCommitErrorReplyCountsOnce(t *testing.T) {
	t.Parallel()
	cat := newSyCatalog(t)
	proxy := newMpProxy(t, syDSNAddr(t, cat.dsn), 1, mpWritesUsers, true)
	uids := ftUsers(t, cat, 3)
	files := ftTorrents(t, cat, "forged commit", 2)
	p := startServe(t, []string{"XBT_DSN=" + syViaProxy(t, cat.dsn, proxy.addr())}, ftFlags...)
	base := p.syBaseURL(t)
	secret := configValue(t, cat.db, "torrent_pass_private_key")
	peers := ftPeers(base, secret, uids, files, false)
	ftStartAll(t, peers)
	for i, pr := range peers {
		syMustAnnounce(t, pr.simPeer, uint64(40_000+i), uint64(900+i), "")
	}
	syEventually(t, 15*time.Second, func() string {
		if forged, commits := proxy.counts(); forged < 1 {
			return fmt.Sprintf("the proxy forged no COMMIT reply (%d COMMITs seen): no transaction updated xbt_users", commits)
		}
		return ""
	})
	sw := proxy.swallowedReplies()
	if len(sw) != 1 || len(sw[0]) == 0 || sw[0][0] != 0x00 {
		t.Fatalf("the server's reply to the forged COMMIT was %x, want an OK packet (the test needs a COMMIT that happened)", sw)
	}
	t.Log("the server committed; the tracker got 2013 Lost connection instead")

	want := ftPerUser(peers)
	wantUp, wantDown := ftSums(peers)
	syEventually(t, 15*time.Second, func() string {
		up, down, err := ftTryTotals(cat, 10*time.Second)
		if err != nil {
			return err.Error()
		}
		if up > wantUp || down > wantDown {
			t.Fatalf("counted twice: xbt_users sums %d/%d, clients sent %d/%d (%s)", up, down, wantUp, wantDown, ftCheckUsers(cat, uids, want))
		}
		return ftCheckTotals(t, cat, wantUp, wantDown)
	})
	time.Sleep(3 * time.Second) // more flushes must not write it again
	if msg := ftCheckUsers(cat, uids, want); msg != "" {
		t.Fatal("after more flushes (the committed chunk written again?): " + msg)
	}
	var settled []string
	committed := false
	for _, l := range ftLogs(p.stderr.String(), "info", "commit outcome unknown") {
		s := l.str("settled")
		settled = append(settled, s)
		committed = committed || s == "committed"
		if s == "not committed" || s == "dropped" {
			t.Errorf("a COMMIT the server performed was settled %q: %v", s, l)
		}
	}
	if !committed {
		t.Errorf("log lines \"commit outcome unknown\" settled %q, want one saying settled \"committed\"; log:\n%s", settled, p.stderr.String())
	}
	code, took, exited := ftStop(p, 40*time.Second)
	if !exited || code != 0 {
		t.Fatalf("SIGTERM: exit %d after %v (exited: %v)\n%s", code, took, exited, p.stderr.String())
	}
	if msg := ftCheckUsers(cat, uids, want); msg != "" {
		t.Fatal("after stop: " + msg)
	}
}

// TestFaultsUnderLoad (private MariaDB): steady simulated clients while the
// database is hung for seconds (SIGSTOP/SIGCONT), killed -9 and restarted,
// and then hung or killed at random moments (seeded; XBT_FT_SEED repeats a
// run). No announce fails, the stall shows in the metrics and the log, and
// once the database is back xbt_users holds exactly the bytes the clients
// were acknowledged; SIGTERM then exits 0.
func TestFaultsUnderLoad(t *testing.T) { ftFaultsUnderLoad(t, nil) }

// TestFaultsUnderLoadWithMultipliers (private MariaDB): TestFaultsUnderLoad
// with credit factors: a freeleech torrent (down_multi 0), a double upload
// one (up_multi 200) and a user at up_multi 150, down_multi 50. Every
// user's xbt_users must hold, to the byte, the sum of its acknowledged
// deltas times their factors (a credit lost or written twice fails), and
// xbt_files_users the real bytes.
func TestFaultsUnderLoadWithMultipliers(t *testing.T) {
	ftFaultsUnderLoad(t, func(t *testing.T, cat *syCatalog, uids []uint32, files []ftTorrent) *mlRules {
		mustRun(t, []string{"XBT_DSN=" + cat.dsn}, "migrate", "up", "--extras")
		cat.exec(t, "UPDATE xbt_files SET down_multi = 0 WHERE fid = ?", files[0].fid)
		cat.exec(t, "UPDATE xbt_files SET up_multi = 200 WHERE fid = ?", files[1].fid)
		cat.exec(t, "UPDATE xbt_users SET up_multi = 150, down_multi = 50 WHERE uid = ?", uids[1])
		return &mlRules{
			torrents: map[uint32][2]uint64{files[0].fid: {100, 0}, files[1].fid: {200, 100}},
			users:    map[uint32][2]uint64{uids[1]: {150, 50}},
		}
	})
}

// ftFaultsUnderLoad is the fault run of TestFaultsUnderLoad. factors, when
// not nil, gives torrents and users credit factors in the catalog before
// the tracker starts, and returns them; the load then sends even deltas,
// so that 50 % and 150 % credit whole bytes and the expectation does not
// depend on remainders carried in the tracker's memory.
func ftFaultsUnderLoad(t *testing.T, factors func(t *testing.T, cat *syCatalog, uids []uint32, files []ftTorrent) *mlRules) {
	srv := pdbStart(t)
	cat := pdbCatalog(t, srv)
	uids := ftUsers(t, cat, 5)
	files := ftTorrents(t, cat, "faults", 3)
	var rules *mlRules
	granule := uint64(1)
	if factors != nil {
		rules, granule = factors(t, cat, uids, files), 2
	}
	p := startServe(t, []string{"XBT_DSN=" + cat.dsn}, ftFlags...)
	base := p.syBaseURL(t)
	secret := configValue(t, cat.db, "torrent_pass_private_key")
	peers := ftPeers(base, secret, uids, files, false)
	l := ftStartLoad(t, peers, 20*time.Millisecond, 5000, 2*time.Minute, granule)
	l.waitStarted(t, 15*time.Second)
	t.Cleanup(func() { srv.resume(t) })

	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("XBT_FT_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("XBT_FT_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("fault schedule seed %d (XBT_FT_SEED=%d repeats it)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	begin := time.Now()
	step := func(format string, args ...any) {
		t.Logf("%6.2fs "+format, append([]any{time.Since(begin).Seconds()}, args...)...)
	}

	time.Sleep(3 * time.Second)
	step("hang 4s")
	srv.hang(t)
	time.Sleep(3500 * time.Millisecond)
	pending, okP := ftMetric(base, "xbt_tracker_pending_rows")
	age, okA := ftMetric(base, "xbt_tracker_last_flush_age_seconds")
	time.Sleep(500 * time.Millisecond)
	srv.resume(t)
	step("resumed; during the hang pending_rows %v (present %v), last_flush_age_seconds %v (present %v)", pending, okP, age, okA)
	if !okP || pending < 1 {
		t.Errorf("xbt_tracker_pending_rows %v (present %v) while the database was hung under load: want > 0", pending, okP)
	}
	if !okA || age < 1.5 {
		t.Errorf("xbt_tracker_last_flush_age_seconds %v (present %v) 3.5s into a hang with write_db_interval 1: want >= 1.5", age, okA)
	}

	time.Sleep(3 * time.Second)
	step("kill -9")
	srv.kill(t)
	time.Sleep(time.Second)
	srv.restart(t)
	step("restarted")

	for i := range 3 {
		time.Sleep(time.Duration(500+rng.IntN(2000)) * time.Millisecond)
		if rng.IntN(2) == 0 {
			d := time.Duration(1000+rng.IntN(3000)) * time.Millisecond
			step("random fault %d: hang %v", i, d)
			srv.hang(t)
			time.Sleep(d)
			srv.resume(t)
		} else {
			d := time.Duration(rng.IntN(1500)) * time.Millisecond
			step("random fault %d: kill -9, down %v", i, d)
			srv.kill(t)
			time.Sleep(d)
			srv.restart(t)
		}
		step("database back")
	}
	time.Sleep(3 * time.Second)
	l.finish()
	step("load stopped")
	ok, nFail, failures := l.report()
	if nFail > 0 {
		t.Errorf("%d announces failed while the database was in trouble (served from memory, none may fail): %v", nFail, failures)
	}
	want := ftCredited(peers, rules)
	var wantUp, wantDown uint64
	for _, b := range want {
		wantUp += b.up
		wantDown += b.down
	}
	check := func() string {
		if msg := ftCheckUsers(cat, uids, want); msg != "" {
			return msg
		}
		return ftCheckFileUsers(cat, peers)
	}
	syEventually(t, 60*time.Second, func() string { return ftCheckTotals(t, cat, wantUp, wantDown) })
	step("every byte written")
	if msg := check(); msg != "" {
		t.Error(msg)
	}

	log := p.stderr.String()
	if msg := ftStallWarning(log); msg != "" {
		t.Errorf("the database was hung and killed: %s", msg)
	}
	if len(ftLogs(log, "info", "writing statistics to the database works again")) == 0 {
		t.Errorf("no recovery line")
	}
	syEventually(t, 10*time.Second, func() string {
		if v, ok := ftMetric(base, "xbt_tracker_pending_rows"); !ok || v != 0 {
			return fmt.Sprintf("xbt_tracker_pending_rows %v (present %v) after everything was written, want 0", v, ok)
		}
		return ""
	})
	code, took, exited := ftStop(p, 60*time.Second)
	if !exited || code != 0 {
		t.Fatalf("SIGTERM: exit %d after %v (exited: %v)\n%s", code, took, exited, p.stderr.String())
	}
	if msg := ftCheckTotals(t, cat, wantUp, wantDown); msg != "" {
		t.Fatal("after stop: " + msg)
	}
	if msg := check(); msg != "" {
		t.Fatal("after stop: " + msg)
	}
	realUp, realDown := ftSums(peers)
	t.Logf("%d announces from %d peers, %d bytes up / %d down credited (%d / %d real), all written exactly once", ok, len(peers), wantUp, wantDown, realUp, realDown)
}
