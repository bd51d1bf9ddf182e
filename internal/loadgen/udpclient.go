package loadgen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"
)

// BEP 15 constants.
const (
	udpProtocolID     = 0x41727101980
	udpActionConnect  = 0
	udpActionAnnounce = 1
	udpActionScrape   = 2
	udpActionError    = 3
	// A connection id is good for two minutes (BEP 15); renew it well before.
	udpConnIDMaxAge = 60 * time.Second
)

// udpConn is a BEP 15 client on one UDP socket: connect, then announces and
// scrapes with BEP 41 URL data carrying /<passkey>/announce. No
// retransmission: a lost or late answer is a timeout.
type udpConn struct {
	addr    string
	timeout time.Duration
	c       net.Conn
	cid     uint64
	cidAt   time.Time
	tid     uint32
	out     []byte
	in      []byte
	msg     string // the last error packet's message
}

func newUDPConn(addr string, timeout time.Duration, seed uint32) *udpConn {
	return &udpConn{addr: addr, timeout: timeout, tid: seed, out: make([]byte, 0, 512), in: make([]byte, 2048)}
}

func (u *udpConn) close() {
	if u.c != nil {
		u.c.Close()
		u.c = nil
	}
	u.cid = 0
}

// exchange sends u.out and waits for the answer with the same transaction
// id, skipping stale answers to earlier (timed out) requests.
func (u *udpConn) exchange(tid uint32) ([]byte, error) {
	if err := u.c.SetDeadline(time.Now().Add(u.timeout)); err != nil {
		return nil, classify(errIO, err)
	}
	if _, err := u.c.Write(u.out); err != nil {
		return nil, classify(errIO, err)
	}
	for {
		n, err := u.c.Read(u.in)
		if err != nil {
			return nil, classify(errIO, err)
		}
		p := u.in[:n]
		if n >= 8 && binary.BigEndian.Uint32(p[4:]) == tid {
			return p, nil
		}
	}
}

func (u *udpConn) nextTID() uint32 {
	u.tid = u.tid*1664525 + 1013904223
	return u.tid
}

// connect gets a connection id when there is none or it is getting old.
func (u *udpConn) connect(now time.Time) error {
	if u.c == nil {
		c, err := net.Dial("udp", u.addr)
		if err != nil {
			return classify(errConnect, err)
		}
		u.c = c
	}
	if u.cid != 0 && now.Sub(u.cidAt) < udpConnIDMaxAge {
		return nil
	}
	tid := u.nextTID()
	u.out = binary.BigEndian.AppendUint64(u.out[:0], udpProtocolID)
	u.out = binary.BigEndian.AppendUint32(u.out, udpActionConnect)
	u.out = binary.BigEndian.AppendUint32(u.out, tid)
	p, err := u.exchange(tid)
	if err != nil {
		return err
	}
	if len(p) < 16 || binary.BigEndian.Uint32(p) != udpActionConnect {
		return u.protoOrFailure(p, udpActionConnect)
	}
	u.cid, u.cidAt = binary.BigEndian.Uint64(p[8:]), now
	return nil
}

// errUDPFailure marks an error packet (action 3): u.msg holds its text.
var errUDPFailure = errors.New("error packet")

func (u *udpConn) protoOrFailure(p []byte, want uint32) error {
	if len(p) >= 8 && binary.BigEndian.Uint32(p) == udpActionError {
		u.msg = string(p[8:])
		return errUDPFailure
	}
	return &reqError{errProto, fmt.Errorf("answer of %d bytes, action %d, to action %d", len(p), binary.BigEndian.Uint32(p), want)}
}

// AppendUDPAnnounce appends a BEP 15 announce with BEP 41 URL data.
func AppendUDPAnnounce(dst []byte, cid uint64, tid uint32, ih, id *[20]byte, down, left, up uint64, ev Event, key uint32, numWant int32, port uint16, urlData []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, cid)
	dst = binary.BigEndian.AppendUint32(dst, udpActionAnnounce)
	dst = binary.BigEndian.AppendUint32(dst, tid)
	dst = append(dst, ih[:]...)
	dst = append(dst, id[:]...)
	dst = binary.BigEndian.AppendUint64(dst, down)
	dst = binary.BigEndian.AppendUint64(dst, left)
	dst = binary.BigEndian.AppendUint64(dst, up)
	dst = binary.BigEndian.AppendUint32(dst, uint32(ev))
	dst = binary.BigEndian.AppendUint32(dst, 0) // IP: default
	dst = binary.BigEndian.AppendUint32(dst, key)
	dst = binary.BigEndian.AppendUint32(dst, uint32(numWant))
	dst = binary.BigEndian.AppendUint16(dst, port)
	for len(urlData) > 0 {
		n := min(len(urlData), 255)
		dst = append(dst, 0x2, byte(n))
		dst = append(dst, urlData[:n]...)
		urlData = urlData[n:]
	}
	return append(dst, 0x0) // EndOfOptions
}

// announce sends p's announce; the result is OK or the tracker's message.
func (u *udpConn) announce(p *simPeer, ih *[20]byte, ev Event, base string, noPasskey bool, numWant int) (Outcome, error) {
	if err := u.connect(time.Now()); err != nil {
		return u.failed(err)
	}
	var url [256]byte
	ud := append(url[:0], base...)
	if !noPasskey {
		ud = append(ud, '/')
		ud = append(ud, p.pk[:]...)
	}
	ud = append(ud, "/announce"...)
	tid := u.nextTID()
	u.out = AppendUDPAnnounce(u.out[:0], u.cid, tid, ih, &p.id, p.down, p.left, p.up, ev,
		uint32(p.port)*2654435761, int32(numWant), p.port, ud)
	pkt, err := u.exchange(tid)
	if err != nil {
		u.cid = 0 // the id may be the reason: get a fresh one
		return Outcome{}, err
	}
	if len(pkt) < 20 || binary.BigEndian.Uint32(pkt) != udpActionAnnounce {
		return u.failed(u.protoOrFailure(pkt, udpActionAnnounce))
	}
	return Outcome{OK: true}, nil
}

// scrape sends a one-hash scrape (BEP 15 scrapes carry no passkey).
func (u *udpConn) scrape(ih *[20]byte) (Outcome, error) {
	if err := u.connect(time.Now()); err != nil {
		return u.failed(err)
	}
	tid := u.nextTID()
	u.out = binary.BigEndian.AppendUint64(u.out[:0], u.cid)
	u.out = binary.BigEndian.AppendUint32(u.out, udpActionScrape)
	u.out = binary.BigEndian.AppendUint32(u.out, tid)
	u.out = append(u.out, ih[:]...)
	pkt, err := u.exchange(tid)
	if err != nil {
		u.cid = 0
		return Outcome{}, err
	}
	if len(pkt) < 20 || binary.BigEndian.Uint32(pkt) != udpActionScrape {
		return u.failed(u.protoOrFailure(pkt, udpActionScrape))
	}
	return Outcome{OK: true}, nil
}

func (u *udpConn) failed(err error) (Outcome, error) {
	if errors.Is(err, errUDPFailure) {
		return Outcome{Kind: "failure reason: " + u.msg, Failed: true}, nil
	}
	return Outcome{}, err
}
