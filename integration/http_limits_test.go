package integration

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xbt-tracker/xbt-tracker/passkey"
)

// hlModes: both ways the HTTP frontend serves connections.
var hlModes = []struct {
	name string
	args []string
}{
	{"event-loops", []string{"--http-event-loops", "1"}},
	{"goroutine-per-conn", []string{"--http-event-loops", "0"}},
}

// hlHTTP gives every request a new connection from 127.0.0.1 and at most
// a few seconds.
var hlHTTP = &http.Client{
	Timeout:   5 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true},
}

// hlAnnounceURL is a seeder's announce URL with the user's passkey.
func hlAnnounceURL(base, secret string, uid uint32, ih [20]byte) string {
	q := url.Values{}
	q.Set("info_hash", string(ih[:]))
	q.Set("peer_id", "-HL0001-000000000001")
	q.Set("port", "6881")
	q.Set("uploaded", "0")
	q.Set("downloaded", "0")
	q.Set("left", "0")
	q.Set("event", "started")
	return base + "/" + passkey.Derive(secret, 0, uid, ih) + "/announce?" + q.Encode()
}

// hlMetricSum is the sum of every sample of a metric (all label values).
func hlMetricSum(t *testing.T, base, name string) float64 {
	t.Helper()
	body := syGet(t, base+"/metrics")
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(?:\{[^}]*\})? (\S+)$`)
	ms := re.FindAllStringSubmatch(body, -1)
	if ms == nil {
		t.Fatalf("/metrics has no %s", name)
	}
	var sum float64
	for _, m := range ms {
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatalf("%s: %q", name, m[1])
		}
		sum += v
	}
	return sum
}

// hlWaitFlush waits until the tracker has flushed (an empty flush counts)
// after now.
func hlWaitFlush(t *testing.T, base string) {
	t.Helper()
	after := float64(time.Now().UnixNano()) / 1e9
	syEventually(t, 15*time.Second, func() string {
		if v := hlMetricSum(t, base, "xbt_tracker_last_flush_timestamp_seconds"); v <= after {
			return fmt.Sprintf("no flush since %.3f (last %.3f)", after, v)
		}
		return ""
	})
}

// hlRows is what the database holds about one user and one torrent.
func hlRows(t *testing.T, cat *syCatalog, uid, fid uint32) string {
	t.Helper()
	var seeders, leechers, completed, flags, mtime, fu int
	var up, down uint64
	if err := cat.db.QueryRow("SELECT seeders, leechers, completed, flags, mtime FROM xbt_files WHERE fid = ?", fid).
		Scan(&seeders, &leechers, &completed, &flags, &mtime); err != nil {
		t.Fatal(err)
	}
	if err := cat.db.QueryRow("SELECT COUNT(*) FROM xbt_files_users WHERE fid = ?", fid).Scan(&fu); err != nil {
		t.Fatal(err)
	}
	if err := cat.db.QueryRow("SELECT uploaded, downloaded FROM xbt_users WHERE uid = ?", uid).Scan(&up, &down); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("xbt_files seeders=%d leechers=%d completed=%d flags=%d mtime=%d; xbt_files_users rows=%d; xbt_users up=%d down=%d",
		seeders, leechers, completed, flags, mtime, fu, up, down)
}

// TestHTTPLimitsHead: HEAD on a valid announce URL gets 405 and changes
// nothing, in memory or, after a flush, in the database; the same URL with
// GET does (so the checks can see a change).
func TestHTTPLimitsHead(t *testing.T) {
	for _, m := range hlModes {
		t.Run(m.name, func(t *testing.T) {
			cat := newSyCatalog(t)
			p := startServe(t, []string{"XBT_DSN=" + cat.dsn}, append([]string{"--listen-http", "127.0.0.1:0",
				"--write-db-interval", "1", "--read-db-interval", "1"}, m.args...)...)
			base := p.syBaseURL(t)
			secret := configValue(t, cat.db, "torrent_pass_private_key")
			uid := cat.addUser(t)
			ih := syInfoHash("http limits head " + m.name)
			fid := cat.addFile(t, ih)
			u := hlAnnounceURL(base, secret, uid, ih)
			before := hlRows(t, cat, uid, fid)

			for i := 0; i < 3; i++ {
				resp, err := hlHTTP.Head(u)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET" {
					t.Fatalf("HEAD %d: %v %v", i, resp.Status, resp.Header)
				}
			}
			if n := hlMetricSum(t, base, "xbt_tracker_peers"); n != 0 {
				t.Errorf("/metrics: %v peers after HEAD, want 0", n)
			}
			if n := hlMetricSum(t, base, "xbt_tracker_ledger_entries"); n != 0 {
				t.Errorf("/metrics: %v ledger entries after HEAD, want 0", n)
			}
			if st := syGet(t, base+"/statistics"); !strings.Contains(st, `<th>peers</th><td class="n">0</td>`) {
				t.Errorf("/statistics after HEAD:\n%s", st)
			}
			hlWaitFlush(t, base)
			if after := hlRows(t, cat, uid, fid); after != before {
				t.Fatalf("after HEAD and a flush:\n%s\nwant unchanged:\n%s", after, before)
			}

			// GET on the same URL announces, and the flush writes it.
			if body := syGet(t, u); syFailure(body) != "" || !strings.Contains(body, "8:interval") {
				t.Fatalf("GET: %q", body)
			}
			if n := hlMetricSum(t, base, "xbt_tracker_peers"); n != 1 {
				t.Errorf("/metrics: %v peers after GET, want 1", n)
			}
			syEventually(t, 15*time.Second, func() string {
				if after := hlRows(t, cat, uid, fid); !strings.Contains(after, "seeders=1") || !strings.Contains(after, "xbt_files_users rows=1") {
					return "after GET: " + after
				}
				return ""
			})
		})
	}
}

// hlDialIdle opens n connections from local to addr and sends nothing.
func hlDialIdle(t *testing.T, local, addr string, n int) []net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	var cs []net.Conn
	for i := 0; i < n; i++ {
		c, err := d.Dial("tcp4", addr)
		if err != nil {
			t.Fatalf("dial %d from %s: %v", i, local, err)
		}
		cs = append(cs, c)
	}
	t.Cleanup(func() {
		for _, c := range cs {
			c.Close()
		}
	})
	return cs
}

// hlOpen counts the connections the server has not closed: a read that
// times out after wait (nothing was sent, so nothing arrives) is open; EOF
// or a reset is closed.
func hlOpen(cs []net.Conn, wait time.Duration) (open int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(wait))
			var buf [1]byte
			_, err := c.Read(buf[:])
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				mu.Lock()
				open++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return open
}

// hlServed checks that 127.0.0.1 is answered promptly: n announces, each
// on a new connection, each answered within hlHTTP's few seconds.
func hlServed(t *testing.T, u string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		resp, err := hlHTTP.Get(u)
		if err != nil {
			t.Fatalf("127.0.0.1, request %d: %v", i, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || syFailure(string(body)) != "" {
			t.Fatalf("127.0.0.1, request %d: %v %q %v", i, resp.Status, body, err)
		}
	}
}

// TestHTTPLimitsPerIP: one address (127.0.0.2) opens more idle connections
// than max_connections_per_ip, and more than max_connections: it keeps
// only its share and 127.0.0.1 is still served. Then more addresses fill
// the global cap with idle connections: the oldest idle ones are evicted
// and 127.0.0.1 is still served.
func TestHTTPLimitsPerIP(t *testing.T) {
	const perIP, global, flood = 20, 50, 80
	for _, m := range hlModes {
		t.Run(m.name, func(t *testing.T) {
			cat := newSyCatalog(t)
			p := startServe(t, []string{"XBT_DSN=" + cat.dsn}, append([]string{"--listen-http", "127.0.0.1:0",
				"--max-connections-per-ip", strconv.Itoa(perIP), "--max-connections", strconv.Itoa(global),
				"--read-timeout", "60s"}, m.args...)...)
			base := p.syBaseURL(t)
			addr := strings.TrimPrefix(base, "http://")
			secret := configValue(t, cat.db, "torrent_pass_private_key")
			uid := cat.addUser(t)
			ih := syInfoHash("http limits per ip " + m.name)
			cat.addFile(t, ih)
			u := hlAnnounceURL(base, secret, uid, ih)

			floodConns := hlDialIdle(t, "127.0.0.2", addr, flood)
			if open := hlOpen(floodConns, 2*time.Second); open != perIP {
				t.Errorf("127.0.0.2 keeps %d of %d idle connections open, want %d", open, flood, perIP)
			}
			hlServed(t, u, 10)
			if n := hlMetricSum(t, base, `xbt_http_rejected_connections_total{reason="per_ip",server="tracker"}`); n != flood-perIP {
				t.Errorf("per_ip rejections: %v, want %d", n, flood-perIP)
			}

			// Two more addresses, each within its cap, fill the global cap
			// (20 + 20 + 20 > 50) with idle connections.
			more := append(hlDialIdle(t, "127.0.0.3", addr, perIP), hlDialIdle(t, "127.0.0.4", addr, perIP)...)
			if open := hlOpen(more, 2*time.Second); open != 2*perIP {
				t.Errorf("127.0.0.3 and .4 keep %d of %d idle connections open, want all", open, 2*perIP)
			}
			hlServed(t, u, 10)
			if n := hlMetricSum(t, base, "xbt_http_evicted_connections_total"); n < 3*perIP-global {
				t.Errorf("evicted connections: %v, want at least %d", n, 3*perIP-global)
			}
			if n := hlMetricSum(t, base, `xbt_http_rejected_connections_total{reason="limit",server="tracker"}`); n != 0 {
				t.Errorf("limit rejections: %v, want 0 (idle connections make room)", n)
			}
		})
	}
}

// TestHTTPLimitsAccessLog: log_access set in xbt_config while the tracker
// runs makes it log one line per HTTP request, the passkey cut to its
// first 8 characters; set back to 0, the lines stop.
func TestHTTPLimitsAccessLog(t *testing.T) {
	cat := newSyCatalog(t)
	p := startServe(t, []string{"XBT_DSN=" + cat.dsn}, "--listen-http", "127.0.0.1:0", "--read-config-interval", "1", "--log-level", "info")
	base := p.syBaseURL(t)
	secret := configValue(t, cat.db, "torrent_pass_private_key")
	uid := cat.addUser(t)
	ih := syInfoHash("http limits access log")
	cat.addFile(t, ih)
	u := hlAnnounceURL(base, secret, uid, ih)
	pk := passkey.Derive(secret, 0, uid, ih)
	lines := func() int { return strings.Count(p.stderr.String(), `"http request"`) }

	hlServed(t, u, 1)
	if n := lines(); n != 0 {
		t.Fatalf("log_access=0: %d access lines:\n%s", n, p.stderr.String())
	}
	setLogAccess := func(v string) {
		cat.exec(t, "INSERT INTO xbt_config(name, value) VALUES('log_access', ?) ON DUPLICATE KEY UPDATE value = VALUES(value)", v)
	}
	setLogAccess("1")
	syEventually(t, 15*time.Second, func() string {
		hlServed(t, u, 1)
		if lines() == 0 {
			return "no access line after log_access=1 in xbt_config"
		}
		return ""
	})
	var line string
	for _, l := range strings.Split(p.stderr.String(), "\n") {
		if strings.Contains(l, `"http request"`) {
			line = l
			break
		}
	}
	t.Logf("access line: %s", line)
	for _, want := range []string{`"remote":"127.0.0.1"`, `"method":"GET"`, `"path":"/` + pk[:8], `/announce"`, `"status":200`, `"bytes":`, `"duration":`} {
		if !strings.Contains(line, want) {
			t.Errorf("access line lacks %s: %s", want, line)
		}
	}
	if strings.Contains(p.stderr.String(), pk) {
		t.Errorf("the passkey is in the log:\n%s", p.stderr.String())
	}

	// Off again: once the tracker has re-read xbt_config, no more lines.
	setLogAccess("0")
	syEventually(t, 15*time.Second, func() string {
		n := lines()
		hlServed(t, u, 1)
		time.Sleep(200 * time.Millisecond)
		if lines() != n {
			return "still logging after log_access=0 in xbt_config"
		}
		return ""
	})
	n := lines()
	hlServed(t, u, 3)
	if m := lines(); m != n {
		t.Errorf("log_access=0: %d more access lines", m-n)
	}
}
