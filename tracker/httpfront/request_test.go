package httpfront

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadRequest(t *testing.T) {
	type want struct {
		method     string
		path       string
		query      *string // nil: no '?'
		minor      int
		keepAlive  bool
		gzip       bool
		xff, xreal string
	}
	str := func(s string) *string { return &s }
	long := strings.Repeat("x", 300)
	tests := []struct {
		name string
		raw  string
		max  int // 0: DefaultMaxRequestBytes
		err  error
		want want
	}{
		{name: "HTTP/1.1 keep-alive by default", raw: "GET /announce?a=1 HTTP/1.1\r\nHost: x\r\n\r\n",
			want: want{method: "GET", path: "/announce", query: str("a=1"), minor: 1, keepAlive: true}},
		{name: "bare LF", raw: "GET /a?b HTTP/1.1\nHost: x\n\n",
			want: want{method: "GET", path: "/a", query: str("b"), minor: 1, keepAlive: true}},
		{name: "mixed line endings", raw: "GET /a HTTP/1.1\r\nHost: x\n\r\n",
			want: want{method: "GET", path: "/a", minor: 1, keepAlive: true}},
		{name: "no headers", raw: "GET / HTTP/1.1\r\n\r\n",
			want: want{method: "GET", path: "/", minor: 1, keepAlive: true}},
		{name: "HEAD", raw: "HEAD /scrape HTTP/1.1\r\n\r\n",
			want: want{method: "HEAD", path: "/scrape", minor: 1, keepAlive: true}},
		{name: "HTTP/1.1 Connection: close", raw: "GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
			want: want{method: "GET", path: "/", minor: 1}},
		{name: "HTTP/1.1 close wins in a list", raw: "GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n",
			want: want{method: "GET", path: "/", minor: 1}},
		{name: "HTTP/1.1 close in a second header", raw: "GET / HTTP/1.1\r\nConnection: Upgrade\r\nconnection: CLOSE\r\n\r\n",
			want: want{method: "GET", path: "/", minor: 1}},
		{name: "HTTP/1.0 closes by default", raw: "GET / HTTP/1.0\r\n\r\n",
			want: want{method: "GET", path: "/", minor: 0}},
		{name: "HTTP/1.0 keep-alive", raw: "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
			want: want{method: "GET", path: "/", minor: 0, keepAlive: true}},
		{name: "header names any case, values trimmed", raw: "GET / HTTP/1.1\r\nX-FORWARDED-FOR:  1.2.3.4 \t\r\nx-real-ip:5.6.7.8\r\nACCEPT-ENCODING: GZIP\r\n\r\n",
			want: want{method: "GET", path: "/", minor: 1, keepAlive: true, gzip: true, xff: "1.2.3.4", xreal: "5.6.7.8"}},
		{name: "repeated X-Forwarded-For joined", raw: "GET / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1, 2.2.2.2\r\nX-Forwarded-For: 3.3.3.3\r\n\r\n",
			want: want{method: "GET", path: "/", minor: 1, keepAlive: true, xff: "1.1.1.1, 2.2.2.2, 3.3.3.3"}},
		{name: "Transmission Accept-Encoding", raw: "GET / HTTP/1.1\r\nAccept-Encoding: deflate, gzip, br, zstd\r\n\r\n",
			want: want{method: "GET", path: "/", minor: 1, keepAlive: true, gzip: true}},
		{name: "gzip with q", raw: "GET / HTTP/1.1\r\nAccept-Encoding: br;q=1.0, gzip;q=0.5\r\n\r\n",
			want: want{method: "GET", path: "/", minor: 1, keepAlive: true, gzip: true}},
		{name: "gzip q=0 refused", raw: "GET / HTTP/1.1\r\nAccept-Encoding: gzip;q=0.000, br\r\n\r\n",
			want: want{method: "GET", path: "/", minor: 1, keepAlive: true}},
		{name: "x-gzip", raw: "GET / HTTP/1.1\r\nAccept-Encoding: x-gzip\r\n\r\n",
			want: want{method: "GET", path: "/", minor: 1, keepAlive: true, gzip: true}},
		{name: "gzip only as a substring", raw: "GET / HTTP/1.1\r\nAccept-Encoding: gzipped, identity\r\nX-Gzip: gzip\r\n\r\n",
			want: want{method: "GET", path: "/", minor: 1, keepAlive: true}},
		{name: "Content-Length: 0 is no body", raw: "GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
			want: want{method: "GET", path: "/", minor: 1, keepAlive: true}},
		{name: "empty query kept", raw: "GET /announce? HTTP/1.1\r\n\r\n",
			want: want{method: "GET", path: "/announce", query: str(""), minor: 1, keepAlive: true}},
		{name: "fragment dropped", raw: "GET /announce?a=1#frag HTTP/1.1\r\n\r\n",
			want: want{method: "GET", path: "/announce", query: str("a=1"), minor: 1, keepAlive: true}},
		{name: "absolute-form", raw: "GET http://tracker.example:2710/0123/announce?a=b HTTP/1.1\r\n\r\n",
			want: want{method: "GET", path: "/0123/announce", query: str("a=b"), minor: 1, keepAlive: true}},
		{name: "absolute-form without path", raw: "GET HTTPS://tracker.example?a HTTP/1.1\r\n\r\n",
			want: want{method: "GET", path: "/", query: str("a"), minor: 1, keepAlive: true}},
		{name: "leading empty lines skipped", raw: "\r\n\nGET / HTTP/1.1\r\n\r\n",
			want: want{method: "GET", path: "/", minor: 1, keepAlive: true}},
		{name: "unknown headers ignored", raw: "GET / HTTP/1.1\r\nWant-Digest: SHA-512;q=1, SHA-256;q=1, SHA;q=0.1\r\nX-Empty:\r\n\r\n",
			want: want{method: "GET", path: "/", minor: 1, keepAlive: true}},
		{name: "line longer than the bufio buffer", raw: "GET /" + long + " HTTP/1.1\r\nX-Long: " + long + "\r\n\r\n",
			want: want{method: "GET", path: "/" + long, minor: 1, keepAlive: true}},
		{name: "exactly max", raw: "GET / HTTP/1.1\r\n\r\n", max: len("GET / HTTP/1.1\r\n\r\n"),
			want: want{method: "GET", path: "/", minor: 1, keepAlive: true}},

		{name: "one byte over max", raw: "GET / HTTP/1.1\r\n\r\n", max: len("GET / HTTP/1.1\r\n\r\n") - 1, err: ErrHeadTooLarge},
		{name: "long request line over max", raw: "GET /" + long + " HTTP/1.1\r\n\r\n", max: 100, err: ErrHeadTooLarge},
		{name: "endless header over max", raw: "GET / HTTP/1.1\r\nX: " + strings.Repeat(long, 10), max: 1000, err: ErrHeadTooLarge},
		{name: "many headers over max", raw: "GET / HTTP/1.1\r\n" + strings.Repeat("X-A: b\r\n", 200) + "\r\n", max: 1000, err: ErrHeadTooLarge},
		{name: "POST", raw: "POST /announce HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", err: ErrMethodNotAllowed},
		{name: "PUT", raw: "PUT / HTTP/1.1\r\n\r\n", err: ErrMethodNotAllowed},
		{name: "methods are case-sensitive", raw: "get / HTTP/1.1\r\n\r\n", err: ErrMethodNotAllowed},
		{name: "body by Content-Length", raw: "GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", err: ErrBodyNotAllowed},
		{name: "bad Content-Length", raw: "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", err: ErrMalformed},
		{name: "chunked body", raw: "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", err: ErrBodyNotAllowed},
		{name: "HTTP/2.0", raw: "GET / HTTP/2.0\r\n\r\n", err: ErrVersionNotAllowed},
		{name: "HTTP/1.2", raw: "GET / HTTP/1.2\r\n\r\n", err: ErrVersionNotAllowed},
		{name: "HTTP/0.9 style", raw: "GET /\r\n\r\n", err: ErrMalformed},
		{name: "not HTTP", raw: "GET / FTP/1.1\r\n\r\n", err: ErrMalformed},
		{name: "TLS hello", raw: "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", err: ErrMalformed},
		{name: "space in target", raw: "GET /a b HTTP/1.1\r\n\r\n", err: ErrMalformed},
		{name: "relative target", raw: "GET announce HTTP/1.1\r\n\r\n", err: ErrMalformed},
		{name: "header without colon", raw: "GET / HTTP/1.1\r\nHost\r\n\r\n", err: ErrMalformed},
		{name: "space before colon", raw: "GET / HTTP/1.1\r\nHost : x\r\n\r\n", err: ErrMalformed},
		{name: "empty header name", raw: "GET / HTTP/1.1\r\n: x\r\n\r\n", err: ErrMalformed},
		{name: "obsolete line folding", raw: "GET / HTTP/1.1\r\nX-A: b\r\n c\r\n\r\n", err: ErrMalformed},
		{name: "too many empty lines", raw: "\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n", err: ErrMalformed},

		{name: "EOF before a request", raw: "", err: io.EOF},
		{name: "EOF after empty lines", raw: "\r\n", err: io.EOF},
		{name: "EOF in request line", raw: "GET / HT", err: io.ErrUnexpectedEOF},
		{name: "EOF in headers", raw: "GET / HTTP/1.1\r\nHost: x\r\n", err: io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			maxBytes := tt.max
			if maxBytes == 0 {
				maxBytes = DefaultMaxRequestBytes
			}
			// A small reader buffer exercises the long-line path.
			br := bufio.NewReaderSize(strings.NewReader(tt.raw), 64)
			var r Request
			r.XForwardedFor = []byte("stale") // reset on every read
			err := ReadRequest(br, maxBytes, &r)
			if err != tt.err {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				if he, ok := IsHeadError(err); ok != errors.As(err, new(*HeadError)) || (ok && he.Status == 0) {
					t.Errorf("IsHeadError(%v) = %v, %v", err, he, ok)
				}
				return
			}
			w := tt.want
			var gotQuery *string
			if r.Query != nil {
				gotQuery = str(string(r.Query))
			}
			if r.Method != w.method || string(r.Path) != w.path || r.ProtoMinor != w.minor ||
				r.KeepAlive != w.keepAlive || r.AcceptGzip != w.gzip ||
				string(r.XForwardedFor) != w.xff || string(r.XRealIP) != w.xreal ||
				(gotQuery == nil) != (w.query == nil) || (gotQuery != nil && *gotQuery != *w.query) {
				t.Errorf("got method=%q path=%q query=%v minor=%d keep=%v gzip=%v xff=%q xreal=%q\nwant %+v (query %v)",
					r.Method, r.Path, fmtPtr(gotQuery), r.ProtoMinor, r.KeepAlive, r.AcceptGzip, r.XForwardedFor, r.XRealIP, w, fmtPtr(w.query))
			}
		})
	}
}

