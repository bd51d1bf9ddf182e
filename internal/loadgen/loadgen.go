package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config is one load run.
type Config struct {
	Target      Target
	World       *World
	Behaviour   Behaviour
	KeepAlive   bool          // HTTP: reuse connections; false = a new TCP connection per request
	NoPasskey   bool          // /announce without a passkey segment (servers that are not XBT-like)
	Concurrency int           // workers, each with its own connection
	Duration    time.Duration // stop after this long (0: only Requests)
	Requests    int64         // stop after this many requests (0: only Duration)
	Warmup      time.Duration // run this long first without counting (Duration and Requests count after it)
	Rate        float64       // total requests per second; 0 = as fast as answers come
	Peers       int           // simulated client sessions, spread over the workers
	ScrapeRatio float64       // share of requests that are scrapes
	ZipfS       float64       // torrent popularity exponent
	NumWant     int
	Timeout     time.Duration // per request
	Seed        uint64        // random seed; 0 = random
	PID         int           // the target's process, for its RSS; 0 = none

	Progress io.Writer // a line per second; nil = none
	Timeline io.Writer // CSV, a row per second; nil = none
}

func (c *Config) defaults() error {
	if c.World == nil || len(c.World.Users) == 0 || len(c.World.Hashes) == 0 {
		return errors.New("loadgen: no users or torrents")
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 64
	}
	if c.Peers <= 0 {
		c.Peers = 100_000
	}
	if c.Peers < c.Concurrency {
		c.Peers = c.Concurrency
	}
	if c.Duration <= 0 && c.Requests <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.NumWant <= 0 {
		c.NumWant = 50
	}
	if c.Behaviour == (Behaviour{}) {
		c.Behaviour = DefaultBehaviour
	}
	if c.Seed == 0 {
		c.Seed = rand.Uint64()
	}
	return nil
}

// run is the shared state of one Run.
type run struct {
	cfg         *Config
	zipf        *Zipf
	measureFrom time.Time // requests sent before are warm-up, not counted
	total       Histogram
	win         atomic.Pointer[Histogram] // the current second's latencies

	issued    atomic.Int64
	done      atomic.Int64
	okCount   atomic.Int64
	errCount  atomic.Int64
	announces atomic.Int64
	scrapes   atomic.Int64
	connects  atomic.Int64 // UDP connect exchanges
	events    [4]atomic.Int64

	mu     sync.Mutex
	errors map[string]int64
}

func (r *run) fail(kind string) {
	r.errCount.Add(1)
	r.mu.Lock()
	r.errors[kind]++
	r.mu.Unlock()
}

