package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/xbt-tracker/xbt-tracker/internal/config"
	xsql "github.com/xbt-tracker/xbt-tracker/sql"
)

func (e *env) configCommand() *cli.Command {
	noDB := &cli.BoolFlag{Name: "no-db", Usage: "do not read xbt_config even when a dsn is set"}
	printConfig := func(c *cli.Context) error {
		cfg, err := e.effectiveConfig(c)
		if err != nil {
			return err
		}
		return cfg.Write(e.stdout)
	}
	return &cli.Command{
		Name:  "config",
		Usage: "print (also with no subcommand) or check the effective configuration",
		// Bare `xbt-tracker config` is `config print`.
		Flags:  append(config.Flags(), noDB),
		Action: printConfig,
		Subcommands: []*cli.Command{
			{
				Name:   "print",
				Usage:  "print the effective configuration as TOML (secrets masked)",
				Flags:  append(config.Flags(), noDB),
				Action: printConfig,
			},
			{
				Name:  "check",
				Usage: "validate the configuration (file, environment, flags and, with a dsn, xbt_config)",
				Flags: append(config.Flags(), noDB),
				Action: func(c *cli.Context) error {
					if _, err := e.effectiveConfig(c); err != nil {
						return err
					}
					fmt.Fprintln(e.stdout, "configuration is valid")
					return nil
				},
			},
		},
	}
}

// effectiveConfig builds the configuration serve would use: with the
// database's xbt_config rows when a dsn is set (unless --no-db).
func (e *env) effectiveConfig(c *cli.Context) (config.Config, error) {
	src, cfg, err := e.operatorConfig(c)
	if err != nil || cfg.DSN == "" || c.Bool("no-db") {
		return cfg, err
	}
	db, err := e.openDB(c.Context, cfg)
	if err != nil {
		return cfg, err
	}
	defer db.Close()
	rows, err := xsql.LoadConfigRows(c.Context, db, xsql.DefaultNames().Config)
	if err != nil {
		return cfg, err
	}
	return src.Build(rows)
}
