package httpfront

import (
	"bufio"
	"bytes"
	"errors"
	"io"

	"github.com/xbt-tracker/xbt-tracker/internal/ascii"
)

// Request is one HTTP request head as ReadRequest understood it. A Request is
// meant to be reused for every request on a connection: its byte slices point
// into buffers it owns, valid until the next ReadRequest into it.
type Request struct {
	Method     string // "GET" or "HEAD"
	Path       []byte // raw (still %-escaped) path, without the query
	Query      []byte // raw query, without '?'; nil when there was none
	ProtoMinor int    // 0 for HTTP/1.0, 1 for HTTP/1.1
	KeepAlive  bool   // the connection may stay open after the answer
	AcceptGzip bool   // Accept-Encoding lists gzip (with a non-zero q)

	// Proxy headers, raw. Repeated headers are joined with ", " as RFC 9110
	// allows, so the rightmost entry stays rightmost.
	XForwardedFor []byte
	XRealIP       []byte

	target []byte // request-target storage: Path and Query point into it
	long   []byte // a line that did not fit in the bufio.Reader's buffer
}

// HeadError is an HTTP request head ReadRequest refused. Status is the HTTP
// status to answer with (400, 405, 431 or 505) before closing the connection.
type HeadError struct {
	Status int
	Reason string
}

func (e *HeadError) Error() string { return e.Reason }

// The refusals ReadRequest returns. They are values, so comparing with ==
// or errors.Is works.
var (
	ErrHeadTooLarge      = &HeadError{431, "request header fields too large"}
	ErrMalformed         = &HeadError{400, "malformed request"}
	ErrMethodNotAllowed  = &HeadError{405, "method not allowed"}
	ErrBodyNotAllowed    = &HeadError{400, "request body not allowed"}
	ErrVersionNotAllowed = &HeadError{505, "HTTP version not supported"}
)

// maxEmptyLines is how many empty lines ReadRequest skips before a request
// line (RFC 9112 §2.2 asks to ignore at least one; some clients send a
// stray CRLF after a request).
const maxEmptyLines = 4

// ReadRequest reads one HTTP/1.0 or HTTP/1.1 request head from br into r.
//
// It returns io.EOF when the connection ended cleanly before the first byte
// of a request, io.ErrUnexpectedEOF when it ended inside a head, the
// reader's error (a timeout, say) as it is, or a *HeadError naming the status
// to answer with: the head is larger than maxBytes bytes (431), is not HTTP/1.x
// (505), uses a method other than GET or HEAD (405), announces a body
// (Content-Length > 0 or any Transfer-Encoding: 400) or is malformed (400).
// After any error the connection must be closed.
//
// Once r's buffers have grown to fit the requests a connection sends,
// ReadRequest allocates nothing.
func ReadRequest(br *bufio.Reader, maxBytes int, r *Request) error {
	r.reset()
	budget := maxBytes
	var line []byte
	var err error
	for i := 0; ; i++ {
		line, err = readLine(br, r, &budget, true)
		if err != nil {
			return err
		}
		if len(line) > 0 {
			break
		}
		if i == maxEmptyLines {
			return ErrMalformed
		}
	}
	if err = r.parseRequestLine(line); err != nil {
		return err
	}
	r.KeepAlive = r.ProtoMinor == 1
	var connClose, connKeepAlive bool
	for {
		line, err = readLine(br, r, &budget, false)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return ErrMalformed // obsolete line folding (RFC 9112 §5.2)
		}
		colon := indexByte(line, ':')
		if colon <= 0 {
			return ErrMalformed
		}
		name := line[:colon]
		for _, c := range name {
			if !isTokenChar(c) {
				return ErrMalformed // includes "Name :" (RFC 9112 §5.1)
			}
		}
		value := trimOWS(line[colon+1:])
		switch {
		case ascii.EqualFold(name, "connection"):
			forEachToken(value, func(tok []byte) {
				if ascii.EqualFold(tok, "close") {
					connClose = true
				} else if ascii.EqualFold(tok, "keep-alive") {
					connKeepAlive = true
				}
			})
		case ascii.EqualFold(name, "accept-encoding"):
			if acceptsGzip(value) {
				r.AcceptGzip = true
			}
		case ascii.EqualFold(name, "x-forwarded-for"):
			r.XForwardedFor = appendJoined(r.XForwardedFor, value)
		case ascii.EqualFold(name, "x-real-ip"):
			r.XRealIP = append(r.XRealIP[:0], value...)
		case ascii.EqualFold(name, "content-length"):
			n, ok := parseDecimal(value)
			if !ok {
				return ErrMalformed
			}
			if n > 0 {
				return ErrBodyNotAllowed
			}
		case ascii.EqualFold(name, "transfer-encoding"):
			return ErrBodyNotAllowed
		}
	}
	if connClose {
		r.KeepAlive = false
	} else if connKeepAlive {
		r.KeepAlive = true
	}
	return nil
}

func (r *Request) reset() {
	r.Method = ""
	r.Path = nil
	r.Query = nil
	r.ProtoMinor = 0
	r.KeepAlive = false
	r.AcceptGzip = false
	r.XForwardedFor = r.XForwardedFor[:0]
	r.XRealIP = r.XRealIP[:0]
	r.target = r.target[:0]
}

