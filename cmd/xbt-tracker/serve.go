package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/xbt-tracker/xbt-tracker/internal/config"
	"github.com/xbt-tracker/xbt-tracker/passkey"
	xsql "github.com/xbt-tracker/xbt-tracker/sql"
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
			return serve(c.Context, log, src, cfg)
		},
	}
}

// serve is the whole life of the tracker process: start-up checks, the
// initial load, the listeners, and a clean stop when ctx ends.
func serve(ctx context.Context, log *zap.Logger, src config.Sources, cfg config.Config) error {
	if cfg.DSN == "" {
		return errors.New("no database: set --dsn or XBT_DSN (e.g. root:@tcp(127.0.0.1:3306)/xbt)")
	}
	db, err := xsql.Open(ctx, cfg.DSN)
	if err != nil {
		return err
	}
	defer db.Close()

	rows, err := xsql.LoadConfigRows(ctx, db, xsql.DefaultNames().Config)
	if err != nil {
		return err
	}
	if cfg, err = src.Build(rows); err != nil {
		return err
	}
	schema, warnings, err := xsql.CheckSchema(ctx, db, names(cfg))
	if err != nil {
		return err
	}
	for _, w := range warnings {
		log.Warn(w)
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

	trk := tracker.New(settings(cfg), tracker.Options{})
	start := time.Now()
	users, err := xsql.LoadUsers(ctx, db, schema)
	if err != nil {
		return err
	}
	torrents, err := xsql.LoadTorrents(ctx, db, schema)
	if err != nil {
		return err
	}
	trk.ReplaceUsers(users)
	trk.ReplaceTorrents(torrents)
	log.Info("loaded users and torrents", zap.Int("users", len(users)), zap.Int("torrents", len(torrents)), zap.Duration("took", time.Since(start)))

	started := time.Now()
	status := func() httpfront.StatusInfo {
		return httpfront.StatusInfo{Stats: trk.Stats(), Started: started}
	}
	return runListeners(ctx, log, trk, cfg, status)
}

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
	}
}

// listen opens every address or none: a port already taken is one clear
// error, not a half-started tracker.
func listen(network string, addrs []string) ([]net.Listener, error) {
	var lns []net.Listener
	for _, a := range addrs {
		ln, err := net.Listen(network, a)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, fmt.Errorf("listen %s %s: %w (is another tracker running? change listen_port / listen_http)", network, a, err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}
