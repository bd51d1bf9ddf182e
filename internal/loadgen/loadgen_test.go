package loadgen

import (
	"bufio"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/xbt-tracker/xbt-tracker/tracker"
	"github.com/xbt-tracker/xbt-tracker/tracker/httpfront"
	"github.com/xbt-tracker/xbt-tracker/tracker/udpfront"
)

func TestZipf(t *testing.T) {
	const n = 1000
	z := NewZipf(n, 1.0)
	h := 0.0
	for i := 1; i <= n; i++ {
		h += 1 / float64(i)
	}
	if got, want := z.P(0), 1/h; math.Abs(got-want) > 1e-9 {
		t.Fatalf("P(0) = %v, want %v", got, want)
	}
	if got, want := z.P(9), 1/(10*h); math.Abs(got-want) > 1e-9 {
		t.Fatalf("P(9) = %v, want %v", got, want)
	}
	r := rand.New(rand.NewPCG(1, 2))
	counts := make([]int, n)
	const draws = 400_000
	for range draws {
		i := z.Pick(r)
		if i < 0 || i >= n {
			t.Fatalf("rank %d out of range", i)
		}
		counts[i]++
	}
	for _, i := range []int{0, 1, 2, 9, 99} {
		got, want := float64(counts[i])/draws, z.P(i)
		if math.Abs(got-want) > 0.05*want+0.0005 {
			t.Errorf("rank %d drawn %.4f of the time, want %.4f", i, got, want)
		}
	}
	if !(counts[0] > counts[1] && counts[1] > counts[2] && counts[2] > counts[9]) {
		t.Errorf("not skewed: %v", counts[:10])
	}
	// The long tail: the bottom half of the ranks gets a small share.
	tail := 0
	for _, c := range counts[n/2:] {
		tail += c
	}
	if share := float64(tail) / draws; share > 0.15 {
		t.Errorf("bottom half drawn %.3f of the time", share)
	}

	u := NewZipf(10, 0) // uniform
	for i := range 10 {
		if math.Abs(u.P(i)-0.1) > 1e-12 {
			t.Fatalf("s=0: P(%d) = %v", i, u.P(i))
		}
	}
	one := NewZipf(1, 1.2)
	if one.Pick(r) != 0 {
		t.Fatal("one rank")
	}
}

func testWorld() *World { return SyntheticWorld(50, 20, "") }

// TestPeerSessions runs the state machine long enough for many sessions and
// checks what a tracker relies on: a session begins with started, its
// uploaded and downloaded never decrease and left never increases,
// completed is sent once, exactly when left reaches 0, and stopped ends the
// session; the next one has a new peer_id and counters from zero.
func TestPeerSessions(t *testing.T) {
	w := testWorld()
	g := &peerGen{w: w, z: NewZipf(len(w.Hashes), 1), b: DefaultBehaviour, r: rand.New(rand.NewPCG(3, 4)), worker: 7}
	peers := make([]simPeer, 30)
	for i := range peers {
		g.begin(&peers[i])
	}
	type session struct {
		up, down, left uint64
		events         []Event
		completed      int
		seeder         bool
	}
	seen := map[[20]byte]*session{}
	var starts, stops, completes, periodic int
	for step := range 50_000 {
		p := &peers[step%len(peers)]
		ev := g.next(p)
		s := seen[p.id]
		if s == nil {
			if ev != EventStarted {
				t.Fatalf("new session %q began with %v", p.id, ev)
			}
			if p.up != 0 || p.down != 0 || (p.left != 0 && p.left != p.size) {
				t.Fatalf("new session with counters %d/%d/%d", p.up, p.down, p.left)
			}
			s = &session{up: p.up, down: p.down, left: p.left, seeder: p.left == 0}
			seen[p.id] = s
		} else {
			if ev == EventStarted {
				t.Fatalf("session %q started twice", p.id)
			}
			if s.events[len(s.events)-1] == EventStopped {
				t.Fatalf("session %q announced after stopped", p.id)
			}
			if p.up < s.up || p.down < s.down || p.left > s.left {
				t.Fatalf("session %q counters went back: up %d->%d down %d->%d left %d->%d", p.id, s.up, p.up, s.down, p.down, s.left, p.left)
			}
			if ev == EventCompleted {
				if p.left != 0 || s.left == 0 {
					t.Fatalf("completed with left %d (before %d)", p.left, s.left)
				}
				s.completed++
			}
			if p.left == 0 && s.left != 0 && ev != EventCompleted {
				t.Fatalf("left reached 0 with event %v", ev)
			}
			if p.down-s.down > p.size || p.left+p.down != p.size && !s.seeder {
				t.Fatalf("leecher bookkeeping: size %d, down %d, left %d", p.size, p.down, p.left)
			}
		}
		s.up, s.down, s.left = p.up, p.down, p.left
		s.events = append(s.events, ev)
		switch ev {
		case EventStarted:
			starts++
		case EventStopped:
			stops++
		case EventCompleted:
			completes++
		default:
			periodic++
		}
		if int(p.user) >= len(w.Users) || int(p.torrent) >= len(w.Hashes) {
			t.Fatal("index out of range")
		}
	}
	for id, s := range seen {
		if s.completed > 1 || (s.seeder && s.completed != 0) {
			t.Fatalf("session %q: %d completions (seeder %v)", id, s.completed, s.seeder)
		}
	}
	if starts < 1000 || stops < 1000 || completes < 100 || periodic < 10_000 {
		t.Fatalf("event mix: %d started, %d stopped, %d completed, %d periodic", starts, stops, completes, periodic)
	}
	if len(seen) != starts {
		t.Fatalf("%d sessions, %d starts: peer ids repeat", len(seen), starts)
	}
}

