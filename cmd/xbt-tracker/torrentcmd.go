package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/xbt-tracker/xbt-tracker/internal/metainfo"
	"github.com/xbt-tracker/xbt-tracker/passkey"
	xsql "github.com/xbt-tracker/xbt-tracker/sql"
)

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
		Flags: append(passkeyFlags(),
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
			mi, err := metainfo.ReadFile(c.Args().First())
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "info_hash %x\nprivate %d\nname %s\nlength %d\nfiles %d\npiece_length %d\npieces %d\nannounce %s\n",
				mi.InfoHash, b2i(mi.Private), mi.Name, mi.Length, mi.Files, mi.PieceLength, mi.Pieces, mi.Announce)
			return nil
		},
	}
	del := &cli.Command{
		Name: "delete",
		Usage: "delete a torrent as a catalog does (UPDATE xbt_files SET flags = 1 WHERE info_hash = UNHEX(?)): " +
			"the tracker forgets it and deletes the row; exit status 1 when there is no such torrent",
		Flags:  append(dbFlags(), &cli.StringFlag{Name: "info-hash", Usage: "40 hex digits", Required: true}),
		Action: e.torrentDelete,
	}
	return &cli.Command{
		Name:        "torrent",
		Usage:       "read .torrent files, write each user's passkey-stamped copy and delete torrents, as a catalog does",
		Subcommands: []*cli.Command{stamp, info, del},
	}
}

// torrentDelete runs the catalog's delete step (sql.FlagFileDeleted).
func (e *env) torrentDelete(c *cli.Context) error {
	ih, err := parseInfoHash(c.String("info-hash"))
	if err != nil {
		return err
	}
	_, cfg, db, err := e.withDB(c)
	if err != nil {
		return err
	}
	defer db.Close()
	n := names(cfg)
	fid, already, err := xsql.FlagFileDeleted(c.Context, db, n, ih)
	if err != nil {
		return err
	}
	if already {
		fmt.Fprintf(e.stdout, "fid %d info_hash %x: already flags = 1 in %s; the tracker deletes the row at its next reload\n", fid, ih, n.Files)
		return nil
	}
	fmt.Fprintf(e.stdout, "fid %d info_hash %x: set flags = 1 in %s; the tracker forgets the torrent and deletes the row (within change_poll_interval, or read_db_interval without change tracking)\n", fid, ih, n.Files)
	return nil
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
	mi, err := metainfo.ReadFile(path)
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
		if err := mi.MakePrivate(); err != nil {
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
		if err := mi.SetAnnounce(announce, c.Bool("announce-list-keep")); err != nil {
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
	data, err := mi.Encode()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if out == "-" {
		_, err := e.stdout.Write(data)
		return err
	}
	if err := metainfo.WriteFile(out, data); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %s\n", out)
	return nil
}
