// Routing a request and the announce and scrape handlers.

package httpfront

import (
	"net/netip"
	"time"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// serveRequest reads one request head from b.br and appends the answer to
// b.out. keep reports whether the connection may serve another request;
// closeNow that it must be closed without writing anything (a read error, a
// denied socket address). While the tracker's log_access is on, every
// request is logged (see logAccess); otherwise nothing here allocates.
func (s *Server) serveRequest(c *conn, b *connBufs) (keep, closeNow bool) {
	b.status, b.failure, b.errText, b.client = 0, "", "", netip.Addr{}
	if !s.trk.Settings().LogAccess {
		return s.handleRequest(c, b)
	}
	start := time.Now()
	before := len(b.out)
	keep, closeNow = s.handleRequest(c, b)
	s.logAccess(c, b, time.Since(start), len(b.out)-before+len(b.tail))
	return keep, closeNow
}

// handleRequest is serveRequest without the access log.
func (s *Server) handleRequest(c *conn, b *connBufs) (keep, closeNow bool) {
	req := &b.req
	if err := ReadRequest(b.br, s.cfg.MaxRequestBytes, req); err != nil {
		he, ok := IsHeadError(err)
		if !ok {
			return false, true // EOF, timeout, reset: nothing to answer
		}
		req.ProtoMinor = 1 // the version may not have been read
		s.badHead(b, he, false)
		return false, false
	}
	if req.Method != "GET" {
		// HEAD would run an announce (a changed swarm, statistics to
		// write) for an answer never sent: it gets the 405 every other
		// method gets, on every path, without the body as HEAD wants.
		s.badHead(b, ErrMethodNotAllowed, true)
		return false, false
	}
	path := req.Path
	if !s.cfg.ServeAdmin {
		if passkey, k, ok := trackerPath(path); ok {
			var res result
			var gz bool
			switch k {
			case kindAnnounce:
				res, closeNow = s.announce(c, b, passkey)
			default:
				res, gz, closeNow = s.scrape(c, b, passkey)
			}
			if closeNow {
				return false, true
			}
			s.counters.request(k, res)
			keep = s.keepAlive(req)
			s.respond(b, 200, "", keep, gz, false)
			return keep, false
		}
	}
	switch string(path) {
	case "/statistics":
		if s.cfg.Status != nil {
			s.counters.request(kindStatistics, resultOK)
			b.body = s.appendStatistics(b.body[:0])
			keep = s.keepAlive(req)
			s.respond(b, 200, "text/html; charset=utf-8", keep, false, false)
			return keep, false
		}
	case "/metrics":
		if s.cfg.Metrics != nil {
			s.counters.request(kindMetrics, resultOK)
			var ct string
			b.body, ct = s.appendMetrics(b.body[:0])
			keep = s.keepAlive(req)
			s.respond(b, 200, ct, keep, false, false)
			return keep, false
		}
	}
	s.counters.request(kindOther, resultOK)
	keep = s.keepAlive(req)
	if !s.cfg.ServeAdmin {
		if u := s.trk.Settings().RedirectURL; u != "" {
			b.body = b.body[:0]
			b.out = s.appendRedirect(b.out, req, u, keep)
			b.status = 302
			return keep, false
		}
	}
	b.body = append(b.body[:0], "not found\n"...)
	s.respond(b, 404, "", keep, false, false)
	return keep, false
}

// badHead answers a refused request head (he's status, its reason as the
// text body; none for a HEAD request) and the connection closes after it.
func (s *Server) badHead(b *connBufs, he *HeadError, head bool) {
	s.counters.request(kindOther, resultBadRequest)
	b.body = append(b.body[:0], he.Reason...)
	b.body = append(b.body, '\n')
	b.errText = he.Reason
	s.respond(b, he.Status, "", false, false, head)
}

// keepAlive decides, just before an answer's head is written, whether the
// connection stays open: the client wants it and no Shutdown has begun.
func (s *Server) keepAlive(req *Request) bool {
	return req.KeepAlive && !s.shutting.Load()
}

// trackerPath recognises /announce, /scrape, /<passkey>/announce and
// /<passkey>/scrape. The passkey is whatever 32 bytes sit there; the engine
// judges it.
func trackerPath(p []byte) (passkey []byte, k kind, ok bool) {
	switch string(p) {
	case "/announce":
		return nil, kindAnnounce, true
	case "/scrape":
		return nil, kindScrape, true
	}
	if len(p) < 1+32+1 || p[0] != '/' || p[33] != '/' {
		return nil, 0, false
	}
	switch string(p[33:]) {
	case "/announce":
		return p[1:33], kindAnnounce, true
	case "/scrape":
		return p[1:33], kindScrape, true
	}
	return nil, 0, false
}

// announce answers an announce into b.body.
func (s *Server) announce(c *conn, b *connBufs, passkey []byte) (res result, closeNow bool) {
	if err := ParseAnnounceExtras(b.req.Query, &b.ann, &b.ex); err != nil {
		b.failure = err.Error()
		b.body = AppendFailure(b.body[:0], b.failure)
		return resultBadRequest, false
	}
	addr, proxied := ClientAddr(c.remote, s.trusted, b.req.XForwardedFor, b.req.XRealIP, b.ex.IP)
	b.ann.Passkey = passkey
	b.ann.Addr = addr
	s.trk.Announce(&b.ann, &b.ares) // checks the deny list first
	b.ann.Passkey = nil
	b.failure = string(b.ares.Failure)
	if proxied {
		b.client = addr
	}
	if b.ares.Failure == tracker.ErrHostDenied && !proxied {
		return 0, true // the socket's address was banned since accept: no answer, as at accept
	}
	b.body = AppendAnnounce(b.body[:0], &b.ares, b.ex.Compact, b.ex.NoPeerID)
	if b.ares.Failure != "" {
		return resultFailure, false
	}
	return resultOK, false
}

// scrape answers a scrape into b.body, gzipped when that is wanted.
func (s *Server) scrape(c *conn, b *connBufs, passkey []byte) (res result, gz, closeNow bool) {
	var err error
	b.sreq.InfoHashes, err = ParseScrape(b.req.Query, b.sreq.InfoHashes[:0])
	if err != nil {
		b.failure = err.Error()
		b.body = AppendFailure(b.body[:0], b.failure)
		return resultBadRequest, false, false
	}
	addr, proxied := ClientAddr(c.remote, s.trusted, b.req.XForwardedFor, b.req.XRealIP, netip.Addr{})
	b.sreq.Passkey = passkey
	b.sreq.Addr = addr
	s.trk.Scrape(&b.sreq, &b.sres) // checks the deny list first
	b.sreq.Passkey = nil
	b.failure = string(b.sres.Failure)
	if proxied {
		b.client = addr
	}
	if b.sres.Failure == tracker.ErrHostDenied && !proxied {
		return 0, false, true
	}
	b.body = AppendScrape(b.body[:0], &b.sres)
	if b.sres.Failure != "" {
		return resultFailure, false, false
	}
	if b.sres.Full && b.req.AcceptGzip && s.trk.Settings().GzipScrape {
		b.body = gzipInPlace(b.body)
		gz = true
	}
	return resultOK, gz, false
}
