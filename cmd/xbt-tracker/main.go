// Command xbt-tracker is an XBT-compatible, database-driven private
// BitTorrent tracker. See the README for the subcommands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/go-sql-driver/mysql"
	"github.com/urfave/cli/v2"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: tests call it with their own context,
// arguments, environment and output. SIGTERM and SIGINT cancel ctx.
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	app := newApp(environ, stdout, stderr)
	if err := app.RunContext(ctx, positionalLast(args)); err != nil {
		fmt.Fprintf(stderr, "xbt-tracker: %v\n", withHint(err))
		return 1
	}
	return 0
}

// errNoSuchTable is MySQL's ER_NO_SUCH_TABLE.
const errNoSuchTable = 1146

// withHint adds what to do to an error that alone does not say it: a
// missing table (an unmigrated database) names `xbt-tracker migrate up`.
func withHint(err error) error {
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == errNoSuchTable && !strings.Contains(err.Error(), "migrate up") {
		return fmt.Errorf("%w: the database has no xbt_* tables yet (or lacks this one): run \"xbt-tracker migrate up\" (docs/ADOPTING.md for an existing XBT database)", err)
	}
	return err
}

func newApp(environ []string, stdout, stderr io.Writer) *cli.App {
	e := &env{environ: environ, stdout: stdout, stderr: stderr}
	return &cli.App{
		Name:  "xbt-tracker",
		Usage: "an XBT-compatible, database-driven private BitTorrent tracker",
		Description: "Settings come from (lowest to highest) defaults, the xbt_config table, a TOML file (--config or XBT_CONFIG), " +
			"XBT_<KEY> environment variables and --<key> flags. See docs/CONFIGURATION.md.",
		Writer:          stdout,
		ErrWriter:       stderr,
		HideHelpCommand: true,
		Commands: []*cli.Command{
			e.serveCommand(),
			e.migrateCommand(),
			e.passkeyCommand(),
			e.configCommand(),
			e.userCommand(),
			e.fileCommand(),
			e.torrentCommand(),
			e.benchCommand(),
		},
		// Errors are printed once by run, as one line.
		ExitErrHandler: func(*cli.Context, error) {},
	}
}

// positionalLast lets `passkey check <passkey> --info-hash HEX` work as
// written: urfave/cli stops parsing flags at the first positional argument,
// so the passkey is moved behind the flags.
func positionalLast(args []string) []string {
	if len(args) < 5 || args[1] != "passkey" || args[2] != "check" || strings.HasPrefix(args[3], "-") {
		return args
	}
	out := append([]string{}, args[:3]...)
	out = append(out, args[4:]...)
	return append(out, args[3])
}
