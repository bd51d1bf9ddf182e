package httpfront

import (
	"net/netip"
)

// ClientAddr returns the address a request is accounted to, and whether it
// came from a proxy header or ip= rather than from the socket.
//
// sock is the connection's remote address. Only when it is inside one of
// the trusted proxy prefixes are the client-supplied sources looked at, in
// this order: X-Forwarded-For's rightmost address that is not itself a
// trusted proxy (walking from the right, stopping at the first entry that is
// not an address), then X-Real-IP, then the ip= parameter (ipParam; invalid
// when absent). Otherwise, and when none of them holds an address, the
// socket address. Every address is returned unmapped (::ffff:a.b.c.d becomes
// a.b.c.d). Entries may carry a port ("1.2.3.4:5678", "[::1]:80"); it is
// dropped.
func ClientAddr(sock netip.Addr, trusted []netip.Prefix, xff, realIP []byte, ipParam netip.Addr) (netip.Addr, bool) {
	sock = sock.Unmap()
	if !inPrefixes(trusted, sock) {
		return sock, false
	}
	for end := len(xff); end > 0; {
		start := lastIndexByte(xff[:end], ',') + 1
		entry := trimOWS(xff[start:end])
		end = start - 1
		if len(entry) == 0 {
			continue // "a, , b": an empty element
		}
		ip, ok := parseHostAddr(entry)
		if !ok {
			break // written by someone untrusted: believe nothing further left
		}
		if !inPrefixes(trusted, ip) {
			return ip, true
		}
	}
	if ip, ok := parseHostAddr(trimOWS(realIP)); ok {
		return ip, true
	}
	if ipParam.IsValid() {
		return ipParam.Unmap(), true
	}
	return sock, false
}

func inPrefixes(ps []netip.Prefix, ip netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// parseHostAddr parses "addr", "v4:port", "[v6]" or "[v6]:port".
func parseHostAddr(b []byte) (netip.Addr, bool) {
	if len(b) == 0 {
		return netip.Addr{}, false
	}
	if b[0] == '[' {
		end := indexByte(b, ']')
		if end < 0 {
			return netip.Addr{}, false
		}
		rest := b[end+1:]
		if len(rest) > 0 && (rest[0] != ':' || !allDigits(rest[1:])) {
			return netip.Addr{}, false
		}
		return parseAddr(b[1:end])
	}
	if colon := indexByte(b, ':'); colon >= 0 && lastIndexByte(b, ':') == colon {
		// exactly one colon: IPv4 with a port
		if !allDigits(b[colon+1:]) {
			return netip.Addr{}, false
		}
		ip, ok := parseAddr(b[:colon])
		if !ok || !ip.Is4() {
			return netip.Addr{}, false
		}
		return ip, true
	}
	return parseAddr(b)
}

func allDigits(b []byte) bool {
	if len(b) == 0 || len(b) > 5 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// normalizePrefixes returns ps masked, with IPv4-mapped IPv6 prefixes
// (::ffff:10.0.0.0/104) turned into IPv4 ones, since client addresses are
// compared unmapped.
func normalizePrefixes(ps []netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ps))
	for _, p := range ps {
		if !p.IsValid() {
			continue
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out
}
