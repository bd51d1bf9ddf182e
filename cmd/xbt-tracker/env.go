package main

import (
	"context"
	gosql "database/sql"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/xbt-tracker/xbt-tracker/internal/config"
	"github.com/xbt-tracker/xbt-tracker/internal/logging"
	xsql "github.com/xbt-tracker/xbt-tracker/sql"
)

// env is what every subcommand shares: the process's environment and output.
type env struct {
	environ        []string
	stdout, stderr io.Writer
}

// hasEnv reports whether the environment sets name (even to "").
func (e *env) hasEnv(name string) bool {
	for _, kv := range e.environ {
		if strings.HasPrefix(kv, name+"=") {
			return true
		}
	}
	return false
}

// operatorConfig reads the operator's layers (file, environment, flags) and
// builds a configuration without the database, to find the dsn and report
// operator mistakes before anything connects.
func (e *env) operatorConfig(c *cli.Context) (config.Sources, config.Config, error) {
	src, err := config.LoadSources(c, e.environ)
	if err != nil {
		return src, config.Config{}, err
	}
	cfg, err := src.Build(nil)
	return src, cfg, err
}

// openDB opens the database named by the operator's dsn.
func (e *env) openDB(ctx context.Context, cfg config.Config) (*gosql.DB, error) {
	if cfg.DSN == "" {
		return nil, fmt.Errorf("no database: set --dsn or XBT_DSN (e.g. root:@tcp(127.0.0.1:3306)/xbt)")
	}
	return xsql.Open(ctx, cfg.DSN)
}

// withDB is the common start of the database subcommands: operator config,
// then an open database.
func (e *env) withDB(c *cli.Context) (config.Sources, config.Config, *gosql.DB, error) {
	src, cfg, err := e.operatorConfig(c)
	if err != nil {
		return src, cfg, nil, err
	}
	db, err := e.openDB(c.Context, cfg)
	return src, cfg, db, err
}

// withDBAction wraps an action that needs only the open database.
func (e *env) withDBAction(act func(c *cli.Context, db *gosql.DB) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		_, _, db, err := e.withDB(c)
		if err != nil {
			return err
		}
		defer db.Close()
		return act(c, db)
	}
}

// logger writes to stderr at the configured level: console encoding on a
// terminal, JSON otherwise (and always JSON when stderr is not a file, as in
// tests).
func (e *env) logger(level string) (*zap.Logger, error) {
	if f, ok := e.stderr.(*os.File); ok {
		return logging.New(level, f)
	}
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log_level = %q: want debug, info, warn or error", level)
	}
	return logging.NewWithEncoding(lvl, zapcore.AddSync(e.stderr), false), nil
}

// names maps the configured table and column names onto the sql package's.
func names(cfg config.Config) xsql.Names {
	n := xsql.DefaultNames()
	n.Files = cfg.TableFiles
	n.FilesUsers = cfg.TableFilesUsers
	n.Users = cfg.TableUsers
	n.AnnounceLog = cfg.TableAnnounceLog
	n.ScrapeLog = cfg.TableScrapeLog
	n.Snatched = cfg.TableSnatched
	n.DenyFromHosts = cfg.TableDenyFromHosts
	n.FilesFid = cfg.ColumnFilesFID
	n.FilesLeechers = cfg.ColumnFilesLeechers
	n.FilesSeeders = cfg.ColumnFilesSeeders
	n.FilesCompleted = cfg.ColumnFilesCompleted
	n.UsersUID = cfg.ColumnUsersUID
	return n
}

// connFlags are the flags of subcommands that only connect: --config (the
// file may hold the dsn) and --dsn. serve and config take every key's flag;
// the others take only the keys they use, so their --help stays short.
func connFlags() []cli.Flag {
	return keyFlags(func(name string) bool { return name == config.ConfigFlag || name == "dsn" })
}

// dbFlags adds the table_* and column_* names the catalog subcommands'
// SQL uses.
func dbFlags() []cli.Flag {
	return keyFlags(func(name string) bool {
		return name == config.ConfigFlag || name == "dsn" ||
			strings.HasPrefix(name, "table-") || strings.HasPrefix(name, "column-")
	})
}

// passkeyFlags adds the secret and listen_port (the default base URL) to
// dbFlags, for the subcommands that derive passkeys.
func passkeyFlags() []cli.Flag {
	return append(dbFlags(), keyFlags(func(name string) bool {
		return name == "torrent-pass-private-key" || name == "listen-port"
	})...)
}

// keyFlags are the configuration flags whose names keep says to keep.
// Flags not defined on a command are simply not set there, so
// config.LoadSources reads the rest from the file and environment only.
func keyFlags(keep func(name string) bool) []cli.Flag {
	var out []cli.Flag
	for _, f := range config.Flags() {
		if keep(f.Names()[0]) {
			out = append(out, f)
		}
	}
	return out
}
