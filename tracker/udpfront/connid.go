package udpfront

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
	"net/netip"
	"time"
)

// DefaultConnIDWindow is the default length of a connection id's time
// window. An id is accepted in the window it was issued in and the next
// one, so it lives between one and two windows: 2 to 4 minutes, which
// covers BEP 15's "a tracker should accept a connection ID until two
// minutes after it has been sent" (and libtorrent's 60 s cache).
const DefaultConnIDWindow = 2 * time.Minute

// connIDs issues and checks connection ids without keeping any per-client
// state:
//
//	id = SipHash-2-4(key; window ‖ ip ‖ port)
//
// where key is 16 random bytes drawn at start, window is the current time
// divided by the window length, ip is the client's 16-byte address (an
// IPv4 address in its IPv4-mapped form) and port its UDP source port.
// SipHash is a keyed PRF built as a short-input MAC, with a 64-bit output:
// exactly a connection id. An id cannot be made without the key, is bound
// to one address and port, and expires on its own. (SHA-256 over
// key-prefixed input does the same job; SipHash does it in a tenth of the
// time, see BenchmarkConnID.)
type connIDs struct {
	k0, k1 uint64
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
	var k [16]byte
	if len(key) > 0 {
		// A caller-given key of any length: spread it over the 16 bytes.
		sum := sha256.Sum256(key)
		copy(k[:], sum[:])
	} else if _, err := rand.Read(k[:]); err != nil {
		panic("udpfront: no randomness for the connection id key: " + err.Error())
	}
	c.k0, c.k1 = binary.LittleEndian.Uint64(k[0:8]), binary.LittleEndian.Uint64(k[8:16])
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
	var in [8 + 16 + 2]byte
	binary.BigEndian.PutUint64(in[0:], uint64(epoch))
	a16 := addr.Addr().As16() // IPv4 in its mapped form
	copy(in[8:], a16[:])
	binary.BigEndian.PutUint16(in[24:], addr.Port())
	return siphash24(c.k0, c.k1, in[:])
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
	// Which window matched is no secret: the previous one is computed only
	// when the current one does not match.
	return c.mac(e, addr) == id || c.mac(e-1, addr) == id
}

// normalize maps an IPv4-mapped IPv6 address (a dual-stack socket) to plain
// IPv4, so a client gets the same id whichever kind of socket it reached.
func normalize(addr netip.AddrPort) netip.AddrPort {
	if a := addr.Addr(); a.Is4In6() {
		return netip.AddrPortFrom(a.Unmap(), addr.Port())
	}
	return addr
}

// siphash24 is SipHash-2-4 (Aumasson and Bernstein, 2012) of m under the key
// (k0, k1), the key's two little-endian halves.
func siphash24(k0, k1 uint64, m []byte) uint64 {
	v0 := k0 ^ 0x736f6d6570736575
	v1 := k1 ^ 0x646f72616e646f6d
	v2 := k0 ^ 0x6c7967656e657261
	v3 := k1 ^ 0x7465646279746573
	last := uint64(len(m)) << 56
	for ; len(m) >= 8; m = m[8:] {
		w := binary.LittleEndian.Uint64(m)
		v3 ^= w
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0 ^= w
	}
	for i := len(m) - 1; i >= 0; i-- {
		last |= uint64(m[i]) << (8 * i)
	}
	v3 ^= last
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0 ^= last
	v2 ^= 0xff
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	return v0 ^ v1 ^ v2 ^ v3
}

func sipRound(v0, v1, v2, v3 uint64) (uint64, uint64, uint64, uint64) {
	v0 += v1
	v1 = bits.RotateLeft64(v1, 13)
	v1 ^= v0
	v0 = bits.RotateLeft64(v0, 32)
	v2 += v3
	v3 = bits.RotateLeft64(v3, 16)
	v3 ^= v2
	v0 += v3
	v3 = bits.RotateLeft64(v3, 21)
	v3 ^= v0
	v2 += v1
	v1 = bits.RotateLeft64(v1, 17)
	v1 ^= v2
	v2 = bits.RotateLeft64(v2, 32)
	return v0, v1, v2, v3
}