// Run drives the load until ctx ends, Duration passes or Requests have been
// sent, and reports.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	r := &run{cfg: &cfg, zipf: NewZipf(len(cfg.World.Hashes), cfg.ZipfS), errors: map[string]int64{}}
	r.win.Store(new(Histogram))

	rep := &Report{Target: targetString(cfg.Target), PID: cfg.PID, Concurrency: cfg.Concurrency,
		Users: len(cfg.World.Users), Torrents: len(cfg.World.Hashes), Peers: cfg.Peers, Rate: cfg.Rate}
	switch {
	case cfg.Target.UDP:
		rep.Mode = "udp"
	case cfg.KeepAlive:
		rep.Mode = "http keep-alive"
	default:
		rep.Mode = "http, new connection per request"
	}
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Warmup+cfg.Duration)
		defer cancel()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	start := time.Now()
	r.measureFrom = start.Add(cfg.Warmup)
	var wg sync.WaitGroup
	per := cfg.Peers / cfg.Concurrency
	for w := range cfg.Concurrency {
		n := per
		if w < cfg.Peers%cfg.Concurrency {
			n++
		}
		wg.Go(func() { r.worker(ctx, cancel, w, n, start) })
	}
	progDone := make(chan struct{})
	var cpu0, self0 time.Duration
	go func() {
		defer close(progDone)
		if cfg.Warmup > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(cfg.Warmup):
			}
		}
		if cfg.PID != 0 {
			rep.RSSBefore, _, _ = ReadRSS(cfg.PID)
			cpu0, _ = ReadCPU(cfg.PID)
		}
		self0 = selfCPU()
		r.progress(ctx, r.measureFrom)
	}()
	wg.Wait()
	cancel()
	<-progDone

	rep.Elapsed = time.Since(r.measureFrom)
	rep.Requests = r.done.Load()
	rep.OK = r.okCount.Load()
	rep.Errors = r.errCount.Load()
	rep.Announces = r.announces.Load()
	rep.Scrapes = r.scrapes.Load()
	rep.UDPConnects = r.connects.Load()
	rep.Events = map[string]int64{}
	for e := range r.events {
		rep.Events[Event(e).String()] = r.events[e].Load()
	}
	rep.ErrorKinds = r.errors
	if rep.Elapsed > 0 {
		rep.RPS = float64(rep.Requests) / rep.Elapsed.Seconds()
	}
	rep.P50, rep.P90, rep.P99, rep.P999 = r.total.Quantile(0.5), r.total.Quantile(0.9), r.total.Quantile(0.99), r.total.Quantile(0.999)
	rep.Max = r.total.Max()
	self := selfCPU() - self0
	if rep.Elapsed > 0 {
		rep.SelfCPU = 100 * self.Seconds() / rep.Elapsed.Seconds()
	}
	rep.SelfCores = runtime.NumCPU() // the affinity mask's CPUs, as taskset set them
	if rep.OK > 0 {
		rep.SelfUSPerAnswer = self.Seconds() * 1e6 / float64(rep.OK)
	}
	if cfg.PID != 0 {
		rep.RSSAfter, rep.RSSPeak, _ = ReadRSS(cfg.PID)
		if cpu1, err := ReadCPU(cfg.PID); err == nil && rep.Elapsed > 0 {
			rep.TargetCPU = 100 * (cpu1 - cpu0).Seconds() / rep.Elapsed.Seconds()
			if rep.OK > 0 {
				rep.TargetUSPerAnswer = (cpu1 - cpu0).Seconds() * 1e6 / float64(rep.OK)
			}
		}
		rep.TargetCores, _ = AllowedCPUs(cfg.PID)
	}
	return rep, nil
}

// progress writes a line (and a timeline row) every second.
func (r *run) progress(ctx context.Context, start time.Time) {
	if r.cfg.Progress == nil && r.cfg.Timeline == nil {
		<-ctx.Done()
		return
	}
	if r.cfg.Timeline != nil {
		fmt.Fprintln(r.cfg.Timeline, "second,unix,requests,errors,p50_us,p99_us,p999_us,max_us,rss_mb")
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastDone, lastErr int64
	sec := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		sec++
		h := r.win.Swap(new(Histogram))
		done, errs := r.done.Load(), r.errCount.Load()
		rss := ""
		var rssMB float64
		if r.cfg.PID != 0 {
			if v, _, err := ReadRSS(r.cfg.PID); err == nil {
				rssMB = float64(v) / (1 << 20)
				rss = fmt.Sprintf("  rss %.0f MB", rssMB)
			}
		}
		if r.cfg.Progress != nil {
			fmt.Fprintf(r.cfg.Progress, "%4ds %8d req/s  p50 %-8v p99 %-8v max %-8v errors %d (total %d)%s\n",
				sec, done-lastDone, round(h.Quantile(0.5)), round(h.Quantile(0.99)), round(h.Max()), errs-lastErr, done, rss)
		}
		if r.cfg.Timeline != nil {
			fmt.Fprintf(r.cfg.Timeline, "%d,%.3f,%d,%d,%d,%d,%d,%d,%.1f\n", sec, float64(time.Now().UnixMilli())/1000, done-lastDone, errs-lastErr,
				h.Quantile(0.5).Microseconds(), h.Quantile(0.99).Microseconds(), h.Quantile(0.999).Microseconds(), h.Max().Microseconds(), rssMB)
		}
		lastDone, lastErr = done, errs
	}
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Millisecond:
		return d.Round(time.Millisecond)
	case d >= 10*time.Microsecond:
		return d.Round(time.Microsecond)
	}
	return d
}