func TestReadResponse(t *testing.T) {
	cases := []struct {
		name, in   string
		status     int
		body       string
		closeConn  bool
		errKind    errKind
		wantErrAny bool
	}{
		{name: "keep-alive", in: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nd8:completeXXX", status: 200, body: "d8:complete"},
		{name: "close", in: "HTTP/1.1 200 OK\r\nconnection: Close\r\ncontent-length: 2\r\n\r\nde", status: 200, body: "de", closeConn: true},
		{name: "http/1.0", in: "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n", status: 404, closeConn: true},
		{name: "http/1.0 keep-alive", in: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx", status: 200, body: "x"},
		{name: "no length", in: "HTTP/1.1 200 OK\r\n\r\nall of it", status: 200, body: "all of it", closeConn: true},
		{name: "short body", in: "HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\nd8:comp", errKind: errClosed},
		{name: "garbage", in: "SSH-2.0-OpenSSH\r\n\r\n", errKind: errProto},
		{name: "bad length", in: "HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n", errKind: errProto},
		{name: "eof in head", in: "HTTP/1.1 200 OK\r\nContent-Len", errKind: errClosed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			br := bufio.NewReaderSize(strings.NewReader(c.in), 64)
			status, body, closeConn, err := readResponse(br, nil)
			if c.errKind != "" {
				var re *reqError
				if !errors.As(err, &re) || re.kind != c.errKind {
					t.Fatalf("err = %v, want kind %q", err, c.errKind)
				}
				return
			}
			if err != nil || status != c.status || string(body) != c.body || closeConn != c.closeConn {
				t.Fatalf("got %d %q close=%v err=%v", status, body, closeConn, err)
			}
		})
	}
}

func TestCheckBody(t *testing.T) {
	if o := CheckAnnounceBody([]byte("d8:completei3e10:incompletei1e8:intervali1800e5:peers0:e")); !o.OK {
		t.Fatal(o)
	}
	if o := CheckScrapeBody([]byte("d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei1eeee")); !o.OK {
		t.Fatal(o)
	}
	o := CheckAnnounceBody([]byte("d14:failure reason25:unregistered torrent passe"))
	if o.OK || !o.Failed || o.Kind != "failure reason: unregistered torrent pass" {
		t.Fatalf("%+v", o)
	}
	if o := CheckAnnounceBody([]byte("<html>")); o.OK || o.Kind != "bad body" {
		t.Fatalf("%+v", o)
	}
	if o := CheckScrapeBody([]byte("d8:completei1ee")); o.OK {
		t.Fatalf("an announce answer accepted as a scrape: %+v", o)
	}
	for _, b := range []string{"d14:failure reason99:short", "d14:failure reasonx:y", "d14:failure reason"} {
		if r, ok := FailureReason([]byte(b)); ok {
			t.Fatalf("%q: %q", b, r)
		}
	}
}

func TestHistogram(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 1 << 20, 123456789, 1<<40 + 12345, math.MaxUint64 >> 1} {
		i := histIndex(v)
		if lo, hi := histLow(i), histHigh(i); v < lo || v > hi {
			t.Fatalf("value %d in bucket %d = [%d, %d]", v, i, lo, hi)
		}
		if v >= histSub {
			if lo, hi := histLow(i), histHigh(i); float64(hi-lo) > float64(lo)/float64(histHalf) {
				t.Fatalf("bucket of %d too wide: [%d, %d]", v, lo, hi)
			}
		}
	}
	for i := 1; i < histBuckets; i++ {
		if histLow(i) != histHigh(i-1)+1 {
			t.Fatalf("buckets %d and %d not adjacent", i-1, i)
		}
	}
	var h Histogram
	if h.Quantile(0.5) != 0 {
		t.Fatal("empty histogram")
	}
	for i := 1; i <= 100_000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		got, want := h.Quantile(q), time.Duration(q*100_000)*time.Microsecond
		if math.Abs(float64(got-want)) > float64(want)/60 {
			t.Errorf("q%v = %v, want %v", q, got, want)
		}
	}
	if h.Max() != 100*time.Millisecond || h.Quantile(1) != 100*time.Millisecond || h.Count() != 100_000 {
		t.Fatalf("max %v q1 %v count %d", h.Max(), h.Quantile(1), h.Count())
	}
	var o Histogram
	o.Record(time.Second)
	h.Merge(&o)
	if h.Count() != 100_001 || h.Max() != time.Second {
		t.Fatal("merge")
	}
	h.Reset()
	if h.Count() != 0 || h.Max() != 0 {
		t.Fatal("reset")
	}
}

