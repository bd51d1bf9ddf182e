// Package metainfo reads, checks and rewrites .torrent files (BEP 3) for the
// catalog's steps of the torrent subcommand: the info_hash of an upload,
// forcing private=1, and a user's copy with a passkey announce URL.
//
// The info dictionary is kept as the exact bytes of the file, so the
// info_hash is the SHA-1 of what the uploader hashed; every other top-level
// key is kept as its raw value and written back unchanged (bencode
// dictionaries are sorted by key on output).
package metainfo

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/zeebo/bencode"
)

// MaxBytes bounds the .torrent files ReadFile reads: a metainfo file of a
// 1 TiB torrent with 16 MiB pieces is about 1.3 MB.
const MaxBytes = 64 << 20

// Torrent is a parsed .torrent.
type Torrent struct {
	top  map[string]bencode.RawMessage
	info bencode.RawMessage

	InfoHash    [20]byte
	Private     bool
	Name        string
	Length      int64 // total payload bytes
	Files       int   // 1 for a single-file torrent
	PieceLength int64
	Pieces      int
	Announce    string
}

// infoDict is what is checked in the info dictionary.
type infoDict struct {
	Name        *string     `bencode:"name"`
	PieceLength *int64      `bencode:"piece length"`
	Pieces      *[]byte     `bencode:"pieces"`
	Length      *int64      `bencode:"length"`
	Files       *[]fileDict `bencode:"files"`
	Private     *int64      `bencode:"private"`
	MetaVersion *int64      `bencode:"meta version"`
}

type fileDict struct {
	Length *int64   `bencode:"length"`
	Path   []string `bencode:"path"`
}

// ReadFile reads and checks a .torrent file. Every error is one line
// naming the file.
func ReadFile(path string) (*Torrent, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > MaxBytes {
		return nil, fmt.Errorf("%s: not a .torrent: larger than %d MiB", path, MaxBytes>>20)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: not a valid .torrent: %w", path, err)
	}
	return t, nil
}

// decodeAll decodes exactly one bencoded value that must fill data.
func decodeAll(data []byte, v any) (err error) {
	defer func() {
		// The decoder panics on a few impossible states; never let a bad
		// file crash the caller.
		if r := recover(); r != nil {
			err = fmt.Errorf("bencode: %v", r)
		}
	}()
	d := bencode.NewDecoder(bytes.NewReader(data))
	if err := d.Decode(v); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return errors.New("truncated (the bencoded data ends early)")
		}
		return fmt.Errorf("bencode: %w", err)
	}
	if n := d.BytesParsed(); n != len(data) {
		return fmt.Errorf("%d bytes of garbage after the bencoded dictionary", len(data)-n)
	}
	return nil
}

// Parse checks the bytes of a .torrent file.
func Parse(data []byte) (*Torrent, error) {
	if len(data) == 0 {
		return nil, errors.New("the file is empty")
	}
	if data[0] != 'd' {
		return nil, errors.New("it does not start with a bencoded dictionary ('d')")
	}
	// One strict pass over everything (integers and lengths included), then
	// the raw values to write back.
	var all map[string]any
	if err := decodeAll(data, &all); err != nil {
		return nil, err
	}
	t := &Torrent{}
	if err := decodeAll(data, &t.top); err != nil {
		return nil, err
	}
	info, ok := t.top["info"]
	if !ok {
		return nil, errors.New("no info dictionary")
	}
	if len(info) == 0 || info[0] != 'd' {
		return nil, errors.New("info is not a dictionary")
	}
	if a, ok := t.top["announce"]; ok {
		if err := bencode.DecodeBytes(a, &t.Announce); err != nil {
			return nil, errors.New("announce is not a string")
		}
	}
	if err := t.setInfo(info); err != nil {
		return nil, err
	}
	return t, nil
}

