package loadgen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/xbt-tracker/xbt-tracker/internal/ascii"
)

// httpConn is a minimal HTTP/1.1 client on one net.Conn: it writes a
// prepared request and reads the status line, the Content-Length and the
// body, nothing else. net/http's client costs several times more CPU per
// request, which on a small machine would be taken from the server under
// test.
type httpConn struct {
	addr      string
	keepAlive bool
	timeout   time.Duration
	c         net.Conn
	br        *bufio.Reader
	body      []byte
	dialer    net.Dialer
}

func newHTTPConn(addr string, keepAlive bool, timeout time.Duration) *httpConn {
	return &httpConn{addr: addr, keepAlive: keepAlive, timeout: timeout, body: make([]byte, 0, 4096),
		dialer: net.Dialer{Timeout: timeout}}
}

func (h *httpConn) close() {
	if h.c != nil {
		h.c.Close()
		h.c = nil
	}
}

// errKind is a request's failure, named for the report.
type errKind string

const (
	errConnect errKind = "connect"
	errTimeout errKind = "timeout"
	errReset   errKind = "connection reset"
	errClosed  errKind = "connection closed early"
	errIO      errKind = "i/o"
	errProto   errKind = "malformed response"
)

// reqError is a failed round trip.
type reqError struct {
	kind errKind
	err  error
}

func (e *reqError) Error() string { return string(e.kind) + ": " + e.err.Error() }

func classify(kind errKind, err error) *reqError {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
		kind = errTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		kind = "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		if kind != errConnect {
			kind = errReset
		}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		kind = errClosed
	}
	return &reqError{kind, err}
}

// roundTrip sends req and returns the status and body (valid until the next
// call). Without keep-alive, or when the server says Connection: close, the
// connection is closed after the answer.
func (h *httpConn) roundTrip(req []byte) (int, []byte, error) {
	if h.c == nil {
		c, err := h.dialer.Dial("tcp", h.addr)
		if err != nil {
			return 0, nil, classify(errConnect, err)
		}
		h.c = c
		if h.br == nil {
			h.br = bufio.NewReaderSize(c, 4096)
		} else {
			h.br.Reset(c)
		}
	}
	if err := h.c.SetDeadline(time.Now().Add(h.timeout)); err != nil {
		h.close()
		return 0, nil, classify(errIO, err)
	}
	if _, err := h.c.Write(req); err != nil {
		h.close()
		return 0, nil, classify(errIO, err)
	}
	status, body, closeConn, err := readResponse(h.br, h.body[:0])
	h.body = body[:0]
	if err != nil {
		h.close()
		return 0, nil, err
	}
	if closeConn || !h.keepAlive {
		h.close()
	}
	return status, body, nil
}

// readResponse reads one HTTP/1.x response into body (appended) and
// reports whether the server will close the connection. A response without
// Content-Length is read to the end of the connection.
func readResponse(br *bufio.Reader, body []byte) (status int, out []byte, closeConn bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, body, true, classify(errIO, err)
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, body, true, &reqError{errProto, fmt.Errorf("status line %q", trimCRLF(line))}
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, body, true, &reqError{errProto, fmt.Errorf("status line %q", trimCRLF(line))}
	}
	closeConn = line[7] == '0' // HTTP/1.0 closes unless told otherwise
	length := -1
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return 0, body, true, classify(errIO, err)
		}
		line = trimCRLF(line)
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return 0, body, true, &reqError{errProto, fmt.Errorf("header line %q", line)}
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		switch {
		case ascii.EqualFold(name, "content-length"):
			n, err := strconv.Atoi(string(value))
			if err != nil || n < 0 {
				return 0, body, true, &reqError{errProto, fmt.Errorf("Content-Length %q", value)}
			}
			length = n
		case ascii.EqualFold(name, "connection"):
			if ascii.EqualFold(value, "close") {
				closeConn = true
			} else if ascii.EqualFold(value, "keep-alive") {
				closeConn = false
			}
		}
	}
	if length < 0 {
		body, err = readAllInto(br, body)
		return status, body, true, err
	}
	if cap(body)-len(body) < length {
		body = append(body, make([]byte, length)...)[:len(body)]
	}
	start := len(body)
	body = body[:start+length]
	if _, err := io.ReadFull(br, body[start:]); err != nil {
		return 0, body[:start], true, classify(errIO, err)
	}
	return status, body, closeConn, nil
}

func readAllInto(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, classify(errIO, err)
		}
	}
}

