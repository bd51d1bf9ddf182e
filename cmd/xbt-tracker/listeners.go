package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/xbt-tracker/xbt-tracker/internal/config"
	"github.com/xbt-tracker/xbt-tracker/tracker"
	"github.com/xbt-tracker/xbt-tracker/tracker/httpfront"
	"github.com/xbt-tracker/xbt-tracker/tracker/udpfront"
)

// runListeners serves HTTP (and the admin address, if separate) and UDP
// until ctx ends, then shuts the servers down gracefully: they stop
// accepting and finish the requests in flight within half of
// shutdown_timeout (the other half is the final flush's). extra are more
// metrics for /metrics.
func runListeners(ctx context.Context, log *zap.Logger, trk *tracker.Tracker, cfg config.Config, status func() httpfront.StatusInfo, extra ...prometheus.Collector) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), trk.Collector())
	reg.MustRegister(extra...)

	// UDP (BEP 15 + BEP 41): its counts go to /metrics and /statistics.
	udp := udpfront.New(trk, udpfront.Config{Logger: log})
	reg.MustRegister(udp.Collector())
	if status != nil {
		inner := status
		status = func() httpfront.StatusInfo {
			si := inner()
			u := udp.Stats()
			si.Extra = append(si.Extra,
				httpfront.StatusRow{Name: "udp connect requests", Value: int64(u.Connects)},
				httpfront.StatusRow{Name: "udp announce requests", Value: int64(u.Announces)},
				httpfront.StatusRow{Name: "udp scrape requests", Value: int64(u.Scrapes)},
				httpfront.StatusRow{Name: "udp packets dropped", Value: int64(u.Dropped)})
			return si
		}
	}

	hcfg := httpfront.Config{
		MaxRequestBytes:     cfg.MaxRequestBytes,
		MaxConnections:      cfg.MaxConnections,
		MaxConnectionsPerIP: cfg.MaxConnectionsPerIP,
		GoroutinePerConn:    !cfg.HTTPEventLoops,
		ReadTimeout:         cfg.ReadTimeout,
		IdleTimeout:         cfg.IdleTimeout,
		WriteTimeout:        cfg.ReadTimeout,
		TrustedProxies:      cfg.TrustedProxies,
		Logger:              log,
		Metrics:             reg,
		Status:              status,
	}
	servers := []*httpfront.Server{}
	type bound struct {
		srv *httpfront.Server
		ln  net.Listener
	}
	var all []bound

	lns, err := listenTCP(cfg.HTTPAddrs())
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
		adminLns, err := listenTCP([]string{cfg.AdminListen})
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

	pcs, err := listenUDP(cfg.UDPAddrs())
	if err != nil {
		for _, b := range all {
			b.ln.Close()
		}
		return err
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
	for _, pc := range pcs {
		log.Info("listening", zap.String("udp", pc.LocalAddr().String()))
		g.Go(func() error {
			if err := udp.Serve(pc); err != nil && !errors.Is(err, udpfront.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				return err
			}
			return nil
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout/2)
		defer cancel()
		if err := udp.Shutdown(sctx); err != nil {
			log.Warn("UDP shutdown did not finish in time", zap.Error(err))
		}
		for _, s := range servers {
			if err := s.Shutdown(sctx); err != nil {
				log.Warn("HTTP shutdown did not finish in time; in-flight requests were cut", zap.Error(err))
			}
		}
		return nil
	})
	return g.Wait()
}

// networkFor picks proto ("tcp" or "udp") for a host:port: a host that is
// an IPv4 or IPv6 literal binds that family only, so "0.0.0.0:2710" and
// "[::]:2710" can both be listed; an empty host (":2710") is one dual-stack
// socket.
func networkFor(proto, addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		if ip, err := netip.ParseAddr(host); err == nil {
			if ip.Is4() {
				return proto + "4"
			}
			return proto + "6"
		}
	}
	return proto
}

// listenUDP opens every UDP address or none.
func listenUDP(addrs []string) ([]net.PacketConn, error) {
	var pcs []net.PacketConn
	for _, a := range addrs {
		pc, err := net.ListenPacket(networkFor("udp", a), a)
		if err != nil {
			for _, p := range pcs {
				p.Close()
			}
			return nil, fmt.Errorf("listen udp %s: %w (is another tracker running? change listen_port / listen_udp)", a, err)
		}
		pcs = append(pcs, pc)
	}
	return pcs, nil
}
