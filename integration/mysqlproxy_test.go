package integration

import (
	"bufio"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// mpProxy is a MySQL-protocol-aware TCP proxy between the tracker and
// MariaDB. It forwards packets (3-byte little-endian length, 1-byte sequence
// id) both ways unchanged; the connection phase is forwarded like any other
// packet. It watches the client's COM_QUERY packets (command 0x03; the
// tracker's DSN forces interpolateParams=true, so every statement is text)
// and can forge the answer to a COMMIT:
//
// When a client sends a query whose text is exactly COMMIT (any case,
// trimmed) in a transaction the match function selected, and forging is
// still allowed (the first forgeN such COMMITs), the proxy lets the COMMIT
// reach the server, waits for the server's reply (the server has committed,
// or refused), swallows it, and sends the client instead an ERR packet:
// 2013, SQLSTATE HY000, "Lost connection to MySQL server during query", with
// the reply's sequence id (request + 1). With closeAfter it then closes both
// sides of the connection, as a real lost connection would.
//
// This is what a client sees when a proxy (MaxScale, ProxySQL) or the
// network loses the connection after the server committed: an error
// reply to a COMMIT that did happen.
type mpProxy struct {
	ln         net.Listener
	target     string
	match      func(query string) bool // marks the current transaction as one whose COMMIT may be forged
	closeAfter bool

	mu        sync.Mutex
	forgeLeft int
	forged    int
	swallowed [][]byte // the server's replies the proxy swallowed, in order
	commits   int      // COMMITs seen (forged or not)
	conns     map[net.Conn]struct{}
	closed    bool
}

// mpCommitRE is a COMMIT statement's text.
var mpCommitRE = regexp.MustCompile(`(?i)^\s*commit\s*;?\s*$`)

// mpRollbackRE ends a transaction without COMMIT.
var mpRollbackRE = regexp.MustCompile(`(?i)^\s*rollback\b`)

// mpUsersWriteRE is a statement that writes the xbt_users table (UPDATE or
// INSERT naming it, quoted or not); xbt_files_users does not match.
var mpUsersWriteRE = regexp.MustCompile("(?is)^\\s*(update|insert)\\b.*(^|[^a-z0-9_$])`?xbt_users`?([^a-z0-9_$]|$)")

// mpWritesUsers is a match function for newMpProxy: transactions that
// update xbt_users.
func mpWritesUsers(q string) bool { return mpUsersWriteRE.MatchString(q) }

// newMpProxy listens on 127.0.0.1 and forwards to target; it forges the
// reply to the first forgeN COMMITs of transactions match selected (nil:
// every transaction).
func newMpProxy(t *testing.T, target string, forgeN int, match func(string) bool, closeAfter bool) *mpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if match == nil {
		match = func(string) bool { return true }
	}
	p := &mpProxy{ln: ln, target: target, match: match, closeAfter: closeAfter, forgeLeft: forgeN, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *mpProxy) addr() string { return p.ln.Addr().String() }

func (p *mpProxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
}

// counts returns how many COMMITs were forged and seen.
func (p *mpProxy) counts() (forged, commits int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.forged, p.commits
}

// swallowedReplies returns copies of the server replies the proxy replaced.
func (p *mpProxy) swallowedReplies() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([][]byte, len(p.swallowed))
	for i, b := range p.swallowed {
		out[i] = append([]byte(nil), b...)
	}
	return out
}

func (p *mpProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

// track registers conns for close; false when the proxy is closed.
func (p *mpProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *mpProxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
	}
}

// takeForge reports whether this COMMIT is to be forged, and counts it.
func (p *mpProxy) takeForge(candidate bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.commits++
	if !candidate || p.forgeLeft <= 0 {
		return false
	}
	p.forgeLeft--
	p.forged++
	return true
}

// mpPacket is one protocol packet: header (length, sequence id) and payload.
type mpPacket struct {
	seq     byte
	payload []byte
}

// mpMaxPayload marks a packet continued in the next one.
const mpMaxPayload = 0xffffff

func mpRead(r *bufio.Reader) (mpPacket, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return mpPacket{}, err
	}
	n := int(h[0]) | int(h[1])<<8 | int(h[2])<<16
	pk := mpPacket{seq: h[3], payload: make([]byte, n)}
	_, err := io.ReadFull(r, pk.payload)
	return pk, err
}

func mpWrite(w io.Writer, pk mpPacket) error {
	n := len(pk.payload)
	buf := make([]byte, 4+n)
	buf[0], buf[1], buf[2], buf[3] = byte(n), byte(n>>8), byte(n>>16), pk.seq
	copy(buf[4:], pk.payload)
	_, err := w.Write(buf)
	return err
}

// mpLostConnection is the ERR packet payload a client gets for a lost
// connection: 0xff, error 2013 (little-endian), '#', SQLSTATE, message.
func mpLostConnection() []byte {
	const code = 2013
	b := []byte{0xff, code & 0xff, code >> 8, '#'}
	b = append(b, "HY000"...)
	return append(b, "Lost connection to MySQL server during query"...)
}

func (p *mpProxy) handle(c net.Conn) {
	s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		_ = c.Close()
		return
	}
	if !p.track(c, s) {
		_ = c.Close()
		_ = s.Close()
		return
	}
	defer func() {
		_ = c.Close()
		_ = s.Close()
		p.untrack(c, s)
	}()
	// forge carries the sequence id of a COMMIT whose reply is to be
	// replaced; the client sends nothing more before it has the reply, so
	// the server's next packet is that reply.
	forge := make(chan byte, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { _ = s.Close() }()
		r := bufio.NewReaderSize(c, 64<<10)
		candidate, continued := false, false
		for {
			pk, err := mpRead(r)
			if err != nil {
				return
			}
			// A command starts with sequence id 0; the connection phase's
			// packets and a long packet's continuations are not commands.
			if !continued && pk.seq == 0 && len(pk.payload) > 0 && pk.payload[0] == 0x03 {
				q := string(pk.payload[1:])
				switch {
				case mpCommitRE.MatchString(q):
					if p.takeForge(candidate) {
						forge <- pk.seq
					}
					candidate = false
				case mpRollbackRE.MatchString(q):
					candidate = false
				case p.match(strings.TrimSpace(q)):
					candidate = true
				}
			}
			continued = len(pk.payload) == mpMaxPayload
			if err := mpWrite(s, pk); err != nil {
				return
			}
		}
	}()
	r := bufio.NewReaderSize(s, 64<<10)
	for {
		pk, err := mpRead(r)
		if err != nil {
			break
		}
		select {
		case seq := <-forge:
			p.mu.Lock()
			p.swallowed = append(p.swallowed, append([]byte(nil), pk.payload...))
			p.mu.Unlock()
			if err := mpWrite(c, mpPacket{seq: seq + 1, payload: mpLostConnection()}); err != nil || p.closeAfter {
				_ = c.Close()
				_ = s.Close()
				<-done
				return
			}
			continue
		default:
		}
		if err := mpWrite(c, pk); err != nil {
			break
		}
	}
	_ = c.Close()
	<-done
}