func trimCRLF(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// Outcome is how a tracker answered, as the report counts it.
type Outcome struct {
	OK     bool
	Kind   string // for !OK: "http 404", "failure reason: ...", "bad body"
	Failed bool   // the tracker answered with a failure reason
}

// CheckAnnounceBody judges an announce answer: a bencoded dictionary whose
// first key is "complete" is a success; a "failure reason" is counted by its
// text.
func CheckAnnounceBody(body []byte) Outcome {
	if bytes.HasPrefix(body, []byte("d8:complete")) {
		return Outcome{OK: true}
	}
	return checkFailure(body)
}

// CheckScrapeBody judges a scrape answer: success starts with "d5:files".
func CheckScrapeBody(body []byte) Outcome {
	if bytes.HasPrefix(body, []byte("d5:files")) {
		return Outcome{OK: true}
	}
	return checkFailure(body)
}

func checkFailure(body []byte) Outcome {
	if r, ok := FailureReason(body); ok {
		return Outcome{Kind: "failure reason: " + r, Failed: true}
	}
	return Outcome{Kind: "bad body"}
}

// FailureReason extracts the "failure reason" string of a bencoded answer.
func FailureReason(body []byte) (string, bool) {
	const key = "14:failure reason"
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return "", false
	}
	rest := body[i+len(key):]
	colon := bytes.IndexByte(rest, ':')
	if colon <= 0 {
		return "", false
	}
	n, err := strconv.Atoi(string(rest[:colon]))
	if err != nil || n < 0 || colon+1+n > len(rest) {
		return "", false
	}
	return string(rest[colon+1 : colon+1+n]), true
}

// requestBuilder writes announce and scrape requests into a reused buffer.
type requestBuilder struct {
	host      string
	base      string // path prefix
	noPasskey bool
	keepAlive bool
	numWant   int
	buf       []byte
}

const unreserved = "-._~"

// appendEscaped percent-encodes b as a client does in a query value:
// alphanumerics and -._~ as they are, anything else as %XX.
func appendEscaped(dst, b []byte) []byte {
	const hexUpper = "0123456789ABCDEF"
	for _, c := range b {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || bytes.IndexByte([]byte(unreserved), c) >= 0 {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', hexUpper[c>>4], hexUpper[c&15])
	}
	return dst
}

func (rb *requestBuilder) start(p *simPeer, what string) []byte {
	b := append(rb.buf[:0], "GET "...)
	b = append(b, rb.base...)
	if !rb.noPasskey {
		b = append(b, '/')
		b = append(b, p.pk[:]...)
	}
	b = append(b, '/')
	b = append(b, what...)
	return b
}

func (rb *requestBuilder) finish(b []byte) []byte {
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, rb.host...)
	b = append(b, "\r\nUser-Agent: xbt-bench/1.0\r\nAccept-Encoding: gzip\r\n"...)
	if !rb.keepAlive {
		b = append(b, "Connection: close\r\n"...)
	}
	b = append(b, "\r\n"...)
	rb.buf = b
	return b
}

// announce builds the announce of p with event ev, the query as
// qBittorrent/libtorrent writes it.
func (rb *requestBuilder) announce(p *simPeer, ih *[20]byte, ev Event) []byte {
	b := rb.start(p, "announce")
	b = append(b, "?info_hash="...)
	b = appendEscaped(b, ih[:])
	b = append(b, "&peer_id="...)
	b = appendEscaped(b, p.id[:])
	b = append(b, "&port="...)
	b = strconv.AppendUint(b, uint64(p.port), 10)
	b = append(b, "&uploaded="...)
	b = strconv.AppendUint(b, p.up, 10)
	b = append(b, "&downloaded="...)
	b = strconv.AppendUint(b, p.down, 10)
	b = append(b, "&left="...)
	b = strconv.AppendUint(b, p.left, 10)
	b = append(b, "&corrupt=0&key="...)
	b = strconv.AppendUint(b, uint64(p.port)*2654435761%0xffffffff, 16)
	if ev != EventNone {
		b = append(b, "&event="...)
		b = append(b, ev.String()...)
	}
	b = append(b, "&numwant="...)
	b = strconv.AppendInt(b, int64(rb.numWant), 10)
	b = append(b, "&compact=1&no_peer_id=1&supportcrypto=1&redundant=0"...)
	return rb.finish(b)
}

// scrape builds a single-hash scrape with p's passkey.
func (rb *requestBuilder) scrape(p *simPeer, ih *[20]byte) []byte {
	b := rb.start(p, "scrape")
	b = append(b, "?info_hash="...)
	b = appendEscaped(b, ih[:])
	return rb.finish(b)
}