// worker owns n simulated peers and one connection. It first starts each of
// its peers once, in order (so that --requests equal to --peers leaves every
// peer in the swarms), then announces for random ones of them.
func (r *run) worker(ctx context.Context, cancel context.CancelFunc, w, n int, start time.Time) {
	cfg := r.cfg
	rng := rand.New(rand.NewPCG(cfg.Seed, uint64(w)+1))
	gen := &peerGen{w: cfg.World, z: r.zipf, b: cfg.Behaviour, r: rng, worker: uint32(w)}
	peers := make([]simPeer, n)
	for i := range peers {
		gen.begin(&peers[i])
	}
	addr := cfg.Target.Addr.String()
	var hc *httpConn
	var uc *udpConn
	if cfg.Target.UDP {
		uc = newUDPConn(addr, cfg.Timeout, uint32(rng.Uint64()))
		defer uc.close()
	} else {
		hc = newHTTPConn(addr, cfg.KeepAlive, cfg.Timeout)
		defer hc.close()
	}
	rb := &requestBuilder{host: cfg.Target.Host, base: cfg.Target.BasePath, noPasskey: cfg.NoPasskey,
		keepAlive: cfg.KeepAlive, numWant: cfg.NumWant, buf: make([]byte, 0, 512)}

	var interval time.Duration
	next := start
	if cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(cfg.Concurrency) / cfg.Rate)
		next = start.Add(time.Duration(rng.Int64N(int64(interval) + 1))) // spread the workers' phases
	}
	filled := 0
	warm := cfg.Warmup > 0
	for ctx.Err() == nil {
		if warm && !time.Now().Before(r.measureFrom) {
			warm = false
		}
		if !warm && cfg.Requests > 0 && r.issued.Add(1) > cfg.Requests {
			cancel()
			return
		}
		var p *simPeer
		if filled < len(peers) {
			p = &peers[filled]
			filled++
		} else {
			p = &peers[rng.IntN(len(peers))]
		}
		scrape := cfg.ScrapeRatio > 0 && p.running && !p.ended && rng.Float64() < cfg.ScrapeRatio
		var ev Event
		if !scrape {
			ev = gen.next(p)
		}
		ih := &cfg.World.Hashes[p.torrent]

		// Latency is measured from when the request was due, not when it
		// could be sent: a server that stalls is charged for the requests
		// that queued behind the stall (no coordinated omission).
		t0 := time.Now()
		if interval > 0 {
			if d := next.Sub(t0); d > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(d):
				}
			}
			t0 = next
			next = next.Add(interval)
		}
		var out Outcome
		var err error
		if uc != nil {
			hadID := uc.cid != 0 && time.Since(uc.cidAt) < udpConnIDMaxAge
			if scrape {
				out, err = uc.scrape(ih)
			} else {
				out, err = uc.announce(p, ih, ev, cfg.Target.BasePath, cfg.NoPasskey, cfg.NumWant)
			}
			if !hadID {
				r.connects.Add(1)
			}
		} else {
			var req []byte
			if scrape {
				req = rb.scrape(p, ih)
			} else {
				req = rb.announce(p, ih, ev)
			}
			var status int
			var body []byte
			status, body, err = hc.roundTrip(req)
			if err == nil {
				switch {
				case status != 200:
					out = Outcome{Kind: fmt.Sprintf("http %d", status)}
				case scrape:
					out = CheckScrapeBody(body)
				default:
					out = CheckAnnounceBody(body)
				}
			}
		}
		lat := time.Since(t0)
		if warm {
			continue
		}
		r.total.Record(lat)
		r.win.Load().Record(lat)
		r.done.Add(1)
		if scrape {
			r.scrapes.Add(1)
		} else {
			r.announces.Add(1)
			r.events[ev].Add(1)
		}
		switch {
		case err != nil:
			var re *reqError
			if errors.As(err, &re) {
				r.fail(string(re.kind))
			} else {
				r.fail(err.Error())
			}
		case !out.OK:
			r.fail(out.Kind)
		default:
			r.okCount.Add(1)
		}
	}
}

func targetString(t Target) string {
	s := "http://"
	if t.UDP {
		s = "udp://"
	}
	return s + t.Host + t.BasePath + " (" + t.Addr.String() + ")"
}

// Report is the result of a Run.
type Report struct {
	Target      string
	Mode        string
	Concurrency int
	Users       int
	Torrents    int
	Peers       int
	Rate        float64 `json:",omitempty"`

	Elapsed     time.Duration
	Requests    int64
	OK          int64
	Errors      int64
	Announces   int64
	Scrapes     int64
	UDPConnects int64 `json:",omitempty"`
	Events      map[string]int64
	ErrorKinds  map[string]int64
	RPS         float64

	P50, P90, P99, P999, Max time.Duration

	PID       int   `json:",omitempty"`
	RSSBefore int64 `json:",omitempty"` // bytes
	RSSAfter  int64 `json:",omitempty"`
	RSSPeak   int64 `json:",omitempty"`

	// CPU used during the run, in percent of one core: the target's (with
	// PID) and the load generator's own. A side near 100% per core it may
	// use is the bottleneck.
	TargetCPU float64 `json:",omitempty"`
	SelfCPU   float64

	// CPU time per answered request (an OK answer), in µs: the figure that
	// compares servers when the load generator, not the server, is the
	// bottleneck (requests/s then measure the load generator).
	TargetUSPerAnswer float64 `json:",omitempty"`
	SelfUSPerAnswer   float64
	// The CPUs each side may run on (affinity: taskset), for Bottleneck.
	TargetCores int `json:",omitempty"`
	SelfCores   int
}

