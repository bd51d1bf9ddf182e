package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"strings"

	"github.com/pressly/goose/v3"
)

//go:embed *.sql
var embedded embed.FS

// FS returns the embedded migration files (NNNNN_name.sql at its root).
func FS() fs.FS { return embedded }

// NewProvider returns a goose provider for the embedded migrations on db,
// MySQL dialect, goose's version table goose_db_version, no global goose
// state and no logging. db must be opened with parseTime=true.
func NewProvider(db *sql.DB) (*goose.Provider, error) {
	p, err := goose.NewProvider(goose.DialectMySQL, db, FS(),
		goose.WithDisableGlobalRegistry(true),
		goose.WithLogger(goose.NopLogger()),
	)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return p, nil
}

// Up applies every pending migration. On failure the results of the
// migrations that did run are returned together with the error.
func Up(ctx context.Context, db *sql.DB) ([]*goose.MigrationResult, error) {
	p, err := NewProvider(db)
	if err != nil {
		return nil, err
	}
	res, err := p.Up(ctx)
	return res, wrap("up", err)
}

// Down rolls back the most recently applied migration. With nothing to roll
// back the error wraps goose.ErrNoNextVersion.
func Down(ctx context.Context, db *sql.DB) (*goose.MigrationResult, error) {
	p, err := NewProvider(db)
	if err != nil {
		return nil, err
	}
	res, err := p.Down(ctx)
	return res, wrap("down", err)
}

// DownTo rolls back every applied migration newer than version (0 = all).
func DownTo(ctx context.Context, db *sql.DB, version int64) ([]*goose.MigrationResult, error) {
	p, err := NewProvider(db)
	if err != nil {
		return nil, err
	}
	res, err := p.DownTo(ctx, version)
	return res, wrap("down-to", err)
}

// Status lists every known migration, ascending by version, with whether it
// is applied and when.
func Status(ctx context.Context, db *sql.DB) ([]*goose.MigrationStatus, error) {
	p, err := NewProvider(db)
	if err != nil {
		return nil, err
	}
	res, err := p.Status(ctx)
	return res, wrap("status", err)
}

// Version returns the highest applied migration version (0 when none).
func Version(ctx context.Context, db *sql.DB) (int64, error) {
	p, err := NewProvider(db)
	if err != nil {
		return 0, err
	}
	v, err := p.GetDBVersion(ctx)
	return v, wrap("version", err)
}

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if strings.Contains(err.Error(), "into type *time.Time") {
		return fmt.Errorf("migrations %s: %w (open the database with parseTime=true in the DSN; sql.Open does this)", op, err)
	}
	return fmt.Errorf("migrations %s: %w", op, err)
}
