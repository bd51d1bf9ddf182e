package httpfront

import (
	"net/netip"
	"unsafe"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// NumWantCap is the largest numwant ParseAnnounce passes on; larger values
// (however many digits) are clamped to it. The engine clamps further to
// Settings.MaxNumWant.
const NumWantCap = 1 << 16

// AnnounceExtras are the announce parameters that shape the answer or the
// client address rather than the engine's work.
type AnnounceExtras struct {
	Compact  bool       // compact peer list (the default; false only for compact=0)
	NoPeerID bool       // no_peer_id=1: the dict form leaves out "peer id"
	IP       netip.Addr // the ip= parameter, unmapped; invalid when absent or unparsable

	ipbuf [64]byte
}

// ParseAnnounce decodes an announce query string into a. It sets InfoHash,
// PeerID, Port, Uploaded, Downloaded, Left, Event, NumWant and WantPeerID
// and leaves Passkey and Addr as they are. See ParseAnnounceExtras.
func ParseAnnounce(query []byte, a *tracker.Announce) error {
	return ParseAnnounceExtras(query, a, nil)
}

// The parameters ParseAnnounceExtras has seen, for "first one wins" (the
// rule nginx's $arg_info_hash follows, so a consistent-hash load balancer and
// the tracker agree on which info_hash a request is about).
const (
	seenInfoHash = 1 << iota
	seenPeerID
	seenPort
	seenUploaded
	seenDownloaded
	seenLeft
	seenEvent
	seenNumWant
	seenCompact
	seenNoPeerID
	seenIP
)

// ParseAnnounceExtras decodes an announce query string into a and ex (which
// may be nil) without allocating.
//
// Rules: parameters are separated by '&'; names are matched as sent; values
// are %-decoded (either case of hex digit) with '+' meaning a space, as in
// every HTML form, XBT, opentracker and Go's net/url; other bytes are taken
// literally (libtorrent leaves ( ) * ! ' ~ - _ . unescaped). When a parameter
// repeats, the first one wins. Unknown parameters (key, corrupt, redundant,
// supportcrypto, ipv4, ipv6, ...) are ignored.
//
// info_hash and peer_id must decode to exactly 20 bytes. port, uploaded,
// downloaded and left are required; port is 0..65535 (0 is accepted, as XBT
// does, so the announce is still accounted), the others unsigned 64-bit
// decimals. event is started, completed, stopped, paused, empty or absent.
// numwant absent or negative means -1 (the engine's default), larger than
// NumWantCap is clamped. compact is on unless compact=0; no_peer_id=1 drops
// peer ids from the dict form. ip= is decoded into ex.IP (ignored if
// unparsable) for the trusted-proxy rule.
func ParseAnnounceExtras(query []byte, a *tracker.Announce, ex *AnnounceExtras) error {
	a.InfoHash = tracker.InfoHash{}
	a.PeerID = tracker.PeerID{}
	a.Port = 0
	a.Uploaded, a.Downloaded, a.Left = 0, 0, 0
	a.Event = tracker.EventNone
	a.NumWant = -1
	a.WantPeerID = false
	compact, noPeerID := true, false
	if ex != nil {
		ex.IP = netip.Addr{}
	}

	seen := 0
	for len(query) > 0 {
		var kv []byte
		if amp := indexByte(query, '&'); amp >= 0 {
			kv, query = query[:amp], query[amp+1:]
		} else {
			kv, query = query, nil
		}
		name, value := kv, []byte(nil)
		if eq := indexByte(kv, '='); eq >= 0 {
			name, value = kv[:eq], kv[eq+1:]
		}
		var bit int
		switch string(name) {
		case "info_hash":
			bit = seenInfoHash
		case "peer_id":
			bit = seenPeerID
		case "port":
			bit = seenPort
		case "uploaded":
			bit = seenUploaded
		case "downloaded":
			bit = seenDownloaded
		case "left":
			bit = seenLeft
		case "event":
			bit = seenEvent
		case "numwant":
			bit = seenNumWant
		case "compact":
			bit = seenCompact
		case "no_peer_id":
			bit = seenNoPeerID
		case "ip":
			bit = seenIP
		default:
			continue
		}
		if seen&bit != 0 {
			continue
		}
		seen |= bit
		switch bit {
		case seenInfoHash:
			if !decode20(value, (*[20]byte)(&a.InfoHash)) {
				return tracker.ErrInvalidInfoHash
			}
		case seenPeerID:
			if !decode20(value, (*[20]byte)(&a.PeerID)) {
				return tracker.ErrInvalidPeerID
			}
		case seenPort:
			n, ok := parseDecimal(value)
			if !ok || n > 65535 {
				return tracker.ErrInvalidPort
			}
			a.Port = uint16(n)
		case seenUploaded:
			n, ok := parseDecimal(value)
			if !ok {
				return tracker.ErrInvalidUploaded
			}
			a.Uploaded = n
		case seenDownloaded:
			n, ok := parseDecimal(value)
			if !ok {
				return tracker.ErrInvalidDownloaded
			}
			a.Downloaded = n
		case seenLeft:
			n, ok := parseDecimal(value)
			if !ok {
				return tracker.ErrInvalidLeft
			}
			a.Left = n
		case seenEvent:
			switch string(value) {
			case "", "empty":
				a.Event = tracker.EventNone
			case "started":
				a.Event = tracker.EventStarted
			case "completed":
				a.Event = tracker.EventCompleted
			case "stopped":
				a.Event = tracker.EventStopped
			case "paused":
				a.Event = tracker.EventPaused
			default:
				return tracker.ErrInvalidEvent
			}
		case seenNumWant:
			n, ok := parseNumWant(value)
			if !ok {
				return tracker.ErrInvalidNumWant
			}
			a.NumWant = n
		case seenCompact:
			compact = string(value) != "0"
		case seenNoPeerID:
			noPeerID = len(value) > 0 && string(value) != "0"
		case seenIP:
			if ex == nil {
				break
			}
			n, ok := decodeInto(value, ex.ipbuf[:])
			if ok && n > 0 {
				if ip, ok := parseAddr(ex.ipbuf[:n]); ok {
					ex.IP = ip
				}
			}
		}
	}
	switch {
	case seen&seenInfoHash == 0:
		return tracker.ErrMissingInfoHash
	case seen&seenPeerID == 0:
		return tracker.ErrMissingPeerID
	case seen&seenPort == 0:
		return tracker.ErrMissingPort
	case seen&seenUploaded == 0:
		return tracker.ErrMissingUploaded
	case seen&seenDownloaded == 0:
		return tracker.ErrMissingDownloaded
	case seen&seenLeft == 0:
		return tracker.ErrMissingLeft
	}
	if ex != nil {
		ex.Compact, ex.NoPeerID = compact, noPeerID
	}
	a.WantPeerID = !compact && !noPeerID
	return nil
}

// ParseScrape appends every info_hash of a scrape query string to dst and
// returns it; no info_hash at all asks for a full scrape. Same decoding
// rules as ParseAnnounceExtras; duplicates are kept (the encoder drops
// them). It allocates only when dst must grow.
func ParseScrape(query []byte, dst []tracker.InfoHash) ([]tracker.InfoHash, error) {
	for len(query) > 0 {
		var kv []byte
		if amp := indexByte(query, '&'); amp >= 0 {
			kv, query = query[:amp], query[amp+1:]
		} else {
			kv, query = query, nil
		}
		eq := indexByte(kv, '=')
		if eq < 0 || string(kv[:eq]) != "info_hash" {
			continue
		}
		var h tracker.InfoHash
		if !decode20(kv[eq+1:], (*[20]byte)(&h)) {
			return dst, tracker.ErrInvalidInfoHash
		}
		dst = append(dst, h)
	}
	return dst, nil
}

// parseNumWant parses numwant: digits (clamped to NumWantCap), or a
// negative number meaning "the default" (-1), or empty (-1).
func parseNumWant(v []byte) (int, bool) {
	if len(v) == 0 {
		return -1, true
	}
	neg := v[0] == '-'
	if neg {
		v = v[1:]
		if len(v) == 0 {
			return 0, false
		}
	}
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < NumWantCap {
			n = n*10 + int(c-'0')
		}
	}
	if neg {
		return -1, true
	}
	if n > NumWantCap {
		n = NumWantCap
	}
	return n, true
}

