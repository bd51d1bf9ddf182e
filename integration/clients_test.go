package integration

import (
	"context"
	"crypto/rand"
	gosql "database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xbt-tracker/xbt-tracker/internal/dbtest"
)

// clPayloadSize is each pair's torrent: a few MiB of random data.
const clPayloadSize = 4 << 20

// clTransferTimeout bounds one download over loopback (5-9 s between aria2
// and libtorrent, ~20 s whenever Transmission is involved).
const clTransferTimeout = 90 * time.Second

// The vectors every pair recorded, written to
// tracker/httpfront/testdata/clients-e2e.txt when XBT_RECORD_VECTORS is set.
var (
	clVectorsMu sync.Mutex
	clVectors   []clVector
)

type clVector struct {
	pair string
	clRequest
}

// TestClients: real clients, the real binary and MariaDB, the catalog's
// workflow. For each pair, a seeder in one client and a leecher in another,
// each a different user with its own passkey-stamped copy of one private
// torrent, download over loopback; the statistics the tracker writes must
// match what the clients reported; then the leecher's passkey is revoked.
func TestClients(t *testing.T) {
	pairs := []struct{ seeder, leecher string }{
		{kindAria2, kindLibtorrent},
		{kindLibtorrent, kindAria2},
		{kindAria2, kindTransmission},
		{kindTransmission, kindLibtorrent},
		{kindLibtorrent, kindTransmission},
	}
	t.Run("pairs", func(t *testing.T) {
		for _, p := range pairs {
			t.Run(p.seeder+"_to_"+p.leecher, func(t *testing.T) {
				t.Parallel()
				runClPair(t, p.seeder, p.leecher, clPairOpts{})
			})
		}
	})
	if os.Getenv("XBT_RECORD_VECTORS") != "" {
		writeClVectors(t)
	}
}

// TestClientsFreeleech: a real transfer on a freeleech torrent
// (xbt_files.down_multi = 0, extras migration). The leecher's xbt_users
// downloaded stays 0 while its xbt_files_users row has exactly the bytes
// its client reported; the seeder is credited exactly its reported upload.
func TestClientsFreeleech(t *testing.T) {
	runClPair(t, kindAria2, kindLibtorrent, clPairOpts{freeleech: true})
}

// clPairOpts are the variations of runClPair.
type clPairOpts struct {
	// freeleech makes the torrent freeleech before the tracker starts, and
	// checks the credit to the byte; its requests are not recorded as
	// vectors (TestClients records every pair once).
	freeleech bool
}

// clCatalog is a database as a catalog site leaves it: migrated, a
// secret, two users, settings in xbt_config.
type clCatalog struct {
	db              *gosql.DB
	env             []string
	seeder, leecher string // uids
}

func newClCatalog(t *testing.T) clCatalog {
	t.Helper()
	db, dsn := dbtest.New(t)
	env := []string{"XBT_DSN=" + dsn}
	mustRun(t, env, "migrate", "up")
	secret := clSecret(t)
	// The catalog's plain SQL. Statistics are written every second and
	// users re-read every second, so the test need not wait long.
	for _, q := range []string{
		"INSERT INTO xbt_config(name, value) VALUES('torrent_pass_private_key', '" + secret + "')",
		"INSERT INTO xbt_config(name, value) VALUES('write_db_interval', '1')",
		"INSERT INTO xbt_config(name, value) VALUES('read_db_interval', '1')",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	c := clCatalog{db: db, env: env}
	for _, uid := range []*string{&c.seeder, &c.leecher} {
		res, err := db.Exec("INSERT INTO xbt_users(torrent_pass) VALUES('')")
		if err != nil {
			t.Fatal(err)
		}
		id, _ := res.LastInsertId()
		*uid = strconv.FormatInt(id, 10)
	}
	return c
}

func clSecret(t *testing.T) string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 27)
	for i := range b {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			t.Fatal(err)
		}
		b[i] = alphabet[n.Int64()]
	}
	return string(b)
}

