package statefile

import (
	"bufio"
	"encoding/binary"
	"hash/crc32"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// Reader reads a verified state file, one torrent at a time.
type Reader struct {
	f        *os.File
	br       *bufio.Reader
	h        Header
	size     int64
	bufLen   int
	savedSec int64
	// left is the number of record bytes not read yet (the end record
	// included, the trailer not).
	left     int64
	torrents uint64
	peers    uint64
	done     bool
}

// Open opens the state file at path and verifies it completely: magic,
// version, checksum, and every record's structure and the counts. A
// missing file gives an error satisfying errors.Is(err, fs.ErrNotExist); a
// file that is not a valid state file of this version a *FormatError.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r := &Reader{f: f}
	if err := r.open(); err != nil {
		_ = f.Close()
		return nil, err
	}
	return r, nil
}

func (r *Reader) open() error {
	st, err := r.f.Stat()
	if err != nil {
		return err
	}
	r.size = st.Size()
	var pre [prefixLen]byte
	if _, err := io.ReadFull(r.f, pre[:]); err != nil {
		return formatErr("truncated: %d bytes, too short for a header", r.size)
	}
	if [8]byte(pre[:8]) != magic {
		return formatErr("not a state file (no XBTSTATE magic)")
	}
	if v := binary.LittleEndian.Uint32(pre[8:]); v != Version {
		return formatErr("format version %d, this tracker reads version %d", v, Version)
	}
	hlen := int64(binary.LittleEndian.Uint32(pre[12:]))
	if hlen > maxHeader || prefixLen+hlen+1+trailerLen > r.size {
		return formatErr("truncated or corrupt: header of %d bytes in a file of %d", hlen, r.size)
	}
	// The checksum covers everything before its own 4 bytes.
	if _, err := r.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	// Buffers of the file's size at most: a small file (few peers) costs
	// little to open.
	r.bufLen = int(max(min(r.size, bufSize), 4096))
	buf := make([]byte, r.bufLen)
	var crc uint32
	body := r.size - 4
	for off := int64(0); off < body; {
		n := int64(len(buf))
		if body-off < n {
			n = body - off
		}
		if _, err := io.ReadFull(r.f, buf[:n]); err != nil {
			return formatErr("truncated: %v", err)
		}
		crc = crc32.Update(crc, castagnoli, buf[:n])
		off += n
	}
	var tail [trailerLen]byte
	if _, err := r.f.ReadAt(tail[:], r.size-trailerLen); err != nil {
		return formatErr("truncated: %v", err)
	}
	if got := binary.LittleEndian.Uint32(tail[16:]); got != crc {
		return formatErr("checksum mismatch (corrupt or truncated file)")
	}
	r.h.Torrents = binary.LittleEndian.Uint64(tail[0:])
	r.h.Peers = binary.LittleEndian.Uint64(tail[8:])

	hb := make([]byte, hlen)
	if _, err := r.f.ReadAt(hb, prefixLen); err != nil {
		return formatErr("truncated header: %v", err)
	}
	if err := r.parseHeader(hb); err != nil {
		return err
	}
	r.savedSec = r.h.SavedAt.Unix()
	// Walk every record once (the structure, the counts) before anything
	// is handed out, so a caller never applies half a file.
	if err := r.rewind(prefixLen + hlen); err != nil {
		return err
	}
	var peers []tracker.PeerState
	for {
		_, _, ps, ok, err := r.Next(peers)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		peers = ps[:0]
	}
	return r.rewind(prefixLen + hlen)
}

func (r *Reader) rewind(at int64) error {
	if _, err := r.f.Seek(at, io.SeekStart); err != nil {
		return err
	}
	if r.br == nil {
		r.br = bufio.NewReaderSize(r.f, r.bufLen)
	} else {
		r.br.Reset(r.f)
	}
	r.left = r.size - at - trailerLen
	r.torrents, r.peers, r.done = 0, 0, false
	return nil
}

func (r *Reader) parseHeader(hb []byte) error {
	const fixed = 8 + 32 + 16 + 8
	if len(hb) < fixed {
		return formatErr("corrupt header (%d bytes)", len(hb))
	}
	r.h.SavedAt = time.Unix(0, int64(binary.LittleEndian.Uint64(hb))) //nolint:gosec // G115: the bits Create stored as uint64(UnixNano()), reinterpreted back
	copy(r.h.SecretHash[:], hb[8:40])
	copy(r.h.Writer[:], hb[40:56])
	r.h.Seq = binary.LittleEndian.Uint64(hb[56:64])
	rest := hb[fixed:]
	for _, dst := range []*string{&r.h.Database, &r.h.Server} {
		if len(rest) < 2 {
			return formatErr("corrupt header")
		}
		n := int(binary.LittleEndian.Uint16(rest))
		if len(rest) < 2+n {
			return formatErr("corrupt header")
		}
		*dst = string(rest[2 : 2+n])
		rest = rest[2+n:]
	}
	return nil
}

// Header returns what the file says about itself.
func (r *Reader) Header() Header { return r.h }

