package udpfront

import (
	"encoding/binary"
	"errors"
	"math"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// ProtocolID is the connection_id of a BEP 15 connect request.
const ProtocolID uint64 = 0x41727101980

// BEP 15 actions.
const (
	ActionConnect  uint32 = 0
	ActionAnnounce uint32 = 1
	ActionScrape   uint32 = 2
	ActionError    uint32 = 3
)

// Packet sizes.
const (
	HeaderSize   = 16 // connection_id, action, transaction_id
	ConnectSize  = 16
	AnnounceSize = 98 // the fixed part; BEP 41 options may follow
	// MaxScrapeHashes is BEP 15's "up to about 74 torrents can be scraped at
	// once".
	MaxScrapeHashes = 74
	// DefaultMaxPacket is the largest request accepted by default: a scrape
	// of MaxScrapeHashes hashes (1496 bytes). It leaves an announce 1398
	// bytes of BEP 41 options (libtorrent sends at most 257).
	DefaultMaxPacket = HeaderSize + MaxScrapeHashes*20
)

// BEP 41 option types.
const (
	optEndOfOptions = 0x0
	optNOP          = 0x1
	optURLData      = 0x2
)

// MaxURLData bounds the BEP 41 request string kept from an announce; URL
// data beyond it is ignored (a passkey path is 42 bytes).
const MaxURLData = 1024

// Parse errors of packets dropped without an answer. ParsePacket's other
// errors are tracker.Failure values: the error message a client with a
// valid connection id gets, worded as the HTTP frontend words them.
var (
	ErrShort         = errors.New("packet shorter than 16 bytes")
	ErrBadMagic      = errors.New("connect without the protocol id")
	ErrUnknownAction = errors.New("unknown action")
)

// Request is one parsed request packet. A Request is reused between packets:
// ParsePacket resets it and appends into its slices, so a warm parse does
// not allocate.
type Request struct {
	ConnectionID  uint64
	Action        uint32
	TransactionID uint32

	// Announce (action 1).
	InfoHash   tracker.InfoHash
	PeerID     tracker.PeerID
	Downloaded uint64
	Left       uint64
	Uploaded   uint64
	Event      tracker.Event
	IP         [4]byte // the IP address field; never used (see the package doc)
	Key        uint32  // never used
	NumWant    int     // -1 when the client asked for the default
	Port       uint16
	// URLData is the BEP 41 request string (path and query, e.g.
	// "/<passkey>/announce"), the concatenation of every URLData option,
	// at most MaxURLData bytes; empty when the client sent none.
	URLData []byte
	Options int // options read, NOPs and EndOfOptions included

	// Scrape (action 2): the hashes as sent, in order, repeats kept.
	InfoHashes []tracker.InfoHash
}

func (r *Request) reset() {
	*r = Request{URLData: r.URLData[:0], InfoHashes: r.InfoHashes[:0], NumWant: -1}
}

// ParsePacket decodes a request packet into r. It never panics and its work
// is linear in len(pkt) (the caller bounds len(pkt)); it allocates only when
// r's slices must grow.
//
//   - A packet shorter than 16 bytes is ErrShort. Extra bytes after a
//     connect are ignored; a connect's connection_id must be ProtocolID.
//   - An announce must hold the 98 bytes of BEP 15. What follows is a BEP 41
//     option list: 0x0 ends it, 0x1 is one byte of padding, 0x2 (URLData)
//     and every other type have a length byte and that many bytes of data
//     (unknown types are skipped, as BEP 41 lets a tracker do). An option
//     running past the packet's end is tracker.ErrMalformedOptions; the
//     packet's end without 0x0 ends the list (libtorrent sends no 0x0).
//   - event is 0 none, 1 completed, 2 started, 3 stopped; another value is
//     tracker.ErrInvalidEvent. downloaded, left and uploaded are signed
//     64-bit in BEP 15: negative values are refused (tracker.ErrInvalid*),
//     as the HTTP frontend refuses them.
//     num_want < 0 is the default (-1).
//   - A scrape holds whole 20-byte hashes after the header (bytes that do not
//     make up a whole hash are ignored); none is tracker.ErrMissingInfoHash.
//   - Another action is ErrUnknownAction (after the header was decoded, so
//     the caller knows the transaction id).
func ParsePacket(pkt []byte, r *Request) error {
	r.reset()
	if len(pkt) < HeaderSize {
		return ErrShort
	}
	r.ConnectionID = binary.BigEndian.Uint64(pkt[0:8])
	r.Action = binary.BigEndian.Uint32(pkt[8:12])
	r.TransactionID = binary.BigEndian.Uint32(pkt[12:16])
	switch r.Action {
	case ActionConnect:
		if r.ConnectionID != ProtocolID {
			return ErrBadMagic
		}
		return nil
	case ActionAnnounce:
		return parseAnnounce(pkt, r)
	case ActionScrape:
		n := (len(pkt) - HeaderSize) / 20
		if n == 0 {
			return tracker.ErrMissingInfoHash
		}
		for i := range n {
			off := HeaderSize + i*20
			r.InfoHashes = append(r.InfoHashes, tracker.InfoHash(pkt[off:off+20]))
		}
		return nil
	}
	return ErrUnknownAction
}

func parseAnnounce(pkt []byte, r *Request) error {
	if len(pkt) < AnnounceSize {
		return tracker.ErrTruncatedAnnounce
	}
	r.InfoHash = tracker.InfoHash(pkt[16:36])
	r.PeerID = tracker.PeerID(pkt[36:56])
	r.Downloaded = binary.BigEndian.Uint64(pkt[56:64])
	r.Left = binary.BigEndian.Uint64(pkt[64:72])
	r.Uploaded = binary.BigEndian.Uint64(pkt[72:80])
	ev := binary.BigEndian.Uint32(pkt[80:84])
	r.IP = [4]byte(pkt[84:88])
	r.Key = binary.BigEndian.Uint32(pkt[88:92])
	nw := int32(binary.BigEndian.Uint32(pkt[92:96]))
	r.Port = binary.BigEndian.Uint16(pkt[96:98])
	if nw >= 0 {
		r.NumWant = int(nw)
	}
	if err := parseOptions(pkt[AnnounceSize:], r); err != nil {
		return err
	}
	switch ev {
	case 0:
		r.Event = tracker.EventNone
	case 1:
		r.Event = tracker.EventCompleted
	case 2:
		r.Event = tracker.EventStarted
	case 3:
		r.Event = tracker.EventStopped
	default:
		return tracker.ErrInvalidEvent
	}
	switch {
	case r.Uploaded > math.MaxInt64:
		return tracker.ErrInvalidUploaded
	case r.Downloaded > math.MaxInt64:
		return tracker.ErrInvalidDownloaded
	case r.Left > math.MaxInt64:
		return tracker.ErrInvalidLeft
	}
	return nil
}

// parseOptions reads a BEP 41 option list. Every step consumes at least one
// byte, so the loop is bounded by len(opts).
func parseOptions(opts []byte, r *Request) error {
	for i := 0; i < len(opts); {
		r.Options++
		switch opts[i] {
		case optEndOfOptions:
			return nil
		case optNOP:
			i++
			continue
		}
		if i+1 >= len(opts) {
			return tracker.ErrMalformedOptions
		}
		n := int(opts[i+1])
		if i+2+n > len(opts) {
			return tracker.ErrMalformedOptions
		}
		if opts[i] == optURLData {
			data := opts[i+2 : i+2+n]
			if room := MaxURLData - len(r.URLData); len(data) > room {
				data = data[:room]
			}
			r.URLData = append(r.URLData, data...)
		}
		i += 2 + n
	}
	return nil
}

// PasskeyFromURLData returns the passkey of a BEP 41 request string
// "/<passkey>/announce[?query]": the 32 bytes between the first two slashes
// of its path (or after the only slash, "/<passkey>"). It returns nil when
// the path has no such segment ("/announce", "", a 31-byte segment, ...);
// the engine then treats the announce as anonymous. The result aliases
// urlData.
func PasskeyFromURLData(urlData []byte) []byte {
	path := urlData
	for i, c := range urlData {
		if c == '?' || c == '#' {
			path = urlData[:i]
			break
		}
	}
	if len(path) < 33 || path[0] != '/' {
		return nil
	}
	if len(path) > 33 && path[33] != '/' {
		return nil
	}
	pk := path[1:33]
	for _, c := range pk {
		if c == '/' {
			return nil
		}
	}
	return pk
}

// AppendConnect appends a connect answer.
func AppendConnect(dst []byte, tid uint32, cid uint64) []byte {
	dst = binary.BigEndian.AppendUint32(dst, ActionConnect)
	dst = binary.BigEndian.AppendUint32(dst, tid)
	return binary.BigEndian.AppendUint64(dst, cid)
}

// AppendError appends an error answer carrying msg, as BEP 15 defines it
// (the message runs to the end of the packet, no terminator).
func AppendError(dst []byte, tid uint32, msg string) []byte {
	dst = binary.BigEndian.AppendUint32(dst, ActionError)
	dst = binary.BigEndian.AppendUint32(dst, tid)
	return append(dst, msg...)
}

// AppendAnnounce appends an announce answer: interval, leechers, seeders,
// then peers, the compact entries of the requester's address family (6 bytes
// for IPv4, 18 for IPv6), at most maxPeers of them. A failure is appended as
// an error answer.
func AppendAnnounce(dst []byte, tid uint32, r *tracker.AnnounceResult, ipv6 bool, maxPeers int) []byte {
	if r.Failure != "" {
		return AppendError(dst, tid, string(r.Failure))
	}
	dst = binary.BigEndian.AppendUint32(dst, ActionAnnounce)
	dst = binary.BigEndian.AppendUint32(dst, tid)
	dst = binary.BigEndian.AppendUint32(dst, clamp32(r.Interval))
	dst = binary.BigEndian.AppendUint32(dst, clamp32(r.Incomplete))
	dst = binary.BigEndian.AppendUint32(dst, clamp32(r.Complete))
	peers, size := r.Peers4, 6
	if ipv6 {
		peers, size = r.Peers6, 18
	}
	n := min(len(peers)/size, max(maxPeers, 0))
	return append(dst, peers[:n*size]...)
}

// AppendScrape appends a scrape answer: seeders, completed, leechers for
// every hash of hashes, in their order (repeats repeated, unknown torrents
// as zeros), looked up in r.Files (sorted by info hash, as the engine
// returns them). A failure is appended as an error answer.
func AppendScrape(dst []byte, tid uint32, hashes []tracker.InfoHash, r *tracker.ScrapeResult) []byte {
	if r.Failure != "" {
		return AppendError(dst, tid, string(r.Failure))
	}
	dst = binary.BigEndian.AppendUint32(dst, ActionScrape)
	dst = binary.BigEndian.AppendUint32(dst, tid)
	for i := range hashes {
		var f tracker.ScrapeFile
		if j, ok := findFile(r.Files, &hashes[i]); ok {
			f = r.Files[j]
		}
		dst = binary.BigEndian.AppendUint32(dst, clamp32(f.Complete))
		dst = binary.BigEndian.AppendUint32(dst, clamp32(f.Downloaded))
		dst = binary.BigEndian.AppendUint32(dst, clamp32(f.Incomplete))
	}
	return dst
}

// findFile binary-searches files (sorted by info hash) for h.
func findFile(files []tracker.ScrapeFile, h *tracker.InfoHash) (int, bool) {
	lo, hi := 0, len(files)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if cmpHash(&files[m].InfoHash, h) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(files) && files[lo].InfoHash == *h
}

func cmpHash(a, b *tracker.InfoHash) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// clamp32 maps a count onto BEP 15's int32 fields.
func clamp32(n int) uint32 {
	switch {
	case n < 0:
		return 0
	case n > math.MaxInt32:
		return math.MaxInt32
	}
	return uint32(n)
}