func TestLoopbackOnly(t *testing.T) {
	ctx := context.Background()
	for _, ok := range []string{"http://127.0.0.1:2710", "http://127.3.4.5:80/tracker/", "http://[::1]:2710", "udp://127.0.0.1:6969", "http://localhost:2710"} {
		tg, err := ResolveTarget(ctx, ok, false)
		if err != nil {
			t.Errorf("%s refused: %v", ok, err)
			continue
		}
		if !tg.Addr.Addr().IsLoopback() {
			t.Errorf("%s dials %v", ok, tg.Addr)
		}
	}
	tg, _ := ResolveTarget(ctx, "http://127.0.0.1:81/x/", false)
	if tg.BasePath != "/x" || tg.Host != "127.0.0.1:81" || tg.UDP {
		t.Errorf("%+v", tg)
	}
	for _, bad := range []string{"http://10.0.0.1:2710", "http://192.168.1.1", "http://8.8.8.8:80", "udp://[2001:db8::1]:6969", "http://[::ffff:10.1.1.1]:80"} {
		if _, err := ResolveTarget(ctx, bad, false); err == nil || !strings.Contains(err.Error(), "not a loopback address") {
			t.Errorf("%s: err = %v, want a refusal", bad, err)
		}
		if _, err := ResolveTarget(ctx, bad, true); err != nil {
			t.Errorf("%s with allowRemote: %v", bad, err)
		}
	}
	for _, malformed := range []string{"ftp://127.0.0.1:21", "udp://127.0.0.1", "http://:80", "http://127.0.0.1:0", "http://127.0.0.1:99999"} {
		if _, err := ResolveTarget(ctx, malformed, false); err == nil {
			t.Errorf("%s accepted", malformed)
		}
	}
	// A name resolving to loopback and another address is refused whole.
	mixed := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("203.0.113.9")}
	if _, err := checkLoopback("mixed.example", mixed, false); err == nil {
		t.Error("mixed addresses accepted")
	}
	if a, err := checkLoopback("both", []netip.Addr{netip.MustParseAddr("::1"), netip.MustParseAddr("127.0.0.1")}, false); err != nil || !a.Is4() {
		t.Errorf("%v %v: want the IPv4 loopback", a, err)
	}
}

