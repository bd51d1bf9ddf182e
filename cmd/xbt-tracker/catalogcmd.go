package main

import (
	"fmt"

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
		},
	}
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
