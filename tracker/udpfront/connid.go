package udpfront

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"time"
)

// DefaultConnIDWindow is the default length of a connection id's time
// window. An id is accepted in the window it was issued in and the next
// one, so it lives between one and two windows: 2 to 4 minutes, which
// covers BEP 15's "a tracker should accept a connection ID until two
// minutes after it has been sent" (and libtorrent's 60 s cache).
const DefaultConnIDWindow = 2 * time.Minute

// connIDKeySize is the MAC key's size: 16 bytes keep the MAC's input
// (key, window, address, port: 42 bytes) inside one SHA-256 block.
const connIDKeySize = 16

// connIDs issues and checks connection ids without keeping any per-client
// state:
//
//	id = first 8 bytes of SHA-256(key ‖ window ‖ ip ‖ port)
//
// where key is 16 random bytes drawn at start, window is the current time
// divided by the window length, ip is the client's 16-byte address (an
// IPv4 address in its IPv4-mapped form) and port its UDP source port. The
// input has a fixed length, so the key-prefixed hash is a sound MAC (length
// extension yields only longer inputs, which are never checked). An id
// cannot be made without the key, is bound to one address and port, and
// expires on its own.
type connIDs struct {
	key    [connIDKeySize]byte
	window int64 // seconds, >= 1
	now    func() time.Time
}

func newConnIDs(key []byte, window time.Duration, now func() time.Time) *connIDs {
	c := &connIDs{window: int64(window / time.Second), now: now}
	if c.window < 1 {
		c.window = 1
	}
	if c.now == nil {
		c.now = time.Now
	}
	if len(key) > 0 {
		// A caller-given key (tests): spread it over the whole key.
		sum := sha256.Sum256(key)
		copy(c.key[:], sum[:])
	} else if _, err := rand.Read(c.key[:]); err != nil {
		panic("udpfront: no randomness for the connection id key: " + err.Error())
	}
	return c
}

func (c *connIDs) epoch() int64 {
	s := c.now().Unix()
	if s < 0 {
		s = 0
	}
	return s / c.window
}

// mac computes the id of (epoch, addr). It does not allocate.
func (c *connIDs) mac(epoch int64, addr netip.AddrPort) uint64 {
	var in [connIDKeySize + 8 + 16 + 2]byte
	copy(in[:], c.key[:])
	binary.BigEndian.PutUint64(in[connIDKeySize:], uint64(epoch))
	a16 := addr.Addr().As16() // IPv4 in its mapped form
	copy(in[connIDKeySize+8:], a16[:])
	binary.BigEndian.PutUint16(in[connIDKeySize+24:], addr.Port())
	sum := sha256.Sum256(in[:])
	return binary.BigEndian.Uint64(sum[:8])
}

// issue returns the id for a connect from addr now.
func (c *connIDs) issue(addr netip.AddrPort) uint64 {
	return c.mac(c.epoch(), normalize(addr))
}

// valid reports whether id was issued to addr in the current or the
// previous window.
func (c *connIDs) valid(id uint64, addr netip.AddrPort) bool {
	addr = normalize(addr)
	e := c.epoch()
	// Both computed, compared without branching on the first: the time
	// taken does not tell which window matched.
	a, b := c.mac(e, addr), c.mac(e-1, addr)
	return (a^id) == 0 || (b^id) == 0
}

// normalize maps an IPv4-mapped IPv6 address (a dual-stack socket) to plain
// IPv4, so a client gets the same id whichever kind of socket it reached.
func normalize(addr netip.AddrPort) netip.AddrPort {
	if a := addr.Addr(); a.Is4In6() {
		return netip.AddrPortFrom(a.Unmap(), addr.Port())
	}
	return addr
}
