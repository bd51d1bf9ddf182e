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

//go:embed extras/*.sql
var embeddedExtras embed.FS

// FS returns the embedded migration files (NNNNN_name.sql at its root).
func FS() fs.FS { return embedded }

// Set is one goose migration set: its files and its own version table.
//
//   - Main: the tables and changes the tracker needs (goose_db_version),
//     applied by "xbt-tracker migrate up".
//   - Extras: opt-in columns on catalog tables (extras/*.sql,
//     xbt_tracker_extras_version), applied only by "migrate up --extras":
//     adding a column to a catalog's table breaks a catalog that INSERTs
//     without a column list (see 00004), so it is the operator's choice.
//     Each extras migration adds a column only when missing, records it in
//     xbt_tracker_added_columns and drops on Down only what it recorded.
//
// A new extras migration is a new extras/NNNNN_name.sql file.
type Set struct {
	Name  string // "main" or "extras"
	Table string // goose's version table
	fsys  fs.FS
}

// The two sets.
var (
	Main   = Set{Name: "main", Table: "goose_db_version", fsys: embedded}
	Extras = Set{Name: "extras", Table: "xbt_tracker_extras_version", fsys: mustSub(embeddedExtras, "extras")}
)

func mustSub(f fs.FS, dir string) fs.FS {
	s, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // dir is a constant embedded directory
	}
	return s
}

// FS returns the set's migration files (NNNNN_name.sql at its root).
func (s Set) FS() fs.FS { return s.fsys }

// NewProvider returns a goose provider for the set on db, MySQL dialect,
// the set's version table, no global goose state and no logging. db must be
// opened with parseTime=true.
func (s Set) NewProvider(db *sql.DB) (*goose.Provider, error) {
	p, err := goose.NewProvider(goose.DialectMySQL, db, s.fsys,
		goose.WithTableName(s.Table),
		goose.WithDisableGlobalRegistry(true),
		goose.WithLogger(goose.NopLogger()),
	)
	if err != nil {
		return nil, fmt.Errorf("migrations %s: %w", s.Name, err)
	}
	return p, nil
}

// Up applies every pending migration of the set. On failure the results of
// the migrations that did run are returned together with the error.
func (s Set) Up(ctx context.Context, db *sql.DB) ([]*goose.MigrationResult, error) {
	p, err := s.NewProvider(db)
	if err != nil {
		return nil, err
	}
	res, err := p.Up(ctx)
	return res, s.wrap("up", err)
}

// Down rolls back the set's most recently applied migration. With nothing
// to roll back the error wraps goose.ErrNoNextVersion.
func (s Set) Down(ctx context.Context, db *sql.DB) (*goose.MigrationResult, error) {
	p, err := s.NewProvider(db)
	if err != nil {
		return nil, err
	}
	res, err := p.Down(ctx)
	return res, s.wrap("down", err)
}

// DownTo rolls back every applied migration of the set newer than version
// (0 = all).
func (s Set) DownTo(ctx context.Context, db *sql.DB, version int64) ([]*goose.MigrationResult, error) {
	p, err := s.NewProvider(db)
	if err != nil {
		return nil, err
	}
	res, err := p.DownTo(ctx, version)
	return res, s.wrap("down-to", err)
}

// Status lists every migration of the set, ascending by version, with
// whether it is applied and when.
func (s Set) Status(ctx context.Context, db *sql.DB) ([]*goose.MigrationStatus, error) {
	p, err := s.NewProvider(db)
	if err != nil {
		return nil, err
	}
	res, err := p.Status(ctx)
	return res, s.wrap("status", err)
}

// Version returns the set's highest applied migration version (0 when none).
func (s Set) Version(ctx context.Context, db *sql.DB) (int64, error) {
	p, err := s.NewProvider(db)
	if err != nil {
		return 0, err
	}
	v, err := p.GetDBVersion(ctx)
	return v, s.wrap("version", err)
}

func (s Set) wrap(op string, err error) error {
	if s.Name != Main.Name {
		op = s.Name + " " + op
	}
	return wrap(op, err)
}

// NewProvider is Main.NewProvider.
func NewProvider(db *sql.DB) (*goose.Provider, error) { return Main.NewProvider(db) }

// Up is Main.Up.
func Up(ctx context.Context, db *sql.DB) ([]*goose.MigrationResult, error) { return Main.Up(ctx, db) }

// Down is Main.Down.
func Down(ctx context.Context, db *sql.DB) (*goose.MigrationResult, error) {
	return Main.Down(ctx, db)
}

// DownTo is Main.DownTo.
func DownTo(ctx context.Context, db *sql.DB, version int64) ([]*goose.MigrationResult, error) {
	return Main.DownTo(ctx, db, version)
}

// Status is Main.Status.
func Status(ctx context.Context, db *sql.DB) ([]*goose.MigrationStatus, error) {
	return Main.Status(ctx, db)
}

// Version is Main.Version.
func Version(ctx context.Context, db *sql.DB) (int64, error) { return Main.Version(ctx, db) }

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if strings.Contains(err.Error(), "into type *time.Time") {
		return fmt.Errorf("migrations %s: %w (open the database with parseTime=true in the DSN; sql.Open does this)", op, err)
	}
	return fmt.Errorf("migrations %s: %w", op, err)
}
