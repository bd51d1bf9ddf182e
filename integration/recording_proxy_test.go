package integration

// The proxy real clients announce to: in front of one tracker
// (clients_test.go, warm_restart_test.go) or of HAProxy
// (cluster_clients_test.go), it shows what the clients really sent and, behind
// HAProxy, which instance answered.

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// clRequest is one HTTP request head a client sent through the proxy, and
// the answer to it.
type clRequest struct {
	client   string // kind of the client that sent it (by passkey)
	role     string // "seeder", "leecher" or "revoked"
	head     string // request line and headers, CRLF line ends, blank line included
	path     string // raw path
	query    url.Values
	at       time.Time
	status   int    // of the answer; 0 until it has come
	instance string // X-Tracker-Instance HAProxy put on the answer ("" without HAProxy, or its own answer)
}

func (r clRequest) event() string { return r.query.Get("event") }

// recordingProxy sits between real clients and a tracker (or HAProxy): it
// forwards every byte unchanged both ways and records each request head,
// the exact bytes real clients send, together with the status and
// X-Tracker-Instance header of the answer to it (HTTP/1.1 answers come in
// request order on a connection).
type recordingProxy struct {
	ln       net.Listener
	upstream string

	mu    sync.Mutex
	who   map[string][2]string // passkey -> {client kind, role}
	reqs  []clRequest
	conns map[net.Conn]bool
	wake  chan struct{}
}

func startRecordingProxy(t *testing.T, upstream string) *recordingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &recordingProxy{ln: ln, upstream: upstream, who: map[string][2]string{}, conns: map[net.Conn]bool{}, wake: make(chan struct{}, 1)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	return p
}

func (p *recordingProxy) base() string { return "http://" + p.ln.Addr().String() }

// name says which client and role a passkey belongs to.
func (p *recordingProxy) name(passkey, client, role string) {
	p.mu.Lock()
	p.who[passkey] = [2]string{client, role}
	p.mu.Unlock()
}

func (p *recordingProxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
}

func (p *recordingProxy) serve(c net.Conn) {
	up, err := net.Dial("tcp", p.upstream)
	if err != nil {
		c.Close()
		return
	}
	p.track(c, true)
	p.track(up, true)
	defer func() {
		c.Close()
		up.Close()
		p.track(c, false)
		p.track(up, false)
	}()
	// Each head is queued before it is forwarded, so its answer always
	// finds it here.
	heads := make(chan int, 64)
	// Answers: everything read from upstream goes to the client as it is
	// read (the tee); parsing it only frames the answers to pair them with
	// the heads. Reading does not wait for a request, so an upstream that
	// closes (a tracker restarting) closes the client's connection at once.
	go func() {
		defer c.Close()
		br := bufio.NewReader(io.TeeReader(up, c))
		for {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				_, _ = io.Copy(io.Discard, br) // unframed, but still forwarded
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			select {
			case i := <-heads:
				p.answer(i, resp)
			default: // an answer to no request (408 before closing)
			}
		}
	}()
	br := bufio.NewReader(c)
	for {
		var head bytes.Buffer
		for {
			line, err := br.ReadString('\n')
			head.WriteString(line)
			if err != nil {
				return
			}
			if line == "\r\n" || line == "\n" {
				break
			}
		}
		heads <- p.record(head.String())
		if _, err := up.Write(head.Bytes()); err != nil {
			return
		}
	}
}

// record keeps a request head and returns its index for the answer, -1
// when it is not a request line.
func (p *recordingProxy) record(head string) int {
	first, _, _ := strings.Cut(head, "\r\n")
	parts := strings.Fields(first)
	if len(parts) != 3 {
		return -1
	}
	path, rawQuery, _ := strings.Cut(parts[1], "?")
	q, _ := url.ParseQuery(rawQuery)
	pk := strings.Trim(strings.TrimSuffix(strings.TrimSuffix(path, "/announce"), "/scrape"), "/")
	p.mu.Lock()
	who := p.who[pk]
	p.reqs = append(p.reqs, clRequest{client: who[0], role: who[1], head: head, path: path, query: q, at: time.Now()})
	i := len(p.reqs) - 1
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return i
}

func (p *recordingProxy) answer(i int, resp *http.Response) {
	if i < 0 {
		return
	}
	p.mu.Lock()
	p.reqs[i].status, p.reqs[i].instance = resp.StatusCode, answeredBy(resp)
	p.mu.Unlock()
}

// requests returns what was recorded so far for a role ("" = every role),
// answered or not: a client may drop its connection before the answer.
func (p *recordingProxy) requests(role string) []clRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []clRequest
	for _, r := range p.reqs {
		if role == "" || r.role == role {
			out = append(out, r)
		}
	}
	return out
}

// exchanges returns the requests answered so far.
func (p *recordingProxy) exchanges() []clRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []clRequest
	for _, r := range p.reqs {
		if r.status != 0 {
			out = append(out, r)
		}
	}
	return out
}

// waitFor waits until a recorded request of role satisfies ok.
func (p *recordingProxy) waitFor(role string, d time.Duration, ok func(clRequest) bool) bool {
	deadline := time.Now().Add(d)
	for {
		for _, r := range p.requests(role) {
			if ok(r) {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-p.wake:
		case <-time.After(200 * time.Millisecond):
		}
	}
}
