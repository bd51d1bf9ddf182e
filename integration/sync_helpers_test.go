package integration

import (
	"crypto/sha1"
	gosql "database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/xbt-tracker/xbt-tracker/internal/dbtest"
	"github.com/xbt-tracker/xbt-tracker/passkey"
)

// syCatalog is a migrated test database, used the way a catalog site uses it:
// plain SQL only.
type syCatalog struct {
	db  *gosql.DB
	dsn string
}

func newSyCatalog(t *testing.T) *syCatalog {
	t.Helper()
	db, dsn := dbtest.New(t)
	mustRun(t, []string{"XBT_DSN=" + dsn}, "migrate", "up")
	return &syCatalog{db: db, dsn: dsn}
}

func (c *syCatalog) exec(t *testing.T, q string, args ...any) gosql.Result {
	t.Helper()
	res, err := c.db.Exec(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return res
}

// addUser inserts a user as a catalog does and returns its uid.
func (c *syCatalog) addUser(t *testing.T) uint32 {
	t.Helper()
	id, err := c.exec(t, "INSERT INTO xbt_users(torrent_pass) VALUES('')").LastInsertId()
	if err != nil {
		t.Fatal(err)
	}
	return uint32(id)
}

// addFile inserts a torrent as a catalog does and returns its fid.
func (c *syCatalog) addFile(t *testing.T, ih [20]byte) uint32 {
	t.Helper()
	id, err := c.exec(t, "INSERT INTO xbt_files(info_hash, mtime, ctime) VALUES(UNHEX(?), UNIX_TIMESTAMP(), UNIX_TIMESTAMP())",
		fmt.Sprintf("%x", ih)).LastInsertId()
	if err != nil {
		t.Fatal(err)
	}
	return uint32(id)
}

// userTotals returns SUM(uploaded), SUM(downloaded) of xbt_users.
func (c *syCatalog) userTotals(t *testing.T) (up, down uint64) {
	t.Helper()
	if err := c.db.QueryRow("SELECT COALESCE(SUM(uploaded), 0), COALESCE(SUM(downloaded), 0) FROM xbt_users").Scan(&up, &down); err != nil {
		t.Fatal(err)
	}
	return up, down
}

func syInfoHash(name string) [20]byte { return sha1.Sum([]byte(name)) }

var syListenRE = regexp.MustCompile(`"listening","http":"([^"]+)"`)

// syBaseURL is the tracker's HTTP address as it logged it.
func (p *trackerProc) syBaseURL(t *testing.T) string {
	t.Helper()
	m := syListenRE.FindStringSubmatch(p.stderr.String())
	if m == nil {
		t.Fatalf("no listening line:\n%s", p.stderr.String())
	}
	return "http://" + m[1]
}

// syHTTP opens a new connection per request, so that a request either
// reached the tracker and was answered, or failed without effect (no
// keep-alive connection closed under a request).
var syHTTP = &http.Client{
	Timeout:   10 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true},
}

// simPeer is a simulated BitTorrent client: it sends cumulative counters and
// remembers how much the tracker should have credited.
type simPeer struct {
	base     string
	pk       string
	ih       [20]byte
	id       [20]byte
	port     int
	up, down uint64 // cumulative, as last acknowledged by the tracker
	left     uint64
	started  bool   // the tracker has a baseline for it
	sentUp   uint64 // sum of acknowledged uploaded deltas
	sentDown uint64
}

func newSimPeer(base, secret string, version int, uid uint32, ih [20]byte, n int, left uint64) *simPeer {
	p := &simPeer{base: base, ih: ih, port: 10000 + n, left: left}
	p.pk = passkey.Derive(secret, version, uid, ih)
	copy(p.id[:], fmt.Sprintf("-XT0001-%012d", n))
	return p
}

// announceQuery is a simulated client's announce parameters but info_hash.
func announceQuery(id [20]byte, port int, up, down, left uint64, event string) url.Values {
	q := url.Values{}
	q.Set("peer_id", string(id[:]))
	q.Set("port", fmt.Sprint(port))
	q.Set("uploaded", fmt.Sprint(up))
	q.Set("downloaded", fmt.Sprint(down))
	q.Set("left", fmt.Sprint(left))
	q.Set("compact", "1")
	if event != "" {
		q.Set("event", event)
	}
	return q
}

// announce sends the peer's counters plus the given increments. It returns
// the tracker's answer; the counters advance only when the announce was
// answered without failure reason. err is a transport error.
func (p *simPeer) announce(addUp, addDown uint64, event string) (string, error) {
	up, down := p.up+addUp, p.down+addDown
	q := announceQuery(p.id, p.port, up, down, p.left, event)
	q.Set("info_hash", string(p.ih[:]))
	resp, err := syHTTP.Get(p.base + "/" + p.pk + "/announce?" + q.Encode())
	if err != nil {
		return "", err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return "", err
	}
	b := string(body)
	if resp.StatusCode != 200 {
		return b, fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	if strings.Contains(b, "failure reason") {
		return b, nil
	}
	if p.started {
		p.sentUp += up - p.up
		p.sentDown += down - p.down
	}
	p.up, p.down, p.started = up, down, true
	return b, nil
}

// syFailure returns the failure reason of a bencoded answer, or "".
func syFailure(body string) string {
	i := strings.Index(body, "14:failure reason")
	if i < 0 {
		return ""
	}
	rest := body[i+len("14:failure reason"):]
	j := strings.IndexByte(rest, ':')
	if j < 0 {
		return rest
	}
	var n int
	fmt.Sscan(rest[:j], &n)
	if j+1+n > len(rest) {
		return rest[j+1:]
	}
	return rest[j+1 : j+1+n]
}

// syEventually polls f every 100ms until it returns "" or d passes; then it
// fails the test with f's last message.
func syEventually(t *testing.T, d time.Duration, f func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		msg := f()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// syProxy forwards 127.0.0.1:<port> to a target address; the test can cut
// it (every open connection is closed and new ones are closed at once) and
// restore it.
type syProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]struct{}
}

func newSyProxy(t *testing.T, target string) *syProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &syProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.cut()
	})
	return p
}

func (p *syProxy) addr() string { return p.ln.Addr().String() }

func (p *syProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		go p.forward(c)
	}
}

func (p *syProxy) forward(c net.Conn) {
	s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		c.Close()
		s.Close()
		return
	}
	p.conns[c], p.conns[s] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(s, c)
	go pipe(c, s)
	<-done
	c.Close()
	s.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, s)
	p.mu.Unlock()
}

// cut closes every connection and refuses new ones until restore.
func (p *syProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
}

func (p *syProxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// syViaProxy returns dsn with its address replaced by the proxy's.
func syViaProxy(t *testing.T, dsn string, proxyAddr string) string {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr = proxyAddr
	return cfg.FormatDSN()
}

// syDSNAddr is the server address of dsn.
func syDSNAddr(t *testing.T, dsn string) string {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Addr
}

func syGet(t *testing.T, u string) string {
	t.Helper()
	resp, err := syHTTP.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// syMetric returns the value of an unlabelled metric from /metrics.
func syMetric(t *testing.T, base, name string) float64 {
	t.Helper()
	body := syGet(t, base+"/metrics")
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("/metrics has no %s", name)
	}
	var v float64
	fmt.Sscan(m[1], &v)
	return v
}
