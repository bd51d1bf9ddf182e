// Package httpfront is xbt-tracker's HTTP frontend: a hand-written HTTP/1.x
// server (no net/http on the hot path) that parses announce and scrape
// requests into tracker.Announce and tracker.ScrapeRequest, calls the engine
// and writes XBT-compatible bencoded answers. On Linux, TCP listeners are
// served by epoll event loops (eventloop_linux.go); otherwise, or with
// Config.GoroutinePerConn, each connection gets its own goroutine
// (conn.go). Both share the request handling (handler.go).
//
// The pieces are usable on their own: ReadRequest reads a request head,
// ParseAnnounce/ParseAnnounceExtras and ParseScrape decode query strings,
// ClientAddr applies the trusted-proxy rule, and AppendAnnounce,
// AppendScrape and AppendFailure encode answers. None of them allocates once
// its buffers are warm, and neither does a Server answering a warm announce.
//
// Decisions a client can notice:
//   - '+' in a query value is a space (HTML forms, XBT, opentracker,
//     net/url); every other byte except '%XX' is taken literally.
//   - A repeated parameter: the first one wins, as for nginx's $arg_x, so a
//     consistent-hash balancer and the tracker agree on the info_hash.
//   - port=0 is accepted (XBT does; the announce is still accounted);
//     port, uploaded, downloaded and left are required; an unknown event is
//     refused ("invalid event").
//   - Failures, including unparsable announces, are HTTP 200 with a
//     bencoded "failure reason" (XBT); only a malformed HTTP head gets a 4xx
//     or 505 and a closed connection.
//   - A connection from a denied address is closed at accept without an
//     answer (XBT), and so is a keep-alive connection whose address is
//     denied later; an address learned from a trusted proxy's headers gets
//     "access denied, host banned".
//   - A full scrape is gzipped when gzip_scrape is on and the client accepts
//     gzip; other answers never are.
//   - Only GET is served. HEAD gets the 405 every other method gets (the
//     parser reads it; the server refuses it), so a HEAD of an announce URL
//     changes nothing.
//   - Over MaxConnectionsPerIP (trusted proxies exempt) a new connection is
//     closed at once; at MaxConnections the connections idle longest are
//     closed to make room, and a new one only when none is idle.
package httpfront
