package main

import (
	"context"
	"errors"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/xbt-tracker/xbt-tracker/internal/config"
	"github.com/xbt-tracker/xbt-tracker/tracker"
	"github.com/xbt-tracker/xbt-tracker/tracker/httpfront"
)

// runListeners serves HTTP (and the admin address, if separate) until ctx
// ends, then shuts the servers down gracefully: they stop accepting and
// finish the requests in flight within half of shutdown_timeout (the other
// half is the final flush's). extra are more metrics for /metrics.
func runListeners(ctx context.Context, log *zap.Logger, trk *tracker.Tracker, cfg config.Config, status func() httpfront.StatusInfo, extra ...prometheus.Collector) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), trk.Collector())
	reg.MustRegister(extra...)

	hcfg := httpfront.Config{
		MaxRequestBytes: cfg.MaxRequestBytes,
		MaxConnections:  cfg.MaxConnections,
		ReadTimeout:     cfg.ReadTimeout,
		IdleTimeout:     cfg.IdleTimeout,
		WriteTimeout:    cfg.ReadTimeout,
		TrustedProxies:  cfg.TrustedProxies,
		Logger:          log,
		Metrics:         reg,
		Status:          status,
	}
	servers := []*httpfront.Server{}
	type bound struct {
		srv *httpfront.Server
		ln  net.Listener
	}
	var all []bound

	lns, err := listen("tcp", cfg.HTTPAddrs())
	if err != nil {
		return err
	}
	trackerCfg := hcfg
	if cfg.AdminListen != "" {
		trackerCfg.Metrics, trackerCfg.Status = nil, nil
	}
	front := httpfront.New(trk, trackerCfg)
	reg.MustRegister(front.Collector())
	servers = append(servers, front)
	for _, ln := range lns {
		all = append(all, bound{front, ln})
	}
	if cfg.AdminListen != "" {
		adminLns, err := listen("tcp", []string{cfg.AdminListen})
		if err != nil {
			for _, ln := range lns {
				ln.Close()
			}
			return err
		}
		acfg := hcfg
		acfg.ServeAdmin = true
		admin := httpfront.New(trk, acfg)
		servers = append(servers, admin)
		all = append(all, bound{admin, adminLns[0]})
	}

	g, gctx := errgroup.WithContext(ctx)
	for _, b := range all {
		log.Info("listening", zap.String("http", b.ln.Addr().String()), zap.Bool("admin_only", b.srv != front))
		g.Go(func() error {
			if err := b.srv.Serve(b.ln); err != nil && !errors.Is(err, httpfront.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				return err
			}
			return nil
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout/2)
		defer cancel()
		for _, s := range servers {
			if err := s.Shutdown(sctx); err != nil {
				log.Warn("HTTP shutdown did not finish in time; in-flight requests were cut", zap.Error(err))
			}
		}
		return nil
	})
	return g.Wait()
}
