package main

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"
	"github.com/zeebo/bencode"

	"github.com/xbt-tracker/xbt-tracker/passkey"
	xsql "github.com/xbt-tracker/xbt-tracker/sql"
)

// maxTorrentBytes bounds the .torrent files the torrent command reads: a
// metainfo file of a 1 TiB torrent with 16 MiB pieces is about 1.3 MB.
const maxTorrentBytes = 64 << 20

// torrentCommand is the catalog's download step: the uploaded .torrent
// (made private, registered) handed to one user with that user's passkey in
// its announce URL.
func (e *env) torrentCommand() *cli.Command {
	stamp := &cli.Command{
		Name:  "stamp",
		Usage: "write a user's copy of a .torrent: announce = the user's passkey URL, announce-list removed",
		Description: "Flags go before FILE. What a catalog does when a user downloads a torrent:\n" +
			"   xbt-tracker torrent stamp --register --uid 7 --base https://tracker.example.org -o user7.torrent upload.torrent\n" +
			"--private forces private=1 into the info dictionary, which changes the info_hash (a warning says so and\n" +
			"prints the new one): do it once, at upload time, and hand the uploader the new file to seed.",
		ArgsUsage: "FILE",
		Flags: append(dbFlags(),
			&cli.StringFlag{Name: "uid", Usage: "the user whose passkey goes into the announce URL (secret and torrent_pass_version from the database, or --torrent-pass-private-key and --pass-version)"},
			&cli.StringFlag{Name: "base", Usage: "the tracker's public base URL (default http://127.0.0.1:<first listen_port>)"},
			&cli.StringFlag{Name: "pass-version", Usage: "torrent_pass_version to use instead of the user's row"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "where to write the user's copy (- for standard output)"},
			&cli.BoolFlag{Name: "private", Usage: "force private=1 in the info dictionary (changes the info_hash)"},
			&cli.BoolFlag{Name: "register", Usage: "register the torrent in xbt_files if absent (the SQL of `file add`)"},
			&cli.BoolFlag{Name: "announce-list-keep", Usage: "keep the announce-list, behind a first tier holding the passkey URL (default: remove it)"},
		),
		Action: e.torrentStamp,
	}
	info := &cli.Command{
		Name:      "info",
		Usage:     "print a .torrent's info_hash, private flag, name, size and announce URL",
		ArgsUsage: "FILE",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("torrent info: want exactly one FILE, got %d arguments", c.NArg())
			}
			mi, err := readTorrent(c.Args().First())
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "info_hash %x\nprivate %d\nname %s\nlength %d\nfiles %d\npiece_length %d\npieces %d\nannounce %s\n",
				mi.InfoHash, b2i(mi.Private), mi.Name, mi.Length, mi.Files, mi.PieceLength, mi.Pieces, mi.Announce)
			return nil
		},
	}
	return &cli.Command{
		Name:        "torrent",
		Usage:       "read .torrent files and write each user's passkey-stamped copy, as a catalog does",
		Subcommands: []*cli.Command{stamp, info},
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (e *env) torrentStamp(c *cli.Context) error {
	if c.NArg() != 1 {
		if c.NArg() > 1 && strings.HasPrefix(c.Args().Get(1), "-") {
			return fmt.Errorf("torrent stamp: put the flags before FILE (%s came after it)", c.Args().Get(1))
		}
		return fmt.Errorf("torrent stamp: want exactly one FILE, got %d arguments", c.NArg())
	}
	path := c.Args().First()
	mi, err := readTorrent(path)
	if err != nil {
		return err
	}
	out := c.String("output")
	if out == "" && (c.IsSet("uid") || c.Bool("private")) {
		return errors.New("torrent stamp: give --output FILE (or --output - for standard output)")
	}

	// With -o - the copy is standard output's only content: the report
	// lines go to standard error.
	report := e.stdout
	if out == "-" {
		report = e.stderr
	}

	if c.Bool("private") && !mi.Private {
		old := mi.InfoHash
		if err := mi.makePrivate(); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		fmt.Fprintf(e.stderr, "warning: --private set private=1 in the info dictionary: the info_hash changed from %x to %x; the uploader must seed this new file\n", old, mi.InfoHash)
	}

	// Derive the passkey before writing anything to the database, so a
	// missing secret or a bad --uid registers nothing.
	var announce string
	if c.IsSet("uid") {
		uid, err := parseUID(c.String("uid"))
		if err != nil {
			return err
		}
		pc, err := e.passkeyContext(c, uid)
		if err != nil {
			return err
		}
		if pc.db && !pc.found {
			return fmt.Errorf("no user with uid %d in %s", uid, pc.cfg.TableUsers)
		}
		base := c.String("base")
		if base == "" {
			base = fmt.Sprintf("http://127.0.0.1:%d", pc.cfg.ListenPorts[0])
		}
		announce = passkey.AnnounceURL(base, passkey.Derive(pc.secret, pc.version, uid, mi.InfoHash))
		if err := mi.setAnnounce(announce, c.Bool("announce-list-keep")); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	} else if c.IsSet("base") || c.IsSet("pass-version") {
		return errors.New("torrent stamp: --base and --pass-version need --uid")
	}

	fmt.Fprintf(report, "info_hash %x\n", mi.InfoHash)
	if c.Bool("register") {
		_, cfg, db, err := e.withDB(c)
		if err != nil {
			return err
		}
		defer db.Close()
		fid, err := xsql.InsertFile(c.Context, db, names(cfg), mi.InfoHash)
		if err != nil {
			return err
		}
		fmt.Fprintf(report, "fid %d\n", fid)
	}
	if announce != "" {
		fmt.Fprintf(report, "announce %s\n", announce)
	}
	if out == "" {
		return nil
	}
	data, err := mi.encode()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if out == "-" {
		_, err := e.stdout.Write(data)
		return err
	}
	if err := writeFileAtomic(out, data); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %s\n", out)
	return nil
}

// writeFileAtomic writes data to a temporary file beside path and renames
// it over path, so a reader never sees half a .torrent.
func writeFileAtomic(path string, data []byte) error {
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

// metainfo is a parsed .torrent (BEP 3). The info dictionary is kept as the
// exact bytes of the file, so the info_hash is the SHA-1 of what the uploader
// hashed; the other top-level keys are kept as raw values and written back
// unchanged (bencode dictionaries are sorted by key on output).
type metainfo struct {
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

// infoDict is what the torrent command checks in the info dictionary.
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

// readTorrent reads and checks a .torrent file. Every error is one line
// naming the file.
func readTorrent(path string) (*metainfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxTorrentBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > maxTorrentBytes {
		return nil, fmt.Errorf("%s: not a .torrent: larger than %d MiB", path, maxTorrentBytes>>20)
	}
	mi, err := parseTorrent(data)
	if err != nil {
		return nil, fmt.Errorf("%s: not a valid .torrent: %w", path, err)
	}
	return mi, nil
}

// decodeAll decodes exactly one bencoded value that must fill data.
func decodeAll(data []byte, v any) (err error) {
	defer func() {
		// The decoder panics on a few impossible states; never let a bad
		// file crash the command.
		if r := recover(); r != nil {
			err = fmt.Errorf("bencode: %v", r)
		}
	}()
	d := bencode.NewDecoder(bytes.NewReader(data))
	if err := d.Decode(v); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return errors.New("truncated (the bencoded data ends early)")
		}
		return fmt.Errorf("bencode: %v", err)
	}
	if n := d.BytesParsed(); n != len(data) {
		return fmt.Errorf("%d bytes of garbage after the bencoded dictionary", len(data)-n)
	}
	return nil
}

func parseTorrent(data []byte) (*metainfo, error) {
	if len(data) == 0 {
		return nil, errors.New("the file is empty")
	}
	if data[0] != 'd' {
		return nil, errors.New("it does not start with a bencoded dictionary ('d')")
	}
	// One strict pass over everything (integers and lengths included), then
	// the raw values to write back.
	var any map[string]any
	if err := decodeAll(data, &any); err != nil {
		return nil, err
	}
	mi := &metainfo{}
	if err := decodeAll(data, &mi.top); err != nil {
		return nil, err
	}
	info, ok := mi.top["info"]
	if !ok {
		return nil, errors.New("no info dictionary")
	}
	if len(info) == 0 || info[0] != 'd' {
		return nil, errors.New("info is not a dictionary")
	}
	if a, ok := mi.top["announce"]; ok {
		if err := bencode.DecodeBytes(a, &mi.Announce); err != nil {
			return nil, errors.New("announce is not a string")
		}
	}
	if err := mi.setInfo(info); err != nil {
		return nil, err
	}
	return mi, nil
}

// setInfo checks an info dictionary and makes it the torrent's.
func (mi *metainfo) setInfo(info bencode.RawMessage) error {
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
	mi.info = info
	mi.top["info"] = info
	mi.InfoHash = sha1.Sum(info)
	mi.Private = d.Private != nil && *d.Private == 1
	mi.Name = *d.Name
	mi.Length = total
	mi.Files = files
	mi.PieceLength = *d.PieceLength
	mi.Pieces = pieces
	return nil
}

// makePrivate sets private=1 in the info dictionary, which changes the
// info_hash. Every other key of the dictionary keeps its exact bytes.
func (mi *metainfo) makePrivate() error {
	var d map[string]bencode.RawMessage
	if err := decodeAll(mi.info, &d); err != nil {
		return fmt.Errorf("info dictionary: %w", err)
	}
	d["private"] = bencode.RawMessage("i1e")
	info, err := bencode.EncodeBytes(d)
	if err != nil {
		return err
	}
	return mi.setInfo(info)
}

// setAnnounce puts url in announce and removes announce-list, or, with
// keep, puts a first tier holding url in front of the existing tiers
// (BEP 12 clients use announce-list and ignore announce when both exist).
func (mi *metainfo) setAnnounce(url string, keep bool) error {
	a, err := bencode.EncodeBytes(url)
	if err != nil {
		return err
	}
	mi.top["announce"] = a
	mi.Announce = url
	old, had := mi.top["announce-list"]
	delete(mi.top, "announce-list")
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
	mi.top["announce-list"] = list
	return nil
}

// encode writes the torrent back out.
func (mi *metainfo) encode() ([]byte, error) {
	return bencode.EncodeBytes(mi.top)
}