// readLine returns the next line without its line ending (CRLF or bare LF).
// The returned slice is valid until the next read from br. budget counts
// down the head bytes still allowed.
func readLine(br *bufio.Reader, r *Request, budget *int, first bool) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		// A line longer than br's buffer: gather it in r.long, but never
		// more than the budget allows.
		r.long = append(r.long[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(r.long) > *budget {
				return nil, ErrHeadTooLarge
			}
			line, err = br.ReadSlice('\n')
			r.long = append(r.long, line...)
		}
		line = r.long
	}
	if len(line) > *budget {
		return nil, ErrHeadTooLarge
	}
	*budget -= len(line)
	if err != nil {
		if err == io.EOF {
			if first && len(line) == 0 {
				return nil, io.EOF
			}
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// parseRequestLine reads "METHOD SP request-target SP HTTP/1.x".
func (r *Request) parseRequestLine(line []byte) error {
	sp1 := indexByte(line, ' ')
	if sp1 <= 0 {
		return ErrMalformed
	}
	method := line[:sp1]
	rest := line[sp1+1:]
	sp2 := lastIndexByte(rest, ' ')
	if sp2 <= 0 {
		return ErrMalformed
	}
	target, proto := rest[:sp2], rest[sp2+1:]
	for _, c := range method {
		if !isTokenChar(c) {
			return ErrMalformed
		}
	}
	for _, c := range target {
		if c <= ' ' || c == 0x7f {
			return ErrMalformed // CTL or a second space inside the target
		}
	}
	if len(proto) != 8 || string(proto[:7]) != "HTTP/1." {
		if len(proto) >= 5 && string(proto[:5]) == "HTTP/" {
			return ErrVersionNotAllowed
		}
		return ErrMalformed
	}
	switch proto[7] {
	case '0':
		r.ProtoMinor = 0
	case '1':
		r.ProtoMinor = 1
	default:
		return ErrVersionNotAllowed
	}
	switch string(method) {
	case "GET":
		r.Method = "GET"
	case "HEAD":
		r.Method = "HEAD"
	default:
		return ErrMethodNotAllowed
	}
	// absolute-form (RFC 9112 §3.2.2): keep only path and query.
	if len(target) > 0 && target[0] != '/' {
		var rest []byte
		switch {
		case ascii.HasPrefixFold(target, "http://"):
			rest = target[7:]
		case ascii.HasPrefixFold(target, "https://"):
			rest = target[8:]
		default:
			return ErrMalformed
		}
		slash := indexByte(rest, '/')
		q := indexByte(rest, '?')
		switch {
		case slash >= 0 && (q < 0 || slash < q):
			target = rest[slash:]
		case q >= 0:
			target = rest[q:] // "http://host?x": empty path
		default:
			target = nil
		}
	}
	if len(target) == 0 {
		target = append(target, '/')
	}
	r.target = append(r.target[:0], target...)
	t := r.target
	if hash := indexByte(t, '#'); hash >= 0 {
		t = t[:hash]
	}
	if q := indexByte(t, '?'); q >= 0 {
		r.Path, r.Query = t[:q], t[q+1:]
	} else {
		r.Path = t
	}
	if len(r.Path) == 0 {
		r.Path = slashPath
	}
	return nil
}

var slashPath = []byte("/")

// acceptsGzip reports whether an Accept-Encoding value lists gzip (or
// x-gzip) without q=0.
func acceptsGzip(v []byte) bool {
	ok := false
	forEachToken(v, func(tok []byte) {
		coding, params := tok, []byte(nil)
		if semi := indexByte(tok, ';'); semi >= 0 {
			coding, params = trimOWS(tok[:semi]), tok[semi+1:]
		}
		if !ascii.EqualFold(coding, "gzip") && !ascii.EqualFold(coding, "x-gzip") {
			return
		}
		if qZero(params) {
			return
		}
		ok = true
	})
	return ok
}

// qZero reports whether a parameter list like " q=0.000" has q equal to 0.
func qZero(params []byte) bool {
	for len(params) > 0 {
		var p []byte
		if semi := indexByte(params, ';'); semi >= 0 {
			p, params = params[:semi], params[semi+1:]
		} else {
			p, params = params, nil
		}
		p = trimOWS(p)
		if len(p) < 2 || (p[0] != 'q' && p[0] != 'Q') || p[1] != '=' {
			continue
		}
		for _, c := range p[2:] {
			if c != '0' && c != '.' {
				return false
			}
		}
		return true
	}
	return false
}

// forEachToken calls f with each trimmed, non-empty element of a
// comma-separated list.
func forEachToken(v []byte, f func([]byte)) {
	for len(v) > 0 {
		var tok []byte
		if comma := indexByte(v, ','); comma >= 0 {
			tok, v = v[:comma], v[comma+1:]
		} else {
			tok, v = v, nil
		}
		if tok = trimOWS(tok); len(tok) > 0 {
			f(tok)
		}
	}
}

func appendJoined(dst, v []byte) []byte {
	if len(v) == 0 {
		return dst
	}
	if len(dst) > 0 {
		dst = append(dst, ", "...)
	}
	return append(dst, v...)
}

// parseDecimal parses a non-empty run of ASCII digits, refusing overflow.
func parseDecimal(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func indexByte(b []byte, c byte) int { return bytes.IndexByte(b, c) }

func lastIndexByte(b []byte, c byte) int { return bytes.LastIndexByte(b, c) }

// isTokenChar reports whether c may appear in an RFC 9110 token.
func isTokenChar(c byte) bool {
	return tokenTable[c]
}

var tokenTable = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// IsHeadError reports whether err is a *HeadError and returns it.
func IsHeadError(err error) (*HeadError, bool) {
	var he *HeadError
	ok := errors.As(err, &he)
	return he, ok
}
