// Package statefile reads and writes the tracker's state file: the swarms
// saved at a clean stop and loaded at the next start (a warm restart; see
// sync/state.go for when a file is written and when one is believed).
//
// The format (version 1), all integers little-endian unless said otherwise:
//
//	magic        8 bytes  "XBTSTATE"
//	version      uint32   1
//	header size  uint32   n
//	header       n bytes:
//	    saved at       int64   unix nanoseconds
//	    secret hash    32 bytes  SecretHash(torrent_pass_private_key), never the secret
//	    writer         16 bytes  the commit marker's writer id (xbt_tracker_writers.writer)
//	    seq            uint64    that writer's last committed sequence number at the final flush
//	    database       uint16 length + bytes: DATABASE()
//	    server         uint16 length + bytes: @@server_uuid, or @@hostname:@@port
//	records, one per torrent with peers:
//	    'T', info_hash (20 bytes), fid uint32, peer count uvarint, then per peer:
//	        flags     byte     1: IPv6, 2: completion counted
//	        uid       uvarint
//	        age       varint   saved at (seconds) - last seen (seconds)
//	        uploaded, downloaded, left   uvarint each
//	        peer id   20 bytes
//	        port      uint16 big-endian
//	        address   4 bytes (IPv4) or 16 (IPv6)
//	'E'
//	torrents     uint64
//	peers        uint64
//	checksum     uint32   CRC-32C (Castagnoli) of every byte before it
//
// A file is written to a temporary file in the same directory, synced, and
// renamed over the old one (then the directory is synced), so a reader sees
// the old file or the new one, never a part. Open checks the magic, the
// version, the checksum and the whole structure before it hands out a
// single record, so a corrupt, truncated or foreign-format file is refused
// as a whole.
package statefile

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// Version is the format version this package writes and reads.
const Version = 1

var magic = [8]byte{'X', 'B', 'T', 'S', 'T', 'A', 'T', 'E'}