func fmtPtr(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return "\"" + *s + "\""
}

func TestHeadErrorStatus(t *testing.T) {
	for err, status := range map[*HeadError]int{
		ErrHeadTooLarge: 431, ErrMalformed: 400, ErrMethodNotAllowed: 405, ErrBodyNotAllowed: 400, ErrVersionNotAllowed: 505,
	} {
		if err.Status != status || err.Error() == "" {
			t.Errorf("%v: %d", err, err.Status)
		}
	}
}

// Pipelined requests come out one at a time, and the Request is reused.
func TestReadRequestPipelined(t *testing.T) {
	raw := "GET /a?1 HTTP/1.1\r\nX-Real-IP: 1.1.1.1\r\n\r\n" +
		"HEAD /b HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\n" +
		"GET /c?3 HTTP/1.0\r\n\r\n"
	br := bufio.NewReader(strings.NewReader(raw))
	var r Request
	want := []struct {
		method, path, query, xreal string
		keep, gzip                 bool
	}{
		{"GET", "/a", "1", "1.1.1.1", true, false},
		{"HEAD", "/b", "", "", true, true},
		{"GET", "/c", "3", "", false, false},
	}
	for i, w := range want {
		if err := ReadRequest(br, 1024, &r); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if r.Method != w.method || string(r.Path) != w.path || string(r.Query) != w.query ||
			string(r.XRealIP) != w.xreal || r.KeepAlive != w.keep || r.AcceptGzip != w.gzip {
			t.Errorf("request %d: %+v", i, r)
		}
	}
	if err := ReadRequest(br, 1024, &r); err != io.EOF {
		t.Errorf("after the last request: %v, want EOF", err)
	}
}

// The budget is per request, not per connection.
func TestReadRequestBudgetPerRequest(t *testing.T) {
	one := "GET /announce HTTP/1.1\r\nHost: x\r\n\r\n"
	br := bufio.NewReader(strings.NewReader(strings.Repeat(one, 50)))
	var r Request
	for i := 0; i < 50; i++ {
		if err := ReadRequest(br, len(one), &r); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
}

func TestReadRequestAllocs(t *testing.T) {
	var raw string
	for _, v := range loadVectors(t) {
		raw += v.raw
	}
	sr := strings.NewReader(raw)
	br := bufio.NewReaderSize(sr, 512)
	var r Request
	readAll := func() {
		sr.Reset(raw)
		br.Reset(sr)
		for {
			err := ReadRequest(br, DefaultMaxRequestBytes, &r)
			if err == io.EOF {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	readAll() // warm r's buffers
	if n := testing.AllocsPerRun(20, readAll); n != 0 {
		t.Errorf("%v allocs reading every vector", n)
	}
}
