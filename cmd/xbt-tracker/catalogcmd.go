package main

import (
	gosql "database/sql"
	"errors"
	"fmt"
	"strconv"

	"github.com/urfave/cli/v2"

	xsql "github.com/xbt-tracker/xbt-tracker/sql"
)

// userCommand and fileCommand write the same rows a catalog site writes, with
// the same plain SQL, for admins and for the demo.
func (e *env) userCommand() *cli.Command {
	return &cli.Command{
		Name:  "user",
		Usage: "manage xbt_users rows as a catalog would",
		Subcommands: []*cli.Command{
			{
				Name:  "add",
				Usage: "insert a user (every column but torrent_pass takes its default) and print its uid",
				Flags: append(dbFlags(), &cli.StringFlag{Name: "torrent-pass", Usage: "legacy 32-character torrent_pass (optional)"}),
				Action: func(c *cli.Context) error {
					_, cfg, db, err := e.withDB(c)
					if err != nil {
						return err
					}
					defer db.Close()
					uid, err := xsql.InsertUser(c.Context, db, names(cfg), c.String("torrent-pass"))
					if err != nil {
						return err
					}
					fmt.Fprintln(e.stdout, uid)
					return nil
				},
			},
			{
				Name:  "show",
				Usage: "print a user's settings and traffic totals (exit status 1 when there is no such user)",
				Flags: append(dbFlags(), &cli.StringFlag{Name: "uid", Usage: "the user's uid", Required: true}),
				Action: e.userAction(func(c *cli.Context, db *gosql.DB, schema xsql.Schema, uid uint32) error {
					st, err := xsql.LookupUserStats(c.Context, db, schema, uid)
					if err != nil {
						return err
					}
					fmt.Fprintf(e.stdout, "uid %d\nuploaded %d\ndownloaded %d\ntorrent_pass_version %d\ncan_leech %t\nwait_time %d\npeers_limit %d\ntorrents_limit %d\n",
						st.UID, st.Uploaded, st.Downloaded, st.TorrentPassVersion, st.CanLeech, st.WaitTime, st.PeersLimit, st.TorrentsLimit)
					return nil
				}),
			},
			{
				Name: "revoke",
				Usage: "revoke every passkey a user was given (torrent_pass_version + 1, as a catalog does) and print the new version; " +
					"the new passkeys work at once, and the tracker refuses the old ones from the first announce with a new one, " +
					"or within change_poll_interval (read_db_interval without change tracking)",
				Flags: append(dbFlags(), &cli.StringFlag{Name: "uid", Usage: "the user's uid", Required: true}),
				Action: e.userAction(func(c *cli.Context, db *gosql.DB, schema xsql.Schema, uid uint32) error {
					v, err := xsql.RevokeUser(c.Context, db, schema, uid)
					if err != nil {
						return err
					}
					fmt.Fprintln(e.stdout, v)
					return nil
				}),
			},
		},
	}
}

// userAction wraps an action on one existing user (--uid): the database is
// open, the schema checked, and a missing user is one clear error.
func (e *env) userAction(act func(c *cli.Context, db *gosql.DB, schema xsql.Schema, uid uint32) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		uid, err := parseUID(c.String("uid"))
		if err != nil {
			return err
		}
		_, cfg, db, err := e.withDB(c)
		if err != nil {
			return err
		}
		defer db.Close()
		schema, _, err := xsql.CheckSchema(c.Context, db, names(cfg))
		if err != nil {
			return err
		}
		err = act(c, db, schema, uid)
		if errors.Is(err, gosql.ErrNoRows) {
			return fmt.Errorf("no user with uid %d in %s", uid, schema.Users)
		}
		return err
	}
}

// parseUID reads a --uid value.
func parseUID(s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil || v == 0 {
		return 0, fmt.Errorf("--uid = %q: want a user id from 1 to 4294967295", s)
	}
	return uint32(v), nil
}

func (e *env) fileCommand() *cli.Command {
	return &cli.Command{
		Name:  "file",
		Usage: "manage xbt_files rows as a catalog would",
		Subcommands: []*cli.Command{
			{
				Name:  "add",
				Usage: "register a torrent by info_hash and print its fid (the existing fid if already registered)",
				Flags: append(dbFlags(), &cli.StringFlag{Name: "info-hash", Usage: "40 hex digits", Required: true}),
				Action: func(c *cli.Context) error {
					ih, err := parseInfoHash(c.String("info-hash"))
					if err != nil {
						return err
					}
					_, cfg, db, err := e.withDB(c)
					if err != nil {
						return err
					}
					defer db.Close()
					fid, err := xsql.InsertFile(c.Context, db, names(cfg), ih)
					if err != nil {
						return err
					}
					fmt.Fprintln(e.stdout, fid)
					return nil
				},
			},
		},
	}
}
