package statefile

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

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
	var hb []byte
	hb = binary.LittleEndian.AppendUint64(hb, uint64(h.SavedAt.UnixNano()))
	hb = append(hb, h.SecretHash[:]...)
	hb = append(hb, h.Writer[:]...)
	hb = binary.LittleEndian.AppendUint64(hb, h.Seq)
	for _, f := range [...]struct{ what, s string }{{"database name", h.Database}, {"server identity", h.Server}} {
		n := len(f.s)
		if n > maxHeaderString {
			return nil, fmt.Errorf("state file: the %s is %d bytes, the format allows at most %d", f.what, n, maxHeaderString)
		}
		hb = binary.LittleEndian.AppendUint16(hb, uint16(n))
		hb = append(hb, f.s...)
	}
	f, err := os.CreateTemp(dir, base+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("state file: %w", err)
	}
	w := &Writer{f: f, path: path, savedSec: h.SavedAt.Unix()}
	w.cw.w = f
	w.bw = bufio.NewWriterSize(&w.cw, bufSize)

	var pre [prefixLen]byte
	copy(pre[:], magic[:])
	binary.LittleEndian.PutUint32(pre[8:], Version)
	binary.LittleEndian.PutUint32(pre[12:], uint32(len(hb))) //nolint:gosec // G115: at most 64 fixed bytes plus two strings of maxHeaderString bytes
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
