package main

import (
	gosql "database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/xbt-tracker/xbt-tracker/internal/config"
	"github.com/xbt-tracker/xbt-tracker/passkey"
	xsql "github.com/xbt-tracker/xbt-tracker/sql"
)

func (e *env) passkeyCommand() *cli.Command {
	hashFlag := &cli.StringFlag{Name: "info-hash", Usage: "the torrent's info_hash, 40 hex digits", Required: true}
	versionFlag := &cli.StringFlag{Name: "pass-version", Usage: "torrent_pass_version to use instead of the user's row"}
	return &cli.Command{
		Name:  "passkey",
		Usage: "derive or check XBT passkeys (secret and versions from the database, or from flags)",
		Subcommands: []*cli.Command{
			{
				Name:      "url",
				Usage:     "print a user's announce URL for one torrent",
				ArgsUsage: " ",
				Flags: append(passkeyFlags(), hashFlag, versionFlag,
					&cli.StringFlag{Name: "uid", Usage: "the user's uid", Required: true},
					&cli.StringFlag{Name: "base", Usage: "the tracker's public base URL (default http://127.0.0.1:<first listen_port>)"},
				),
				Action: func(c *cli.Context) error {
					uid, err := parseUID(c.String("uid"))
					if err != nil {
						return err
					}
					ih, err := parseInfoHash(c.String("info-hash"))
					if err != nil {
						return err
					}
					pc, err := e.passkeyContext(c, uid)
					if err != nil {
						return err
					}
					pk := passkey.Derive(pc.secret, pc.version, uid, ih)
					base := c.String("base")
					if base == "" {
						base = fmt.Sprintf("http://127.0.0.1:%d", pc.cfg.ListenPorts[0])
					}
					fmt.Fprintln(e.stdout, passkey.AnnounceURL(base, pk))
					return nil
				},
			},
			{
				Name:      "check",
				Usage:     "say whose a passkey is and whether it is valid for a torrent",
				ArgsUsage: "<passkey>",
				Flags:     append(passkeyFlags(), hashFlag, versionFlag),
				Action: func(c *cli.Context) error {
					pk := c.Args().First()
					if len(pk) != passkey.Len {
						return fmt.Errorf("passkey %q: want exactly %d characters", pk, passkey.Len)
					}
					ih, err := parseInfoHash(c.String("info-hash"))
					if err != nil {
						return err
					}
					uid, ok := passkey.UID([]byte(pk))
					if !ok {
						return fmt.Errorf("passkey %q: the first 8 characters are not hex, so it names no uid", pk)
					}
					pc, err := e.passkeyContext(c, uid)
					if err != nil {
						return err
					}
					if pc.found && passkey.Verify(pc.secret, pc.version, uid, &ih, []byte(pk)) {
						fmt.Fprintf(e.stdout, "valid: uid %d, torrent_pass_version %d, info_hash %x\n", uid, pc.version, ih)
						return nil
					}
					if pc.legacyUID != 0 {
						fmt.Fprintf(e.stdout, "valid: uid %d by its legacy torrent_pass (exact match)\n", pc.legacyUID)
						return nil
					}
					switch {
					case pc.db && !pc.found:
						return fmt.Errorf("invalid: passkey names uid %d, which is not in the users table", uid)
					default:
						return fmt.Errorf("invalid: passkey names uid %d but does not match torrent_pass_version %d and info_hash %x (revoked, or for another torrent)", uid, pc.version, ih)
					}
				},
			},
		},
	}
}

type passkeyContext struct {
	cfg       config.Config
	secret    string
	version   int
	found     bool   // the uid's row exists (or no database was asked)
	db        bool   // the database was consulted
	legacyUID uint32 // uid whose torrent_pass equals the passkey argument
}

// passkeyContext finds the secret and the user's torrent_pass_version: from
// the database when a dsn is configured, with flags taking precedence.
func (e *env) passkeyContext(c *cli.Context, uid uint32) (passkeyContext, error) {
	src, cfg, err := e.operatorConfig(c)
	if err != nil {
		return passkeyContext{}, err
	}
	pc := passkeyContext{cfg: cfg, found: true}
	if cfg.DSN != "" {
		db, err := e.openDB(c.Context, cfg)
		if err != nil {
			return pc, err
		}
		defer db.Close()
		rows, err := xsql.LoadConfigRows(c.Context, db, xsql.DefaultNames().Config)
		if err != nil {
			return pc, err
		}
		if pc.cfg, err = src.Build(rows); err != nil {
			return pc, err
		}
		schema, _, err := xsql.CheckSchema(c.Context, db, names(pc.cfg))
		if err != nil {
			return pc, err
		}
		u, err := xsql.LookupUser(c.Context, db, schema, uid)
		switch {
		case errors.Is(err, gosql.ErrNoRows):
			pc.found = false
		case err != nil:
			return pc, err
		default:
			pc.version = u.TorrentPassVersion
		}
		pc.db = true
		if pk := c.Args().First(); len(pk) == passkey.Len {
			if lu, err := xsql.LookupUserByTorrentPass(c.Context, db, schema, pk); err == nil {
				pc.legacyUID = lu.UID
			} else if !errors.Is(err, gosql.ErrNoRows) {
				return pc, err
			}
		}
	}
	pc.secret = pc.cfg.TorrentPassPrivateKey
	if c.IsSet("pass-version") {
		v, err := strconv.Atoi(c.String("pass-version"))
		if err != nil {
			return pc, fmt.Errorf("--pass-version = %q: want a whole number", c.String("pass-version"))
		}
		pc.version = v
	}
	if pc.secret == "" {
		return pc, fmt.Errorf("no torrent_pass_private_key: give --dsn of a database where `xbt-tracker serve` has run once, or --torrent-pass-private-key")
	}
	return pc, nil
}

func parseInfoHash(s string) ([20]byte, error) {
	var ih [20]byte
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != 20 {
		return ih, fmt.Errorf("--info-hash = %q: want 40 hex digits", s)
	}
	copy(ih[:], b)
	return ih, nil
}