var (
	clInfoHashRE = regexp.MustCompile(`(?m)^info_hash ([0-9a-f]{40})$`)
	clAnnounceRE = regexp.MustCompile(`(?m)^announce (http://\S+/([0-9a-f]{32})/announce)$`)
	clListenRE   = regexp.MustCompile(`"msg":"listening","http":"([^"]+)"`)
)

// clStamp runs `xbt-tracker torrent stamp` for one user and returns the copy's
// path and its passkey.
func clStamp(t *testing.T, env []string, uid, base, src, dst string) (string, string) {
	t.Helper()
	out := mustRun(t, env, "torrent", "stamp", "--uid", uid, "--base", base, "-o", dst, src)
	m := clAnnounceRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("torrent stamp printed no announce line:\n%s", out)
	}
	return dst, m[2]
}

func runClPair(t *testing.T, seedKind, leechKind string, opts clPairOpts) {
	requireClients(t, seedKind, leechKind)
	cat := newClCatalog(t)
	pay := makeClPayload(t, fmt.Sprintf("payload-%s-%s.bin", seedKind, leechKind), clPayloadSize)
	work := t.TempDir()

	// Upload: the catalog forces private=1 (a new info_hash) and registers it.
	canonical := filepath.Join(work, "canonical.torrent")
	r := run(t, cat.env, "torrent", "stamp", "--private", "--register", "-o", canonical, pay.torrent)
	if r.code != 0 || !strings.Contains(r.stderr, "warning: --private set private=1") {
		t.Fatalf("torrent stamp --private --register: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	m := clInfoHashRE.FindStringSubmatch(r.stdout)
	fid := regexp.MustCompile(`(?m)^fid (\d+)$`).FindStringSubmatch(r.stdout)
	if m == nil || fid == nil || !strings.Contains(r.stderr, "to "+m[1]) {
		t.Fatalf("torrent stamp output lacks info_hash/fid or the warning the new hash:\n%s%s", r.stdout, r.stderr)
	}
	infoHash := m[1]
	if opts.freeleech {
		mustRun(t, cat.env, "migrate", "up", "--extras")
		if _, err := cat.db.Exec("UPDATE xbt_files SET down_multi = 0 WHERE fid = ?", fid[1]); err != nil {
			t.Fatal(err)
		}
	}

	p := startServe(t, cat.env, "--listen-http", "127.0.0.1:0")
	am := clListenRE.FindStringSubmatch(p.stderr.String())
	if am == nil {
		t.Fatalf("no listening address in the log:\n%s", p.stderr.String())
	}
	trackerAddr := am[1]
	proxy := startRecordingProxy(t, trackerAddr)
	t.Cleanup(func() {
		if opts.freeleech {
			return
		}
		clVectorsMu.Lock()
		defer clVectorsMu.Unlock()
		for _, r := range proxy.requests("") {
			clVectors = append(clVectors, clVector{pair: seedKind + " -> " + leechKind, clRequest: r})
		}
	})

	// Download: each user gets a copy stamped with their passkey.
	seedTorrent, seedPK := clStamp(t, cat.env, cat.seeder, proxy.base(), canonical, filepath.Join(work, "seeder.torrent"))
	leechTorrent, leechPK := clStamp(t, cat.env, cat.leecher, proxy.base(), canonical, filepath.Join(work, "leecher.torrent"))
	proxy.name(seedPK, seedKind, "seeder")
	proxy.name(leechPK, leechKind, "leecher")
	if info := mustRun(t, nil, "torrent", "info", leechTorrent); !strings.Contains(info, "info_hash "+infoHash+"\nprivate 1\n") {
		t.Fatalf("the user's copy:\n%s", info)
	}

	scrape := func(pk string) string {
		return clGet(t, "http://"+trackerAddr+"/"+pk+"/scrape?info_hash="+clEscapeHex(infoHash))
	}

	seeder := startBTClient(t, seedKind, seedTorrent, pay.dir, true)
	// The leecher starts once the tracker counts the seeder, so its first
	// answer lists it.
	if !clWait(30*time.Second, func() bool { return strings.Contains(scrape(seedPK), "8:completei1e") }) {
		t.Fatalf("the %s seeder never counted as a seeder; scrape %q; its output:\n%s", seedKind, scrape(seedPK), seeder.out.String())
	}

	leechDir := filepath.Join(work, "leech")
	started := time.Now()
	leecher := startBTClient(t, leechKind, leechTorrent, leechDir, false)
	got := filepath.Join(leechDir, pay.name)
	lastPoke := time.Time{}
	ok := clWait(clTransferTimeout, func() bool {
		if clFileSHA256(got) == pay.sha256 {
			return true
		}
		// A Transmission leecher is only ever dialled: the seeder must
		// announce after it did.
		if leechKind == kindTransmission && time.Since(lastPoke) > 5*time.Second &&
			strings.Contains(scrape(seedPK), "10:incompletei1e") {
			seeder.reannounce()
			lastPoke = time.Now()
		}
		return false
	})
	took := time.Since(started)
	if !ok {
		t.Fatalf("the %s leecher did not get the file in %s\nseeder output:\n%s\nleecher output:\n%s", leechKind, clTransferTimeout, clTail(seeder.out.String()), clTail(leecher.out.String()))
	}
	t.Logf("%s -> %s: %d bytes in %s (leecher start to verified file)", seedKind, leechKind, pay.size, took.Round(100*time.Millisecond))

	// Stop both with event=stopped, leecher first.
	for _, c := range []struct {
		role   string
		client *btClient
	}{{"leecher", leecher}, {"seeder", seeder}} {
		isStopped := func(r clRequest) bool { return r.event() == "stopped" }
		c.client.stop(func() bool { return proxy.waitFor(c.role, 0, isStopped) })
		if !proxy.waitFor(c.role, 20*time.Second, isStopped) {
			t.Errorf("no event=stopped from the %s %s", c.client.kind, c.role)
		}
	}
	seedUp := clMaxParam(proxy.requests("seeder"), "uploaded")
	leechDown := clMaxParam(proxy.requests("leecher"), "downloaded")
	// What the tracker credits is the counters' growth from the first
	// announce (its baseline).
	seedReal := seedUp - clFirstParam(proxy.requests("seeder"), "uploaded")
	leechReal := leechDown - clFirstParam(proxy.requests("leecher"), "downloaded")
	t.Logf("clients reported: %s seeder uploaded=%d, %s leecher downloaded=%d (payload %d)", seedKind, seedUp, leechKind, leechDown, pay.size)

	// After a flush the catalog's tables show the transfer.
	var st clStats
	flushed := clWait(20*time.Second, func() bool {
		st = readClStats(t, cat.db, fid[1], cat.seeder, cat.leecher)
		return st.seederUp >= uint64(pay.size) && (opts.freeleech || st.leecherDown >= uint64(pay.size)) &&
			st.fuSeederUp >= uint64(pay.size) && st.fuLeecherDown >= uint64(pay.size) &&
			st.completed == 1 && st.seeders == 0 && st.leechers == 0
	})
	if !flushed {
		t.Errorf("after the clients stopped the database shows %+v; want uploaded/downloaded >= %d, completed 1, seeders and leechers 0", st, pay.size)
	}
	if st.seederUp > seedUp || st.fuSeederUp > seedUp {
		t.Errorf("seeder credited %d (xbt_users) / %d (xbt_files_users), more than the %d its client reported", st.seederUp, st.fuSeederUp, seedUp)
	}
	if st.leecherDown > leechDown || st.fuLeecherDown > leechDown {
		t.Errorf("leecher credited %d (xbt_users) / %d (xbt_files_users), more than the %d its client reported", st.leecherDown, st.fuLeecherDown, leechDown)
	}
	if st.leecherCompleted != 1 {
		t.Errorf("xbt_files_users.completed of the leecher = %d, want 1", st.leecherCompleted)
	}
	if opts.freeleech {
		if st.leecherDown != 0 || st.fuLeecherDown != leechReal {
			t.Errorf("freeleech: leecher xbt_users.downloaded %d (want 0), xbt_files_users.downloaded %d (want the %d bytes its client reported)",
				st.leecherDown, st.fuLeecherDown, leechReal)
		}
		if st.seederUp != seedReal || st.fuSeederUp != seedReal {
			t.Errorf("freeleech: seeder xbt_users.uploaded %d, xbt_files_users.uploaded %d, want both the %d bytes its client reported",
				st.seederUp, st.fuSeederUp, seedReal)
		}
	}
	t.Logf("database: %+v", st)

	// Revocation: the catalog bumps torrent_pass_version; once the tracker
	// has re-read the user the old passkey is refused.
	if v := strings.TrimSpace(mustRun(t, cat.env, "user", "revoke", "--uid", cat.leecher)); v != "1" {
		t.Errorf("user revoke printed %q, want the new version 1", v)
	}
	announceOld := "http://" + trackerAddr + "/" + leechPK + "/announce?info_hash=" + clEscapeHex(infoHash) +
		"&peer_id=-XT0001-revokedpeer1&port=6881&uploaded=0&downloaded=0&left=" + fmt.Sprint(pay.size) + "&compact=1&event=started"
	var body string
	if !clWait(20*time.Second, func() bool {
		body = clGet(t, announceOld)
		return strings.Contains(body, "unregistered torrent pass")
	}) {
		t.Fatalf("announce with the revoked passkey got %q, want failure reason unregistered torrent pass", body)
	}
	// The real client, restarted with the revoked copy, shows the refusal.
	proxy.name(leechPK, leechKind, "revoked")
	again := startBTClient(t, leechKind, leechTorrent, filepath.Join(work, "leech-again"), false)
	var clientErr string
	if !clWait(40*time.Second, func() bool {
		clientErr = again.trackerError()
		return strings.Contains(clientErr, "unregistered torrent pass")
	}) {
		t.Errorf("the %s client with the revoked passkey did not report the tracker's refusal; it shows %q; output:\n%s", leechKind, clientErr, clTail(again.out.String()))
	} else {
		t.Logf("%s with the revoked passkey reports: %s", leechKind, clientErr)
	}
	again.kill()

	if code := p.stop(t); code != 0 {
		t.Errorf("serve exited %d after SIGTERM:\n%s", code, clTail(p.stderr.String()))
	}
}

// clStats is what the tracker wrote for the pair's torrent and users.
type clStats struct {
	seederUp, leecherDown        uint64 // xbt_users
	fuSeederUp, fuLeecherDown    uint64 // xbt_files_users
	leecherCompleted             int
	completed, seeders, leechers int // xbt_files
}

func readClStats(t *testing.T, db *gosql.DB, fid, seeder, leecher string) clStats {
	t.Helper()
	var s clStats
	q := func(dst any, query string, args ...any) {
		if err := db.QueryRow(query, args...).Scan(dst); err != nil && err != gosql.ErrNoRows {
			t.Errorf("%s: %v", query, err)
		}
	}
	q(&s.seederUp, "SELECT uploaded FROM xbt_users WHERE uid = ?", seeder)
	q(&s.leecherDown, "SELECT downloaded FROM xbt_users WHERE uid = ?", leecher)
	q(&s.fuSeederUp, "SELECT uploaded FROM xbt_files_users WHERE fid = ? AND uid = ?", fid, seeder)
	q(&s.fuLeecherDown, "SELECT downloaded FROM xbt_files_users WHERE fid = ? AND uid = ?", fid, leecher)
	q(&s.leecherCompleted, "SELECT completed FROM xbt_files_users WHERE fid = ? AND uid = ?", fid, leecher)
	if err := db.QueryRow("SELECT completed, seeders, leechers FROM xbt_files WHERE fid = ?", fid).Scan(&s.completed, &s.seeders, &s.leechers); err != nil {
		t.Errorf("xbt_files fid %s: %v", fid, err)
	}
	return s
}

// clMaxParam is the largest value of a counter the client sent in any request.
func clMaxParam(rs []clRequest, name string) uint64 {
	var m uint64
	for _, r := range rs {
		if v, err := strconv.ParseUint(r.query.Get(name), 10, 64); err == nil && v > m {
			m = v
		}
	}
	return m
}

// clFirstParam is a counter's value in the first announce the client sent.
func clFirstParam(rs []clRequest, name string) uint64 {
	for _, r := range rs {
		if strings.HasSuffix(r.path, "/announce") {
			v, _ := strconv.ParseUint(r.query.Get(name), 10, 64)
			return v
		}
	}
	return 0
}

func clEscapeHex(h string) string {
	b, _ := hex.DecodeString(h)
	return url.QueryEscape(string(b))
}

func clGet(t *testing.T, u string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// clWait polls ok every 250 ms until it holds or d has passed.
func clWait(d time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if ok() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// clTail is the end of a long output, for failure messages, without the
// lt_driver's per-second stats lines but the last.
func clTail(s string) string {
	lines := strings.Split(s, "\n")
	var keep []string
	for i, l := range lines {
		if strings.Contains(l, `"event": "stats"`) && i < len(lines)-2 {
			continue
		}
		keep = append(keep, l)
	}
	s = strings.Join(keep, "\n")
	const n = 6000
	if len(s) > n {
		return "...\n" + s[len(s)-n:]
	}
	return s
}

// writeClVectors saves what the clients sent as parser test vectors for
// tracker/httpfront (clients_vectors_test.go). Periodic announces (no event)
// are kept twice per client and role at most.
func writeClVectors(t *testing.T) {
	clVectorsMu.Lock()
	defer clVectorsMu.Unlock()
	sort.SliceStable(clVectors, func(i, j int) bool { return clVectors[i].pair < clVectors[j].pair })
	var b strings.Builder
	b.WriteString(`# Requests real BitTorrent clients sent to xbt-tracker itself, recorded by
# integration/clients_test.go (TestClients) through a logging TCP proxy in front of
# "xbt-tracker serve": Debian bookworm's aria2 1.36.0, libtorrent-rasterbar 2.0.8
# (python3-libtorrent, integration/clients/lt_driver.py) and Transmission 3.00,
# all over 127.0.0.1, private torrents stamped by "xbt-tracker torrent stamp".
# Regenerate: XBT_RECORD_VECTORS=1 go test ./integration -run TestClients
#
# Format: "### title", then "# expect: k=v ..." (the parameters as Go's
# net/url.ParseQuery decoded them, binary values in hex), then the request
# head exactly as received (CRLF line ends here shown as plain lines), then a
# blank line. tracker/httpfront/clients_vectors_test.go parses every one.
`)
	kept := map[string]int{}
	for _, v := range clVectors {
		ev := v.event()
		kind := "announce"
		if strings.HasSuffix(v.path, "/scrape") {
			kind = "scrape"
		}
		key := v.pair + v.client + v.role + kind + ev
		if kind == "announce" && ev == "" && kept[key] >= 2 {
			continue
		}
		kept[key]++
		title := fmt.Sprintf("%s, %s %s: %s", v.pair, v.client, v.role, kind)
		if ev != "" {
			title += " event=" + ev
		}
		fmt.Fprintf(&b, "\n### %s\n# expect: path=%s", title, v.path)
		for _, k := range []string{"info_hash", "peer_id", "port", "uploaded", "downloaded", "left", "event", "numwant", "compact", "no_peer_id"} {
			vals, ok := v.query[k]
			if !ok {
				continue
			}
			val := vals[0]
			if k == "info_hash" || k == "peer_id" {
				val = hex.EncodeToString([]byte(val))
			}
			fmt.Fprintf(&b, " %s=%s", k, val)
		}
		b.WriteString("\n")
		b.WriteString(strings.ReplaceAll(strings.TrimRight(v.head, "\r\n"), "\r\n", "\n"))
		b.WriteString("\n")
	}
	path := filepath.Join(clRepoRoot(), "tracker/httpfront/testdata/clients-e2e.txt")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d request heads to %s", strings.Count(b.String(), "\n### "), path)
}