// decode20 %-decodes v into dst, requiring exactly 20 bytes.
func decode20(v []byte, dst *[20]byte) bool {
	n, ok := decodeInto(v, dst[:])
	return ok && n == len(dst)
}

// decodeInto %-decodes v into dst and returns the decoded length; false when
// an escape is malformed or the result does not fit in dst.
func decodeInto(v []byte, dst []byte) (int, bool) {
	n := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch c {
		case '%':
			if i+2 >= len(v) {
				return 0, false
			}
			hi, lo := unhex(v[i+1]), unhex(v[i+2])
			if hi > 15 || lo > 15 {
				return 0, false
			}
			c = hi<<4 | lo
			i += 2
		case '+':
			c = ' '
		}
		if n == len(dst) {
			return 0, false
		}
		dst[n] = c
		n++
	}
	return n, true
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 255
}

// parseAddr parses an IPv4 or IPv6 address (no zone) from b without
// allocating, unmapping IPv4-mapped IPv6.
func parseAddr(b []byte) (netip.Addr, bool) {
	if len(b) == 0 || len(b) > 45 {
		return netip.Addr{}, false
	}
	for _, c := range b {
		// Only the characters an address may hold: this also keeps zones
		// ("%eth0") out, so netip keeps no reference to b.
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' || c == '.' || c == ':') {
			return netip.Addr{}, false
		}
	}
	// The string does not outlive this call: netip.Addr holds no reference to
	// its input, and the error (which would) is dropped here.
	ip, err := netip.ParseAddr(unsafe.String(&b[0], len(b))) //nolint:gosec // G103: b is non-empty, not modified during the call, and the string view is not retained (checked chars exclude zones; the error is dropped)
	if err != nil {
		return netip.Addr{}, false
	}
	return ip.Unmap(), true
}