func TestProcParsing(t *testing.T) {
	rss, peak, err := parseStatus([]byte("Name:\txbt\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n"))
	if err != nil || rss != 1<<20 || peak != 2<<20 {
		t.Fatalf("%d %d %v", rss, peak, err)
	}
	if _, _, err := parseStatus([]byte("Name: x\n")); err == nil {
		t.Fatal("no VmRSS accepted")
	}
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0A96 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0A96 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4444 1 0000000000000000 100 0 0 10 0
`
	if got := listenInodes([]byte(table), 2710, false); len(got) != 1 || got[0] != "4242" {
		t.Fatalf("%v", got)
	}
	// This process's own listener is found (or at least its socket is).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := FindListener(uint16(ln.Addr().(*net.TCPAddr).Port), false); err == nil {
		t.Fatal("found a pid although the only listener is this process")
	}
	if rss, _, err := ReadRSS(1); err != nil && rss != 0 {
		t.Fatal(err)
	}
	cpu, err := parseStatCPU([]byte("4242 (xbt tracker) S 1 4242 4242 0 -1 4194560 2170 0 0 0 150 25 0 0 20 0 9 0 123 456"))
	if err != nil || cpu != 1750*time.Millisecond {
		t.Fatalf("%v %v", cpu, err)
	}
	if _, err := ReadCPU(os.Getpid()); err != nil {
		t.Fatal(err)
	}
}

func TestAppendUDPAnnounce(t *testing.T) {
	ih, id := BenchHash(1), [20]byte{'-', 'X', 'B'}
	long := "/" + strings.Repeat("k", 300) + "/announce"
	for _, url := range []string{"/0123456789abcdef0123456789abcdef/announce", long} {
		pkt := AppendUDPAnnounce(nil, 0x1122334455667788, 99, &ih, &id, 1, 2, 3, EventStarted, 7, 50, 6881, []byte(url))
		var r udpfront.Request
		if err := udpfront.ParsePacket(pkt, &r); err != nil {
			t.Fatal(err)
		}
		if r.ConnectionID != 0x1122334455667788 || r.TransactionID != 99 || r.InfoHash != ih || r.PeerID != id ||
			r.Downloaded != 1 || r.Left != 2 || r.Uploaded != 3 || r.Event != tracker.EventStarted || r.NumWant != 50 ||
			r.Port != 6881 || string(r.URLData) != url {
			t.Fatalf("%+v", r)
		}
	}
}

// inProcess is a tracker with the World's users and torrents behind real
// HTTP and UDP frontends on 127.0.0.1.
func inProcess(t *testing.T, w *World) (trk *tracker.Tracker, httpAddr, udpAddr string) {
	t.Helper()
	trk = tracker.New(tracker.Settings{Secret: w.Secret, AnnounceInterval: 1800}, tracker.Options{})
	for _, u := range w.Users {
		trk.UpsertUser(tracker.User{UID: u.UID, TorrentPassVersion: int(u.Version), CanLeech: true})
	}
	for i, h := range w.Hashes {
		trk.UpsertTorrent(tracker.Torrent{Fid: uint32(i + 1), InfoHash: h, Ctime: 1})
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := httpfront.New(trk, httpfront.Config{})
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Shutdown(context.Background()) })
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	us := udpfront.New(trk, udpfront.Config{})
	go us.Serve(pc)
	t.Cleanup(func() { us.Shutdown(context.Background()) })
	return trk, ln.Addr().String(), pc.LocalAddr().String()
}

func TestRunInProcess(t *testing.T) {
	w := testWorld()
	trk, httpAddr, udpAddr := inProcess(t, w)
	for _, c := range []struct {
		name   string
		target string
		keep   bool
		scrape float64
	}{
		{"keep-alive", "http://" + httpAddr, true, 0.1},
		{"new connections", "http://" + httpAddr, false, 0.1},
		{"udp", "udp://" + udpAddr, false, 0}, // UDP scrapes carry no passkey
	} {
		t.Run(c.name, func(t *testing.T) {
			tg, err := ResolveTarget(context.Background(), c.target, false)
			if err != nil {
				t.Fatal(err)
			}
			const n = 1500
			rep, err := Run(context.Background(), Config{
				Target: tg, World: w, KeepAlive: c.keep, Concurrency: 4, Requests: n, Peers: 200,
				// The target is this process: its CPU per answer is measured
				// like a server's.
				ScrapeRatio: c.scrape, ZipfS: 1, Timeout: 5 * time.Second, PID: os.Getpid(),
			})
			if err != nil {
				t.Fatal(err)
			}
			var sb strings.Builder
			rep.WriteText(&sb)
			if rep.Requests != n || rep.OK != n || rep.Errors != 0 || rep.Announces+rep.Scrapes != n || rep.Events["started"] < 200 {
				t.Fatalf("report:\n%s", sb.String())
			}
			if c.scrape > 0 && rep.Scrapes == 0 {
				t.Fatalf("no scrapes:\n%s", sb.String())
			}
			if rep.P50 <= 0 || rep.P99 < rep.P50 || rep.Max < rep.P99 {
				t.Fatalf("latencies:\n%s", sb.String())
			}
			if rep.TargetUSPerAnswer <= 0 || rep.SelfUSPerAnswer <= 0 || rep.TargetCores != runtime.NumCPU() ||
				!strings.Contains(sb.String(), "CPU/answer  target ") {
				t.Fatalf("CPU per answer:\n%s", sb.String())
			}
		})
	}
	st := trk.Stats()
	if st.Peers == 0 || st.AnnouncesOK == 0 || st.AnnouncesFailed != 0 {
		t.Fatalf("tracker stats %+v", st)
	}
	// The tracker credited the simulated transfers.
	b := trk.Drain()
	var up, down uint64
	for _, d := range b.Users {
		up += d.Uploaded
		down += d.Downloaded
	}
	if up == 0 || down == 0 {
		t.Fatalf("credited %d up, %d down", up, down)
	}
}

func TestRunPacedAndFailures(t *testing.T) {
	w := testWorld()
	_, httpAddr, _ := inProcess(t, w)
	tg, _ := ResolveTarget(context.Background(), "http://"+httpAddr, false)
	// Wrong secret: every announce is refused, counted by its reason.
	bad := *w
	bad.Secret = "not the secret"
	var progress strings.Builder
	start := time.Now()
	rep, err := Run(context.Background(), Config{Target: tg, World: &bad, KeepAlive: true, Concurrency: 2,
		Duration: 1500 * time.Millisecond, Rate: 200, Peers: 10, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 1400*time.Millisecond || el > 3*time.Second {
		t.Fatalf("ran %v", el)
	}
	if rep.Requests < 200 || rep.Requests > 400 || rep.OK != 0 || rep.ErrorKinds["failure reason: unregistered torrent pass"] != rep.Requests {
		t.Fatalf("%+v", rep)
	}
	if !strings.Contains(progress.String(), "req/s") {
		t.Fatalf("no progress line: %q", progress.String())
	}
	// Nothing listening: connect errors.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	tg, _ = ResolveTarget(context.Background(), "http://"+addr, false)
	rep, err = Run(context.Background(), Config{Target: tg, World: w, Concurrency: 2, Requests: 20, Peers: 4})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors != 20 || rep.ErrorKinds["connection refused"] != 20 {
		t.Fatalf("%+v", rep.ErrorKinds)
	}
}

func TestRunWarmup(t *testing.T) {
	w := testWorld()
	trk, httpAddr, _ := inProcess(t, w)
	tg, _ := ResolveTarget(context.Background(), "http://"+httpAddr, false)
	rep, err := Run(context.Background(), Config{Target: tg, World: w, KeepAlive: true, Concurrency: 2,
		Warmup: 300 * time.Millisecond, Requests: 100, Peers: 50})
	if err != nil {
		t.Fatal(err)
	}
	st := trk.Stats()
	if rep.Requests != 100 || rep.OK != 100 || st.AnnouncesOK+st.ScrapesOK <= 100 || rep.Events["started"] == int64(st.AnnouncesOK) {
		t.Fatalf("report %+v, tracker %+v: warm-up requests counted, or none sent", rep, st)
	}
}

func TestCountCPUList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"0", 1, true}, {"0-1", 2, true}, {"0-3,8,10-11", 7, true}, {"1", 1, true},
		{"", 0, false}, {"3-1", 0, false}, {"a", 0, false}, {"0-", 0, false},
	} {
		got, err := countCPUList(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("countCPUList(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	// This process: what Go saw at start (its affinity).
	if n, err := AllowedCPUs(os.Getpid()); err != nil || n != runtime.NumCPU() {
		t.Errorf("AllowedCPUs(self) = %d, %v; runtime.NumCPU() = %d", n, err, runtime.NumCPU())
	}
}

func TestBottleneck(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		target, self         float64 // % of one core
		targetCores, selfCPU int
		want                 string
	}{
		{"load generator saturated", 62, 97, 1, 1, "load generator"},
		{"target saturated", 99, 97, 1, 1, "target"},
		{"target on two cores, half used", 100, 95, 2, 1, "load generator"},
		{"neither", 40, 50, 1, 1, ""},
		{"load generator on two cores, one used", 40, 100, 1, 2, ""},
	} {
		rep := &Report{PID: 1, TargetCPU: tc.target, SelfCPU: tc.self, TargetCores: tc.targetCores, SelfCores: tc.selfCPU}
		if got := rep.Bottleneck(); got != tc.want {
			t.Errorf("%s: Bottleneck() = %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := (&Report{SelfCPU: 100, SelfCores: 1}).Bottleneck(); got != "" {
		t.Errorf("without a target pid: %q", got)
	}
}