// Bottleneck names the side that limited the run: "load generator" when it
// used 90% or more of the CPUs it may run on while the target did not,
// "target" when the target did, "" when neither (then the connections or
// the pacing limited it), or when the target's CPU is not known.
func (rep *Report) Bottleneck() string {
	if rep.PID == 0 || rep.TargetCores == 0 {
		return ""
	}
	self := rep.SelfCPU / float64(max(rep.SelfCores, 1))
	target := rep.TargetCPU / float64(rep.TargetCores)
	switch {
	case target >= 90:
		return "target"
	case self >= 90:
		return "load generator"
	}
	return ""
}

// WriteText writes the report for people.
func (rep *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "target      %s, %s, %d connections", rep.Target, rep.Mode, rep.Concurrency)
	if rep.Rate > 0 {
		fmt.Fprintf(w, ", paced at %.0f req/s", rep.Rate)
	}
	fmt.Fprintf(w, "\nworld       %d users, %d torrents, %d simulated peers\n", rep.Users, rep.Torrents, rep.Peers)
	fmt.Fprintf(w, "requests    %d in %v: %.0f req/s\n", rep.Requests, rep.Elapsed.Round(time.Millisecond), rep.RPS)
	fmt.Fprintf(w, "            %d announces (%d started, %d periodic, %d completed, %d stopped), %d scrapes",
		rep.Announces, rep.Events["started"], rep.Events["periodic"], rep.Events["completed"], rep.Events["stopped"], rep.Scrapes)
	if rep.UDPConnects > 0 {
		fmt.Fprintf(w, ", %d UDP connects", rep.UDPConnects)
	}
	fmt.Fprintf(w, "\nlatency     p50 %v  p90 %v  p99 %v  p99.9 %v  max %v\n", round(rep.P50), round(rep.P90), round(rep.P99), round(rep.P999), round(rep.Max))
	fmt.Fprintf(w, "ok          %d\nerrors      %d\n", rep.OK, rep.Errors)
	kinds := make([]string, 0, len(rep.ErrorKinds))
	for k := range rep.ErrorKinds {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool { return rep.ErrorKinds[kinds[i]] > rep.ErrorKinds[kinds[j]] })
	for _, k := range kinds {
		fmt.Fprintf(w, "  %10d  %s\n", rep.ErrorKinds[k], strings.TrimSpace(k))
	}
	if rep.PID != 0 {
		fmt.Fprintf(w, "target RSS  pid %d: %.1f MB before, %.1f MB after (%+.1f MB), peak %.1f MB\n", rep.PID,
			mb(rep.RSSBefore), mb(rep.RSSAfter), mb(rep.RSSAfter-rep.RSSBefore), mb(rep.RSSPeak))
		fmt.Fprintf(w, "CPU         target %.0f%% of %d core(s), load generator %.0f%% of %d core(s) (100%% = one core)\n",
			rep.TargetCPU, rep.TargetCores, rep.SelfCPU, rep.SelfCores)
		fmt.Fprintf(w, "CPU/answer  target %.1f µs, load generator %.1f µs (CPU time over the run / OK answers)\n",
			rep.TargetUSPerAnswer, rep.SelfUSPerAnswer)
		switch b := rep.Bottleneck(); b {
		case "load generator":
			fmt.Fprintf(w, "bottleneck  the load generator: req/s say how fast it is, compare the target's CPU/answer instead\n")
		case "target":
			fmt.Fprintf(w, "bottleneck  the target\n")
		default:
			fmt.Fprintf(w, "bottleneck  neither side was busy (connections or pacing limited the run)\n")
		}
	} else {
		fmt.Fprintf(w, "CPU         load generator %.0f%% of one core\n", rep.SelfCPU)
	}
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }
