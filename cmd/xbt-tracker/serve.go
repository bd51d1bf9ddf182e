package main

import (
	"context"
	"crypto/rand"
	gosql "database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/xbt-tracker/xbt-tracker/internal/config"
	"github.com/xbt-tracker/xbt-tracker/passkey"
	xsql "github.com/xbt-tracker/xbt-tracker/sql"
	xsync "github.com/xbt-tracker/xbt-tracker/sync"
	"github.com/xbt-tracker/xbt-tracker/tracker"
	"github.com/xbt-tracker/xbt-tracker/tracker/httpfront"
)

func (e *env) serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "run the tracker",
		Flags: config.Flags(),
		Action: func(c *cli.Context) error {
			src, cfg, err := e.operatorConfig(c)
			if err != nil {
				return err
			}
			log, err := e.logger(cfg.LogLevel)
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			return serve(c.Context, log, src, cfg, !e.hasEnv("GOGC"))
		},
	}
}

// serve is the whole life of the tracker process: start-up checks, the
// initial load, the listeners, and a clean stop when ctx ends.
//
// setGC applies gc_percent; false when the operator set GOGC, which wins.
func serve(ctx context.Context, log *zap.Logger, src config.Sources, cfg config.Config, setGC bool) error {
	if cfg.DSN == "" {
		return errors.New("no database: set --dsn or XBT_DSN (e.g. root:@tcp(127.0.0.1:3306)/xbt)")
	}
	// The driver prints connection errors on its own (plain text on
	// stderr); the sync loops already report them once per failure
	// streak, so its lines go to the log at debug level.
	_ = mysql.SetLogger(driverLogger{log.Sugar()})
	db, err := xsql.Open(ctx, cfg.DSN)
	if err != nil {
		return err
	}
	defer closeBounded(db, poolCloseWait)

	rows, err := xsql.LoadConfigRows(ctx, db, xsql.DefaultNames().Config)
	if err != nil {
		return err
	}
	if cfg, err = src.Build(rows); err != nil {
		return err
	}
	if setGC {
		debug.SetGCPercent(cfg.GCPercent)
	}
	schema, warnings, err := xsql.CheckSchema(ctx, db, names(cfg))
	if err != nil {
		return err
	}
	for _, w := range warnings {
		log.Warn(w)
	}
	for _, n := range schema.Notes() {
		log.Info(n)
	}
	if cfg.TorrentPassPrivateKey == "" {
		secret, created, err := xsql.EnsureSecret(ctx, db, xsql.DefaultNames().Config, func() (string, error) {
			return passkey.GenerateSecret(rand.Reader)
		})
		if err != nil {
			return err
		}
		if created {
			log.Info("generated torrent_pass_private_key and stored it in xbt_config; catalogs derive passkeys from it")
		}
		cfg.TorrentPassPrivateKey = secret
	}

	trk := tracker.New(settings(cfg), tracker.Options{Cluster: cfg.Cluster})
	ld := xsql.NewLoader(db, schema)
	if err := ld.ChangeTracking(ctx); err != nil {
		log.Warn(err.Error())
	}
	secret := cfg.TorrentPassPrivateKey
	w := xsql.NewWriter(db, schema, xsql.WriterOptions{Logger: log, Cluster: cfg.Cluster})
	if err := w.Prepare(ctx); err != nil {
		log.Warn("the statistics writer could not read what it needs from the database yet; the first flush tries again", zap.Error(err))
	}
	rec, err := xsql.NewReconciler(db, schema)
	if err != nil {
		return err
	}
	sy := xsync.New(trk, db, ld, w, xsync.Options{
		Reconciler:         rec,
		Cluster:            cfg.Cluster,
		Leeching:           leechingExchange(db, cfg.Cluster),
		WriteInterval:      cfg.WriteDBInterval,
		ReadDBInterval:     cfg.ReadDBInterval,
		ReadConfigInterval: cfg.ReadConfigInterval,
		CleanUpInterval:    cfg.CleanUpInterval,
		ChangePollInterval: cfg.ChangePollInterval,
		LedgerMaxEntries:   cfg.LedgerMaxEntries,
		ReleaseMemory:      debug.FreeOSMemory,
		ReloadConfig: func(ctx context.Context) (tracker.Settings, error) {
			rows, err := xsql.LoadConfigRows(ctx, db, xsql.DefaultNames().Config)
			if err != nil {
				return tracker.Settings{}, err
			}
			c, err := src.Build(rows)
			if err != nil {
				return tracker.Settings{}, err
			}
			if c.TorrentPassPrivateKey == "" {
				c.TorrentPassPrivateKey = secret // generated at start-up; never revert to none
			}
			return settings(c), nil
		},
	}, log)
	if err := sy.Load(ctx); err != nil {
		return err
	}
	// Warm restart: the swarms saved at the last clean stop come back (if
	// state_file holds a file the database agrees with), before the
	// reconciliation, which keeps the rows of what is in memory.
	state := xsync.StateOptions{Path: cfg.StateFile, DB: db, Writer: w}
	sy.RestoreState(ctx, state)
	// No ghost peers: before the first announce is answered, the
	// database's seeders, leechers and active flags agree with memory.
	if _, err := sy.ReconcileAtStart(ctx); err != nil {
		return fmt.Errorf("clearing peers the tracker does not hold from %s and %s: %w", schema.Files, schema.FilesUsers, err)
	}

	// The sync loops keep running while the listeners finish the requests
	// in flight, and stop before the final flush: from then on nothing
	// (no announce, no expiry) records into the ledger behind its back.
	var signalled atomic.Int64
	stopWatch := context.AfterFunc(ctx, func() { signalled.Store(time.Now().UnixNano()) })
	defer stopWatch()
	syncCtx, stopSync := context.WithCancel(context.WithoutCancel(ctx))
	syncDone := make(chan struct{})
	go func() {
		defer close(syncDone)
		_ = sy.Run(syncCtx)
	}()

	started := time.Now()
	status := func() httpfront.StatusInfo {
		st, ts := sy.Status(), trk.Stats()
		return httpfront.StatusInfo{
			Stats: ts, Started: started,
			LastFlush: st.LastFlush, LastReload: st.LastReload,
			FlushErr: st.FlushErr, ReloadErr: st.ReloadErr,
			Extra: []httpfront.StatusRow{
				{Name: "rows pending write-back", Value: int64(st.PendingRows)},
				{Name: "rows quarantined", Value: int64(st.QuarantinedRows)},
				{Name: "seconds since the last successful flush", Value: int64(st.FlushAge / time.Second)},
				{Name: "announces refused credit (max_credit_per_announce)", Value: int64(ts.CreditCapped)},
				{Name: "announces refused: client not in the allow list", Value: int64(ts.ClientNotAllowed)},
				{Name: "announces refused: client in the deny list", Value: int64(ts.ClientDenied)},
				{Name: "torrents with credit factors (up_multi, down_multi)", Value: int64(ts.FactorTorrents)},
				{Name: "users with credit factors (up_multi, down_multi)", Value: int64(ts.FactorUsers)},
				{Name: "freeleech tokens valid", Value: int64(ts.Tokens)},
			},
		}
	}
	lerr := runListeners(ctx, log, trk, cfg, status, sy.Collector())
	stopSync()
	<-syncDone

	// Final write-back: shutdown_timeout counts from the signal; the HTTP
	// shutdown took at most half of it, stopping the sync loops a moment
	// (a COMMIT in flight gets commitGrace), the rest is the flush's, less
	// what closing the pool may take, so that the whole stop, loss report
	// included, ends within shutdown_timeout whatever the database does.
	budget := cfg.ShutdownTimeout - poolCloseWait
	if at := signalled.Load(); at != 0 {
		budget -= time.Since(time.Unix(0, at))
	}
	fctx, cancel := context.WithTimeout(context.Background(), max(budget, time.Second))
	defer cancel()
	ferr := sy.Shutdown(fctx)
	if ferr == nil {
		sy.RetireLeeching(fctx)
	}
	// Only after a complete final write: the swarms to state_file (local
	// disk, within the same deadline), for a warm restart.
	sy.SaveState(fctx, state, ferr)
	return errors.Join(lerr, ferr)
}

// poolCloseWait bounds closing the database pool at exit (closeBounded).
const poolCloseWait = 500 * time.Millisecond

// closeBounded closes the pool but waits at most d: after a stop that gave
// up on a hung database, a COMMIT may still be waiting for its answer (up to
// the driver's read timeout), and the process must not wait for it.
func closeBounded(db io.Closer, d time.Duration) {
	done := make(chan struct{})
	go func() {
		_ = db.Close()
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// driverLogger routes the MySQL driver's messages to the log at debug level.
type driverLogger struct{ l *zap.SugaredLogger }

func (d driverLogger) Print(v ...any) { d.l.Debug(append([]any{"mysql driver: "}, v...)...) }

// settings maps the configuration onto what the engine obeys.
func settings(cfg config.Config) tracker.Settings {
	return tracker.Settings{
		AnnounceInterval:  int(cfg.AnnounceInterval / time.Second),
		AnonymousAnnounce: cfg.AnonymousAnnounce,
		AnonymousScrape:   cfg.AnonymousScrape,
		AutoRegister:      cfg.AutoRegister,
		FullScrape:        cfg.FullScrape,
		GzipScrape:        cfg.GzipScrape,
		ScrapeInterval:    int(cfg.ScrapeInterval / time.Second),
		OfflineMessage:    cfg.OfflineMessage,
		RedirectURL:       cfg.RedirectURL,
		Secret:            cfg.TorrentPassPrivateKey,
		DefaultNumWant:    cfg.DefaultNumwant,
		MaxNumWant:        cfg.MaxNumwant,
		LogAnnounce:       cfg.LogAnnounce,
		LogScrape:         cfg.LogScrape,
		LogAccess:         cfg.LogAccess,

		MaxCreditPerAnnounce: uint64(max(cfg.MaxCreditPerAnnounce, 0)),
		UpMulti:              tracker.Percent(uint32(min(max(cfg.UpMulti, 0), tracker.MaxPercent))),   //nolint:gosec // G115: clamped to 0..MaxPercent
		DownMulti:            tracker.Percent(uint32(min(max(cfg.DownMulti, 0), tracker.MaxPercent))), //nolint:gosec // G115: clamped to 0..MaxPercent
	}
}

// listenTCP opens every address or none: a port already taken is one clear
// error, not a half-started tracker.
func listenTCP(addrs []string) ([]net.Listener, error) {
	var lns []net.Listener
	for _, a := range addrs {
		ln, err := net.Listen(networkFor("tcp", a), a)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, fmt.Errorf("listen tcp %s: %w (is another tracker running? change listen_port / listen_http)", a, err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// leechingExchange is the cluster's torrents_limit exchange, nil alone: a
// typed nil in the interface would look like an exchange to the Syncer.
func leechingExchange(db *gosql.DB, cluster bool) xsync.LeechingExchanger {
	if !cluster {
		return nil
	}
	return xsql.NewLeechingExchange(db)
}
