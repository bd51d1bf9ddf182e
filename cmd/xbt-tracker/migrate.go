package main

import (
	gosql "database/sql"
	"fmt"
	"strconv"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/urfave/cli/v2"

	"github.com/xbt-tracker/xbt-tracker/migrations"
	xsql "github.com/xbt-tracker/xbt-tracker/sql"
)

func (e *env) migrateCommand() *cli.Command {
	return &cli.Command{
		Name:  "migrate",
		Usage: "create or update the xbt_* tables (goose migrations embedded in the binary)",
		Description: "Safe on a database that XBT's own schema created: tables are created only when absent, " +
			"missing optional columns are added, no data is dropped. --extras selects the opt-in set instead: " +
			"columns added to catalog tables (xbt_files_users.timespent, leechtime; up_multi, down_multi on xbt_files and xbt_users), never applied by plain \"migrate up\". See docs/ADOPTING.md.",
		Subcommands: []*cli.Command{
			{
				Name:  "up",
				Usage: "apply every pending migration",
				Flags: append(connFlags(), extrasFlag(), &cli.BoolFlag{Name: "create-database", Usage: "create the dsn's database first if it does not exist"}),
				Action: func(c *cli.Context) error {
					if c.Bool("create-database") {
						_, cfg, err := e.operatorConfig(c)
						if err != nil {
							return err
						}
						created, err := xsql.CreateDatabase(c.Context, cfg.DSN)
						if err != nil {
							return err
						}
						if created {
							fmt.Fprintln(e.stdout, "created the database")
						}
					}
					_, _, db, err := e.withDB(c)
					if err != nil {
						return err
					}
					defer db.Close()
					res, err := migrationSet(c).Up(c.Context, db)
					e.printResults(res)
					if err != nil {
						return err
					}
					if len(res) == 0 {
						fmt.Fprintln(e.stdout, "no pending migrations")
					}
					return nil
				},
			},
			{
				Name:  "down",
				Usage: "roll back the latest migration, or every migration above --to",
				Flags: append(connFlags(), extrasFlag(), &cli.StringFlag{Name: "to", Usage: "roll back down to this version (0 = everything)"}),
				Action: e.withDBAction(func(c *cli.Context, db *gosql.DB) error {
					if !c.IsSet("to") {
						r, err := migrationSet(c).Down(c.Context, db)
						if r != nil {
							e.printResults([]*goose.MigrationResult{r})
						}
						return err
					}
					to, err := strconv.ParseInt(c.String("to"), 10, 64)
					if err != nil || to < 0 {
						return fmt.Errorf("--to = %q: want a migration version, 0 or more", c.String("to"))
					}
					res, err := migrationSet(c).DownTo(c.Context, db, to)
					e.printResults(res)
					return err
				}),
			},
			{
				Name:  "status",
				Usage: "list every migration and whether it is applied",
				Flags: append(connFlags(), extrasFlag()),
				Action: e.withDBAction(func(c *cli.Context, db *gosql.DB) error {
					st, err := migrationSet(c).Status(c.Context, db)
					if err != nil {
						return err
					}
					fmt.Fprintf(e.stdout, "%-8s %-8s %-20s %s\n", "VERSION", "STATE", "APPLIED AT", "FILE")
					for _, s := range st {
						at := "-"
						if !s.AppliedAt.IsZero() {
							at = s.AppliedAt.UTC().Format(time.DateTime)
						}
						fmt.Fprintf(e.stdout, "%-8d %-8s %-20s %s\n", s.Source.Version, s.State, at, s.Source.Path)
					}
					return nil
				}),
			},
			{
				Name:  "version",
				Usage: "print the current schema version",
				Flags: append(connFlags(), extrasFlag()),
				Action: e.withDBAction(func(c *cli.Context, db *gosql.DB) error {
					v, err := migrationSet(c).Version(c.Context, db)
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

// extrasFlag selects the opt-in set (migrations.Extras): columns added to
// catalog tables, never applied by plain "migrate up".
func extrasFlag() cli.Flag {
	return &cli.BoolFlag{Name: "extras", Usage: "the opt-in set instead: columns on catalog tables (xbt_files_users.timespent, leechtime; up_multi, down_multi on xbt_files and xbt_users); see docs/ADOPTING.md"}
}

func migrationSet(c *cli.Context) migrations.Set {
	if c.Bool("extras") {
		return migrations.Extras
	}
	return migrations.Main
}

func (e *env) printResults(res []*goose.MigrationResult) {
	for _, r := range res {
		if r == nil || r.Source == nil {
			continue
		}
		state := "OK"
		if r.Error != nil {
			state = "FAILED: " + r.Error.Error()
		}
		fmt.Fprintf(e.stdout, "%s %d %s (%s) %s\n", r.Direction, r.Source.Version, r.Source.Path, r.Duration.Round(time.Millisecond), state)
	}
}