const (
	tagTorrent byte = 'T'
	tagEnd     byte = 'E'

	peerV6      byte = 1
	peerCounted byte = 2

	prefixLen  = 16        // magic, version, header size
	trailerLen = 8 + 8 + 4 // torrents, peers, checksum
	maxHeader  = 1 << 16
	// minPeerLen is the smallest encoded peer: flags, five one-byte
	// varints (uid, age, uploaded, downloaded, left), peer id, port, IPv4.
	minPeerLen = 1 + 5 + 20 + 2 + 4
	bufSize    = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header is what a state file says about itself: when it was saved and
// what it belongs to. Torrents and Peers come from the file's trailer (zero
// in the Header given to Create).
type Header struct {
	SavedAt    time.Time
	SecretHash [32]byte
	Writer     [16]byte // commit marker: the writer id
	Seq        uint64   // commit marker: its last committed sequence number
	Database   string
	Server     string

	Torrents, Peers uint64
}

// SecretHash identifies a torrent_pass_private_key without revealing it: a
// domain-separated SHA-256, so a state file never holds the secret.
func SecretHash(secret string) [32]byte {
	return sha256.Sum256([]byte("xbt-tracker state file secret\x00" + secret))
}

// FormatError is a file that is not a valid state file of this version:
// corrupt, truncated, another format or another version.
type FormatError struct{ Reason string }

func (e *FormatError) Error() string { return "state file: " + e.Reason }

func formatErr(format string, args ...any) error {
	return &FormatError{Reason: fmt.Sprintf(format, args...)}
}

// ---------------------------------------------------------------- writing

// crcWriter checksums what goes through it to the file.
type crcWriter struct {
	w   io.Writer
	crc uint32
	n   int64
}

func (c *crcWriter) Write(p []byte) (int, error) {
	c.crc = crc32.Update(c.crc, castagnoli, p)
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Writer writes one state file. Create it, call Torrent for every torrent
// with peers, then Commit (or Abort).
type Writer struct {
	f        *os.File
	path     string
	cw       crcWriter
	bw       *bufio.Writer
	savedSec int64
	torrents uint64
	peers    uint64
	scratch  [64]byte
	err      error
}

// Create starts a state file for path: a temporary file in path's directory
// that Commit renames over path.
func Create(path string, h Header) (*Writer, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, base+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("state file: %w", err)
	}
	w := &Writer{f: f, path: path, savedSec: h.SavedAt.Unix()}
	w.cw.w = f
	w.bw = bufio.NewWriterSize(&w.cw, bufSize)

	var hb []byte
	hb = binary.LittleEndian.AppendUint64(hb, uint64(h.SavedAt.UnixNano()))
	hb = append(hb, h.SecretHash[:]...)
	hb = append(hb, h.Writer[:]...)
	hb = binary.LittleEndian.AppendUint64(hb, h.Seq)
	for _, s := range []string{h.Database, h.Server} {
		if len(s) > 1024 {
			s = s[:1024]
		}
		hb = binary.LittleEndian.AppendUint16(hb, uint16(len(s)))
		hb = append(hb, s...)
	}
	var pre [prefixLen]byte
	copy(pre[:], magic[:])
	binary.LittleEndian.PutUint32(pre[8:], Version)
	binary.LittleEndian.PutUint32(pre[12:], uint32(len(hb)))
	w.write(pre[:])
	w.write(hb)
	if w.err != nil {
		w.Abort()
		return nil, w.err
	}
	return w, nil
}

func (w *Writer) write(p []byte) {
	if w.err == nil {
		_, w.err = w.bw.Write(p)
	}
}

// Torrent writes one torrent's peers (none: nothing is written).
func (w *Writer) Torrent(ih tracker.InfoHash, fid uint32, peers []tracker.PeerState) error {
	if w.err != nil {
		return w.err
	}
	if len(peers) == 0 {
		return nil
	}
	b := w.scratch[:0]
	b = append(b, tagTorrent)
	b = append(b, ih[:]...)
	b = binary.LittleEndian.AppendUint32(b, fid)
	b = binary.AppendUvarint(b, uint64(len(peers)))
	w.write(b)
	for i := range peers {
		p := &peers[i]
		b = w.scratch[:0]
		var flags byte
		a := p.Addr.Unmap()
		if a.Is6() {
			flags |= peerV6
		}
		if p.Counted {
			flags |= peerCounted
		}
		b = append(b, flags)
		b = binary.AppendUvarint(b, uint64(p.UID))
		b = binary.AppendVarint(b, w.savedSec-int64(p.LastSeen))
		b = binary.AppendUvarint(b, p.Uploaded)
		b = binary.AppendUvarint(b, p.Downloaded)
		b = binary.AppendUvarint(b, p.Left)
		w.write(b) // at most 1+5+10+3*10 bytes: within scratch
		w.write(p.ID[:])
		b = binary.BigEndian.AppendUint16(w.scratch[:0], p.Port)
		if flags&peerV6 != 0 {
			a16 := a.As16()
			b = append(b, a16[:]...)
		} else {
			var a4 [4]byte
			if a.Is4() {
				a4 = a.As4()
			}
			b = append(b, a4[:]...)
		}
		w.write(b)
	}
	w.torrents++
	w.peers += uint64(len(peers))
	return w.err
}

// Counts returns the torrents and peers written so far.
func (w *Writer) Counts() (torrents, peers uint64) { return w.torrents, w.peers }

// Commit finishes the file: the end record, the counts, the checksum, fsync,
// rename over the path, and a sync of the directory. It returns the file's
// size. On error the temporary file is removed and the path left as it was.
func (w *Writer) Commit() (int64, error) {
	b := w.scratch[:0]
	b = append(b, tagEnd)
	b = binary.LittleEndian.AppendUint64(b, w.torrents)
	b = binary.LittleEndian.AppendUint64(b, w.peers)
	w.write(b)
	if w.err == nil {
		w.err = w.bw.Flush()
	}
	if w.err == nil {
		var c [4]byte
		binary.LittleEndian.PutUint32(c[:], w.cw.crc)
		_, w.err = w.f.Write(c[:])
	}
	if w.err == nil {
		w.err = w.f.Sync()
	}
	if w.err != nil {
		err := w.err
		w.Abort()
		return 0, fmt.Errorf("state file: %w", err)
	}
	size := w.cw.n + 4
	tmp := w.f.Name()
	if err := w.f.Close(); err != nil {
		_ = os.Remove(tmp)
		return 0, fmt.Errorf("state file: %w", err)
	}
	if err := os.Rename(tmp, w.path); err != nil {
		_ = os.Remove(tmp)
		return 0, fmt.Errorf("state file: %w", err)
	}
	syncDir(filepath.Dir(w.path))
	return size, nil
}

// Abort removes the temporary file.
func (w *Writer) Abort() {
	if w.f != nil {
		name := w.f.Name()
		_ = w.f.Close()
		_ = os.Remove(name)
		w.f = nil
	}
	if w.err == nil {
		w.err = errors.New("aborted")
	}
}

// syncDir makes a rename in dir durable (best effort: not every file
// system supports it).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// ---------------------------------------------------------------- reading

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
	r.h.SavedAt = time.Unix(0, int64(binary.LittleEndian.Uint64(hb)))
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
	if n == 0 || n > uint64(r.left/minPeerLen) {
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
