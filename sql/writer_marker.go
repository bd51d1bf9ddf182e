package sql

import (
	"context"
	gosql "database/sql"
	"errors"
	"fmt"

	sq "github.com/Masterminds/squirrel"
	"github.com/go-sql-driver/mysql"
)

// This file lets a warm restart (sync/state.go) tie a state file to the
// database: the commit marker a clean stop ended on, which a later start
// reads back, and what identifies the server.

// Marker returns this Writer's key in xbt_tracker_writers and the last
// chunk sequence number it issued (issued, not necessarily committed: a
// refused chunk uses a number too; ReadMarker gives the committed one).
func (w *Writer) Marker() (id [16]byte, seq uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.id, w.seq
}

// ErrNoMarkerTable is returned when the database has no xbt_tracker_writers
// table (migration 00003).
var ErrNoMarkerTable = errors.New("the database has no " + writersTable + " table (migration 00003)")

// ReadMarker returns the sequence number xbt_tracker_writers holds for
// writer: the last chunk it committed. found is false when the writer has
// no row (it never registered, or its row was cleared after 30 days).
func ReadMarker(ctx context.Context, db *gosql.DB, writer [16]byte) (seq uint64, found bool, err error) {
	q, args, err := sq.Select("seq").From(writersTable).Where(sq.Eq{"writer": writer[:]}).ToSql()
	if err != nil {
		return 0, false, err
	}
	switch err := db.QueryRowContext(ctx, q, args...).Scan(&seq); {
	case errors.Is(err, gosql.ErrNoRows):
		return 0, false, nil
	case markerTableMissing(err):
		return 0, false, ErrNoMarkerTable
	case err != nil:
		return 0, false, fmt.Errorf("read %s: %w", writersTable, err)
	}
	return seq, true, nil
}

// WritersSince counts the writers other than the ones in except whose row
// in xbt_tracker_writers changed at or after unix second since: another
// tracker that registered or committed statistics since then.
func WritersSince(ctx context.Context, db *gosql.DB, since int64, except ...[16]byte) (int, error) {
	b := sq.Select("COUNT(*)").From(writersTable).Where(sq.GtOrEq{"mtime": since})
	for _, id := range except {
		b = b.Where(sq.NotEq{"writer": id[:]})
	}
	q, args, err := b.ToSql()
	if err != nil {
		return 0, err
	}
	var n int
	switch err := db.QueryRowContext(ctx, q, args...).Scan(&n); {
	case markerTableMissing(err):
		return 0, ErrNoMarkerTable
	case err != nil:
		return 0, fmt.Errorf("read %s: %w", writersTable, err)
	}
	return n, nil
}

// ServerIdentity names the database the pool is connected to: DATABASE()
// and the server, by @@server_uuid where the server has one (MySQL),
// else @@hostname:@@port (MariaDB).
func ServerIdentity(ctx context.Context, db *gosql.DB) (database, server string, err error) {
	var name gosql.NullString
	var host string
	var port int
	if err := db.QueryRowContext(ctx, "SELECT DATABASE(), @@hostname, @@port").Scan(&name, &host, &port); err != nil {
		return "", "", fmt.Errorf("read the server's identity: %w", err)
	}
	server = fmt.Sprintf("%s:%d", host, port)
	var uuid gosql.NullString
	if err := db.QueryRowContext(ctx, "SELECT @@server_uuid").Scan(&uuid); err == nil && uuid.String != "" {
		server = uuid.String
	} else if err != nil && !isUnknownVariable(err) {
		return "", "", fmt.Errorf("read the server's identity: %w", err)
	}
	return name.String, server, nil
}

func markerTableMissing(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1146
}

// isUnknownVariable: error 1193, "Unknown system variable" (MariaDB has no
// server_uuid).
func isUnknownVariable(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1193
}
