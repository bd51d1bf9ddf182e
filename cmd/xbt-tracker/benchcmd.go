package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/xbt-tracker/xbt-tracker/internal/loadgen"
	xsql "github.com/xbt-tracker/xbt-tracker/sql"
)

// benchCommand wires the flags of `xbt-tracker bench` to internal/loadgen.
func (e *env) benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "load-test a tracker on this machine with simulated private-tracker clients",
		Description: "Sets up (or reuses, --setup=false) a database with --users users and --torrents torrents, derives real\n" +
			"passkeys from its torrent_pass_private_key and drives announces (started/periodic/completed/stopped,\n" +
			"Zipf-skewed torrent popularity, seeders and leechers with cumulative counters) and scrapes at --target.\n" +
			"Without --dsn the users and torrents are synthetic (for a server that checks nothing, e.g. nginx).\n" +
			"Only loopback targets are accepted. See docs/BENCHMARKS.md.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "target", Value: "http://127.0.0.1:2710", Usage: "base URL: http://host:port[/path] or udp://host:port (loopback only)"},
			&cli.BoolFlag{Name: "udp", Usage: "BEP 15 UDP announces (with BEP 41 URL data) to udp://<target's host:port>"},
			&cli.StringFlag{Name: "dsn", Usage: "the tracker's database (default XBT_DSN); none = synthetic users and torrents"},
			&cli.BoolFlag{Name: "setup", Value: true, Usage: "migrate and fill the database first (INSERT IGNORE: existing rows are kept)"},
			&cli.BoolFlag{Name: "setup-only", Usage: "set the database up, then exit (start the tracker after this)"},
			&cli.IntFlag{Name: "users", Value: 100_000, Usage: "users to create and announce as"},
			&cli.IntFlag{Name: "torrents", Value: 100_000, Usage: "torrents to create and announce on"},
			&cli.IntFlag{Name: "peers", Value: 100_000, Usage: "simulated client sessions (each started once first, then announcing at random)"},
			&cli.IntFlag{Name: "concurrency", Aliases: []string{"c"}, Value: 64, Usage: "connections (one worker each)"},
			&cli.DurationFlag{Name: "duration", Aliases: []string{"d"}, Usage: "how long to run (default 10s unless --requests)"},
			&cli.Int64Flag{Name: "requests", Aliases: []string{"n"}, Usage: "stop after this many requests"},
			&cli.DurationFlag{Name: "warmup", Usage: "run this long first without counting (e.g. until every peer has started)"},
			&cli.Float64Flag{Name: "rate", Usage: "total requests per second (0 = as fast as the target answers)"},
			&cli.BoolFlag{Name: "keepalive", Value: true, Usage: "reuse connections (false: a new TCP connection per request)"},
			&cli.Float64Flag{Name: "scrape-ratio", Value: 0.1, Usage: "share of requests that are scrapes (default 0 over UDP: BEP 15 scrapes carry no passkey, so they succeed only with anonymous_scrape)"},
			&cli.Float64Flag{Name: "seeders", Value: loadgen.DefaultBehaviour.SeederRatio, Usage: "share of sessions that start as seeders"},
			&cli.Float64Flag{Name: "stop-ratio", Value: loadgen.DefaultBehaviour.StopRatio, Usage: "chance that a running session's next announce is event=stopped"},
			&cli.Float64Flag{Name: "zipf", Value: 1.0, Usage: "torrent popularity exponent (0 = uniform)"},
			&cli.IntFlag{Name: "numwant", Value: 50, Usage: "numwant of every announce"},
			&cli.DurationFlag{Name: "timeout", Value: 5 * time.Second, Usage: "per request"},
			&cli.BoolFlag{Name: "no-passkey", Usage: "send /announce and /scrape without a passkey segment"},
			&cli.StringFlag{Name: "secret", Usage: "torrent_pass_private_key to derive passkeys with (default: the database's)"},
			&cli.IntFlag{Name: "pid", Usage: "the target's process id, for its RSS (default: found from the listening port)"},
			&cli.Uint64Flag{Name: "seed", Usage: "random seed (default random)"},
			&cli.BoolFlag{Name: "allow-remote", Usage: "allow a target that is not a loopback address (never aim at machines you do not own)"},
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress line every second"},
			&cli.StringFlag{Name: "timeline", Usage: "write a CSV row per second (requests, errors, latency percentiles, RSS) to this file"},
		},
		Action: func(c *cli.Context) error {
			ctx := c.Context
			target := c.String("target")
			if c.Bool("udp") && strings.HasPrefix(target, "http://") {
				target = "udp://" + strings.TrimPrefix(target, "http://")
			}
			tg, err := loadgen.ResolveTarget(ctx, target, c.Bool("allow-remote"))
			if err != nil {
				return err
			}
			dsn := c.String("dsn")
			if dsn == "" {
				dsn = benchLookupEnv(e.environ, "XBT_DSN")
			}
			users, torrents := c.Int("users"), c.Int("torrents")
			if users < 1 || torrents < 1 {
				return fmt.Errorf("--users and --torrents must be at least 1")
			}
			var world *loadgen.World
			if dsn == "" {
				if c.Bool("setup-only") {
					return fmt.Errorf("--setup-only needs a database: --dsn or XBT_DSN")
				}
				world = loadgen.SyntheticWorld(users, torrents, c.String("secret"))
				fmt.Fprintf(e.stderr, "bench: no database: synthetic users and torrents, secret %q\n", world.Secret)
			} else {
				if c.Bool("setup") || c.Bool("setup-only") {
					if _, err := xsql.CreateDatabase(ctx, dsn); err != nil {
						return err
					}
				}
				db, err := xsql.Open(ctx, dsn)
				if err != nil {
					return err
				}
				defer db.Close()
				if c.Bool("setup") || c.Bool("setup-only") {
					st, err := loadgen.Setup(ctx, db, users, torrents)
					if err != nil {
						return err
					}
					fmt.Fprintf(e.stderr, "bench: setup: %d users and %d torrents added in %v\n", st.UsersAdded, st.FilesAdded, st.Took.Round(time.Millisecond))
					if st.SecretCreated {
						fmt.Fprintln(e.stderr, "bench: setup: generated torrent_pass_private_key")
					}
					if c.Bool("setup-only") {
						return nil
					}
				}
				if world, err = loadgen.LoadWorld(ctx, db, users, torrents, c.String("secret")); err != nil {
					return err
				}
				db.Close()
			}
			pid := c.Int("pid")
			if pid == 0 {
				if p, err := loadgen.FindListener(tg.Addr.Port(), tg.UDP); err == nil {
					pid = p
				}
			}
			scrapes := c.Float64("scrape-ratio")
			if tg.UDP && !c.IsSet("scrape-ratio") {
				// Refused scrapes would be counted as errors and their
				// cheap refusals would lower the CPU per answer: none,
				// unless asked for.
				scrapes = 0
			}
			cfg := loadgen.Config{
				Target: tg, World: world,
				Behaviour: loadgen.Behaviour{
					SeederRatio: c.Float64("seeders"), StopRatio: c.Float64("stop-ratio"),
					MinSize: loadgen.DefaultBehaviour.MinSize, MaxSize: loadgen.DefaultBehaviour.MaxSize,
				},
				KeepAlive: c.Bool("keepalive"), NoPasskey: c.Bool("no-passkey"),
				Concurrency: c.Int("concurrency"), Duration: c.Duration("duration"), Requests: c.Int64("requests"), Warmup: c.Duration("warmup"),
				Rate: c.Float64("rate"), Peers: c.Int("peers"), ScrapeRatio: scrapes,
				ZipfS: c.Float64("zipf"), NumWant: c.Int("numwant"), Timeout: c.Duration("timeout"),
				Seed: c.Uint64("seed"), PID: pid,
			}
			if !c.Bool("quiet") {
				cfg.Progress = e.stderr
			}
			if path := c.String("timeline"); path != "" {
				f, err := os.Create(path)
				if err != nil {
					return err
				}
				defer f.Close()
				cfg.Timeline = f
			}
			rep, err := loadgen.Run(ctx, cfg)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			rep.WriteText(e.stdout)
			return nil
		},
	}
}

// benchLookupEnv finds name in an environment list.
func benchLookupEnv(environ []string, name string) string {
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}
