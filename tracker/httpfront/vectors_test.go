package httpfront

import (
	"bufio"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// vector is one raw request from testdata/client-announces.txt.
type vector struct {
	name string // the "### ..." title
	raw  string // request line and headers, CRLF-terminated, ending in an empty line
}

// loadVectors reads every request real clients sent (the "### " blocks,
// plus the request line quoted in the comments).
func loadVectors(tb testing.TB) []vector {
	tb.Helper()
	data, err := os.ReadFile("testdata/client-announces.txt")
	if err != nil {
		tb.Fatal(err)
	}
	var vs []vector
	var cur *vector
	var lines []string
	flush := func() {
		if cur != nil && len(lines) > 0 {
			cur.raw = strings.Join(lines, "\r\n") + "\r\n\r\n"
			vs = append(vs, *cur)
		}
		cur, lines = nil, nil
	}
	for _, l := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(l, "### "):
			flush()
			cur = &vector{name: strings.TrimPrefix(l, "### ")}
		case strings.HasPrefix(l, "# GET "):
			flush()
			vs = append(vs, vector{name: "comment: " + l[2:40], raw: l[2:] + "\r\nHost: x\r\n\r\n"})
		case cur != nil && strings.TrimSpace(l) == "":
			flush()
		case cur != nil:
			lines = append(lines, l)
		}
	}
	flush()
	if len(vs) < 18 {
		tb.Fatalf("only %d vectors in testdata/client-announces.txt", len(vs))
	}
	return vs
}

func readVector(tb testing.TB, v vector) *Request {
	tb.Helper()
	var r Request
	br := bufio.NewReader(strings.NewReader(v.raw))
	if err := ReadRequest(br, DefaultMaxRequestBytes, &r); err != nil {
		tb.Fatalf("%s: ReadRequest: %v", v.name, err)
	}
	return &r
}

func unhexT(tb testing.TB, s string) [20]byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 20 {
		tb.Fatalf("bad hex %q", s)
	}
	return [20]byte(b)
}