// setInfo checks an info dictionary and makes it the torrent's.
func (t *Torrent) setInfo(info bencode.RawMessage) error {
	var d infoDict
	if err := decodeAll(info, &d); err != nil {
		return fmt.Errorf("info dictionary: %w", err)
	}
	switch {
	case d.Name == nil:
		return errors.New("info dictionary has no name")
	case d.MetaVersion != nil && *d.MetaVersion == 2 && d.Pieces == nil:
		return errors.New("a BitTorrent v2-only torrent: XBT trackers key torrents by the v1 (SHA-1) info_hash; make a v1 or hybrid torrent")
	case d.PieceLength == nil || *d.PieceLength <= 0:
		return errors.New("info dictionary has no positive piece length")
	case d.Pieces == nil || len(*d.Pieces) == 0 || len(*d.Pieces)%20 != 0:
		return errors.New("info dictionary's pieces is missing or not a multiple of 20 bytes")
	case d.Length == nil && d.Files == nil:
		return errors.New("info dictionary has neither length nor files")
	case d.Length != nil && d.Files != nil:
		return errors.New("info dictionary has both length and files")
	}
	var total int64
	files := 1
	if d.Length != nil {
		total = *d.Length
	} else {
		files = len(*d.Files)
		if files == 0 {
			return errors.New("info dictionary's files list is empty")
		}
		for i, f := range *d.Files {
			if f.Length == nil || *f.Length < 0 || len(f.Path) == 0 {
				return fmt.Errorf("info dictionary's files[%d] lacks a length or a path", i)
			}
			total += *f.Length
		}
	}
	if total < 0 {
		return errors.New("info dictionary has a negative length")
	}
	pieces := len(*d.Pieces) / 20
	if want := (total + *d.PieceLength - 1) / *d.PieceLength; int64(pieces) != want {
		return fmt.Errorf("info dictionary has %d pieces for %d bytes in pieces of %d (want %d)", pieces, total, *d.PieceLength, want)
	}
	t.info = info
	t.top["info"] = info
	t.InfoHash = sha1.Sum(info)
	t.Private = d.Private != nil && *d.Private == 1
	t.Name = *d.Name
	t.Length = total
	t.Files = files
	t.PieceLength = *d.PieceLength
	t.Pieces = pieces
	return nil
}

// MakePrivate sets private=1 in the info dictionary, which changes the
// info_hash. Every other key of the dictionary keeps its exact bytes.
func (t *Torrent) MakePrivate() error {
	var d map[string]bencode.RawMessage
	if err := decodeAll(t.info, &d); err != nil {
		return fmt.Errorf("info dictionary: %w", err)
	}
	d["private"] = bencode.RawMessage("i1e")
	info, err := bencode.EncodeBytes(d)
	if err != nil {
		return err
	}
	return t.setInfo(info)
}

// SetAnnounce puts url in announce and removes announce-list, or, with
// keep, puts a first tier holding url in front of the existing tiers
// (BEP 12 clients use announce-list and ignore announce when both exist).
func (t *Torrent) SetAnnounce(url string, keep bool) error {
	a, err := bencode.EncodeBytes(url)
	if err != nil {
		return err
	}
	t.top["announce"] = a
	t.Announce = url
	old, had := t.top["announce-list"]
	delete(t.top, "announce-list")
	if !keep || !had {
		return nil
	}
	var tiers [][]string
	if err := bencode.DecodeBytes(old, &tiers); err != nil {
		return errors.New("announce-list is not a list of lists of strings")
	}
	list, err := bencode.EncodeBytes(append([][]string{{url}}, tiers...))
	if err != nil {
		return err
	}
	t.top["announce-list"] = list
	return nil
}

// Encode returns the torrent's bytes.
func (t *Torrent) Encode() ([]byte, error) {
	return bencode.EncodeBytes(t.top)
}

// WriteFile writes data to a temporary file beside path and renames it
// over path, so a reader never sees half a .torrent.
func WriteFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