// Next reads the next torrent: its info hash, fid and peers, decoded into
// buf's storage (grown when too small; the slice returned is valid until the
// next call). ok is false after the last torrent.
func (r *Reader) Next(buf []tracker.PeerState) (ih tracker.InfoHash, fid uint32, peers []tracker.PeerState, ok bool, err error) {
	if r.done {
		return ih, 0, buf[:0], false, nil
	}
	b, err := r.peek(1)
	if err != nil {
		return ih, 0, buf[:0], false, err
	}
	switch b[0] {
	case tagEnd:
		r.discard(1)
		if r.left != 0 {
			return ih, 0, buf[:0], false, formatErr("corrupt: %d bytes after the end record", r.left)
		}
		if r.torrents != r.h.Torrents || r.peers != r.h.Peers {
			return ih, 0, buf[:0], false, formatErr("corrupt: %d torrents and %d peers, the trailer says %d and %d",
				r.torrents, r.peers, r.h.Torrents, r.h.Peers)
		}
		r.done = true
		return ih, 0, buf[:0], false, nil
	case tagTorrent:
	default:
		return ih, 0, buf[:0], false, formatErr("corrupt: record tag %#x", b[0])
	}
	if b, err = r.peek(1 + 24 + binary.MaxVarintLen64); err != nil {
		return ih, 0, buf[:0], false, err
	}
	if len(b) < 26 {
		return ih, 0, buf[:0], false, formatErr("corrupt: records run past the trailer")
	}
	copy(ih[:], b[1:21])
	fid = binary.LittleEndian.Uint32(b[21:25])
	n, m := binary.Uvarint(b[25:])
	if m <= 0 {
		return ih, 0, buf[:0], false, formatErr("corrupt: peer count")
	}
	r.discard(25 + m)
	if n == 0 || r.left < 0 || n > uint64(r.left/minPeerLen) {
		return ih, 0, buf[:0], false, formatErr("corrupt: a torrent with %d peers in %d bytes", n, r.left)
	}
	if uint64(cap(buf)) < n {
		buf = make([]tracker.PeerState, n)
	}
	peers = buf[:n]
	for i := range peers {
		if err := r.peer(&peers[i]); err != nil {
			return ih, 0, buf[:0], false, err
		}
	}
	r.torrents++
	r.peers += n
	return ih, fid, peers, true, nil
}

// maxPeerLen is the largest encoded peer.
const maxPeerLen = 1 + 5 + 3*binary.MaxVarintLen64 + binary.MaxVarintLen64 + 20 + 2 + 16

func (r *Reader) peer(p *tracker.PeerState) error {
	b, err := r.peek(maxPeerLen)
	if err != nil {
		return err
	}
	flags := b[0]
	if flags&^(peerV6|peerCounted) != 0 {
		return formatErr("corrupt: peer flags %#x", flags)
	}
	i := 1
	uid, m := binary.Uvarint(b[i:])
	if m <= 0 || uid > 1<<32-1 {
		return formatErr("corrupt: peer uid")
	}
	i += m
	age, m := binary.Varint(b[i:])
	if m <= 0 {
		return formatErr("corrupt: peer age")
	}
	i += m
	var c [3]uint64
	for k := range c {
		if c[k], m = binary.Uvarint(b[i:]); m <= 0 {
			return formatErr("corrupt: peer counters")
		}
		i += m
	}
	lastSeen := r.savedSec - age
	if lastSeen < 0 || lastSeen > 1<<32-1 {
		return formatErr("corrupt: peer last seen %d", lastSeen)
	}
	alen := 4
	if flags&peerV6 != 0 {
		alen = 16
	}
	if len(b) < i+20+2+alen {
		return formatErr("corrupt: records run past the trailer")
	}
	*p = tracker.PeerState{
		Uploaded: c[0], Downloaded: c[1], Left: c[2],
		UID: uint32(uid), LastSeen: uint32(lastSeen),
		ID:      tracker.PeerID(b[i : i+20]),
		Port:    binary.BigEndian.Uint16(b[i+20:]),
		Counted: flags&peerCounted != 0,
	}
	i += 22
	if alen == 16 {
		p.Addr = netip.AddrFrom16([16]byte(b[i : i+16]))
	} else {
		p.Addr = netip.AddrFrom4([4]byte(b[i : i+4]))
	}
	r.discard(i + alen)
	return nil
}

// peek returns up to n bytes of the records without consuming them: fewer
// near the end of the records, but at least one (else an error).
func (r *Reader) peek(n int) ([]byte, error) {
	if int64(n) > r.left {
		n = int(r.left)
	}
	if n <= 0 {
		return nil, formatErr("corrupt: records run past the trailer")
	}
	b, err := r.br.Peek(n)
	if len(b) < n {
		return nil, formatErr("truncated: %v", err)
	}
	return b, nil
}

// discard consumes n bytes peek returned.
func (r *Reader) discard(n int) {
	_, _ = r.br.Discard(n)
	r.left -= int64(n)
}

// Close closes the file.
func (r *Reader) Close() error { return r.f.Close() }
