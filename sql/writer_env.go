package sql

import (
	"context"
	gosql "database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	sq "github.com/Masterminds/squirrel"
)

// writersTable is the commit marker table (migration 00003). It belongs to
// the tracker, not the catalog, so its name is not configurable.
const writersTable = "xbt_tracker_writers"

// Marker housekeeping: rows of Writers gone for this long are deleted; a
// settle query waits this long for the transaction it asks about.
const (
	markerRetention = 30 * 24 * time.Hour
	settleTimeout   = 10 * time.Second
	settleAttempts  = 3
)

// errNoMarker: the commit marker table does not exist, so an unclear COMMIT
// can never be settled.
var errNoMarker = errors.New("the database has no " + writersTable + " table (apply migration 00003: xbt-tracker migrate up)")

// writerEnv is what a Writer learns from the server once: quoted
// identifiers, max_allowed_packet, the log tables' columns, and whether the
// commit marker table exists.
type writerEnv struct {
	names                                            Names
	users, files, filesUsers, announceLog, scrapeLog string // quoted
	uid, fid, fuFid, leechers, seeders, completed    string // quoted
	maxPacket                                        int
	marker                                           bool
	// Largest value of each summed column, from its type: what a sum
	// saturates at (see clamper).
	maxUsersUp, maxUsersDown                           uint64
	maxFilesCompleted                                  uint64
	maxFUUp, maxFUDown, maxFUCompleted, maxFUAnnounced uint64
	maxFUTimeSpent, maxFULeechTime                     uint64
	announceCols, scrapeCols                           []string
	announceIPA, scrapeIPA                             bool
	// The completion log (xbt_snatched): its quoted name, the columns it
	// has of snatchedColumns, and the IP column's width in characters
	// (0: no limit known).
	snatched     string
	snatchedCols []string
	snatchedIPW  int
	// newestWins: several trackers share the database (WriterOptions.
	// Cluster), so the overwritten fields of a files or files_users row
	// (counts; active, left) change only when the delta's mtime is not
	// older than the row's: the instance holding the newest announce wins.
	newestWins bool
}

// announceLogColumns and scrapeLogColumns are the log columns the writer
// knows, in XBT's order; a table gets those it has.
var (
	announceLogColumns = []string{"ipa", "ipv6", "port", "event", "info_hash", "peer_id", "downloaded", "left0", "uploaded", "uid", "mtime"}
	scrapeLogColumns   = []string{"ipa", "ipv6", "info_hash", "uid", "mtime"}
	// Gazelle's xbt_snatched (its IP column is "IP"; names are compared
	// lower-cased, and MySQL column names are case-insensitive). seedtime
	// is left to its default.
	snatchedColumns = []string{"uid", "tstamp", "fid", "ip"}
)

// ensureEnv fills w.env on first use (and again after a failed attempt).
func (w *Writer) ensureEnv(ctx context.Context) error {
	if w.env != nil {
		return nil
	}
	e := &writerEnv{names: w.s.Names, newestWins: w.o.Cluster}
	for _, x := range []struct {
		dst  *string
		name string
	}{
		{&e.users, w.s.Users}, {&e.files, w.s.Files}, {&e.filesUsers, w.s.FilesUsers},
		{&e.announceLog, w.s.AnnounceLog}, {&e.scrapeLog, w.s.ScrapeLog}, {&e.snatched, w.s.Snatched},
		{&e.uid, w.s.UsersUID}, {&e.fid, w.s.FilesFid}, {&e.fuFid, w.s.FilesUsersFid},
		{&e.leechers, w.s.FilesLeechers}, {&e.seeders, w.s.FilesSeeders}, {&e.completed, w.s.FilesCompleted},
	} {
		q, err := quoteIdent(x.name)
		if err != nil {
			return fmt.Errorf("writer: %w", err)
		}
		*x.dst = q
	}

	if err := w.db.QueryRowContext(ctx, "SELECT @@max_allowed_packet").Scan(&e.maxPacket); err != nil {
		return fmt.Errorf("writer: read max_allowed_packet: %w", err)
	}

	cols, err := readColumns(ctx, w.db, w.s.AnnounceLog, w.s.ScrapeLog, writersTable, w.s.Users, w.s.Files, w.s.FilesUsers, w.s.Snatched)
	if err != nil {
		return fmt.Errorf("writer: read columns of %s, %s, %s, %s, %s, %s, %s: %w", w.s.Users, w.s.Files, w.s.FilesUsers, w.s.AnnounceLog, w.s.ScrapeLog, w.s.Snatched, writersTable, err)
	}
	e.maxUsersUp = columnMax(cols[w.s.Users]["uploaded"])
	e.maxUsersDown = columnMax(cols[w.s.Users]["downloaded"])
	e.maxFilesCompleted = columnMax(cols[w.s.Files][strings.ToLower(w.s.FilesCompleted)])
	e.maxFUUp = columnMax(cols[w.s.FilesUsers]["uploaded"])
	e.maxFUDown = columnMax(cols[w.s.FilesUsers]["downloaded"])
	e.maxFUCompleted = columnMax(cols[w.s.FilesUsers]["completed"])
	e.maxFUAnnounced = columnMax(cols[w.s.FilesUsers]["announced"])
	e.maxFUTimeSpent = columnMax(cols[w.s.FilesUsers]["timespent"])
	e.maxFULeechTime = columnMax(cols[w.s.FilesUsers]["leechtime"])
	for _, c := range announceLogColumns {
		if cols[w.s.AnnounceLog][c] != "" {
			e.announceCols = append(e.announceCols, c)
		}
	}
	e.announceIPA = cols[w.s.AnnounceLog]["ipa"] != ""
	for _, c := range scrapeLogColumns {
		if cols[w.s.ScrapeLog][c] != "" {
			e.scrapeCols = append(e.scrapeCols, c)
		}
	}
	e.scrapeIPA = cols[w.s.ScrapeLog]["ipa"] != ""
	for _, c := range snatchedColumns {
		if cols[w.s.Snatched][c] != "" {
			e.snatchedCols = append(e.snatchedCols, c)
		}
	}
	e.snatchedIPW = columnWidth(cols[w.s.Snatched]["ip"])

	if cols[writersTable]["seq"] != "" {
		// Create this Writer's row now, so that a settle query always finds
		// a row to lock and wait on, and clear rows of long-gone Writers.
		now := time.Now().Unix()
		q, args, err := sq.Insert(writersTable).Options("IGNORE").Columns("writer", "seq", "mtime").
			Values(w.id[:], 0, now).ToSql()
		if err != nil {
			return fmt.Errorf("writer: %s: %w", writersTable, err)
		}
		if _, err := w.db.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("writer: register in %s: %w", writersTable, err)
		}
		q, args, err = sq.Delete(writersTable).Where(sq.Lt{"mtime": now - int64(markerRetention/time.Second)}).ToSql()
		if err == nil {
			_, _ = w.db.ExecContext(ctx, q, args...) // housekeeping only
		}
		e.marker = true
	}
	w.env = e
	return nil
}

// readColumns returns the types (information_schema COLUMN_TYPE, lower
// case, e.g. "bigint(20) unsigned") of the columns of the given tables in
// the current database, by table and lower-cased column name.
func readColumns(ctx context.Context, db *gosql.DB, tables ...string) (map[string]map[string]string, error) {
	q, args, err := sq.Select("TABLE_NAME", "COLUMN_NAME", "COLUMN_TYPE").From("information_schema.COLUMNS").
		Where("TABLE_SCHEMA = DATABASE()").Where(sq.Eq{"TABLE_NAME": tables}).ToSql()
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]map[string]string{}
	for rows.Next() {
		var t, c, typ string
		if err := rows.Scan(&t, &c, &typ); err != nil {
			return nil, err
		}
		if out[t] == nil {
			out[t] = map[string]string{}
		}
		out[t][strings.ToLower(c)] = strings.ToLower(typ)
	}
	return out, rows.Err()
}

// columnWidth is the length of a string column type, e.g. 15 for
// "varchar(15)"; 0 when the type has none (text: no limit the writer knows).
func columnWidth(typ string) int {
	i, j := strings.IndexByte(typ, '('), strings.IndexByte(typ, ')')
	if i < 0 || j < i {
		return 0
	}
	n, err := strconv.Atoi(typ[i+1 : j])
	if err != nil {
		return 0
	}
	return n
}

// columnMax is the largest value a column of this integer type holds (the
// unsigned BIGINT maximum for types it does not know, such as DECIMAL: a sum
// there is not expected to overflow at all).
func columnMax(typ string) uint64 {
	unsigned := strings.Contains(typ, "unsigned")
	bits := 64
	switch {
	case strings.HasPrefix(typ, "tinyint"):
		bits = 8
	case strings.HasPrefix(typ, "smallint"):
		bits = 16
	case strings.HasPrefix(typ, "mediumint"):
		bits = 24
	case strings.HasPrefix(typ, "int"):
		bits = 32
	case strings.HasPrefix(typ, "bigint"):
	default:
		return math.MaxUint64
	}
	if unsigned {
		return math.MaxUint64 >> (64 - bits)
	}
	return math.MaxUint64 >> (65 - bits)
}

// mark records seq as this Writer's last committed chunk, inside the chunk's
// transaction: the marker commits if and only if the chunk does.
func (w *Writer) mark(ctx context.Context, tx *gosql.Tx, seq uint64) error {
	q, args, err := sq.Insert(writersTable).Columns("writer", "seq", "mtime").
		Values(w.id[:], seq, time.Now().Unix()).
		Suffix("ON DUPLICATE KEY UPDATE seq = VALUES(seq), mtime = VALUES(mtime)").ToSql()
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, q, args...)
	return err
}

// settle finds out whether the chunk with sequence number seq committed.
//
// It reads this Writer's marker row with a locking read (FOR UPDATE): if the
// server is still finishing the transaction whose COMMIT reply was lost, the
// read waits for it to commit or roll back instead of seeing the old value
// and wrongly concluding "not committed".
func (w *Writer) settle(ctx context.Context, seq uint64) (committed bool, err error) {
	if !w.env.marker {
		return false, errNoMarker
	}
	q, args, err := sq.Select("seq").From(writersTable).Where(sq.Eq{"writer": w.id[:]}).Suffix("FOR UPDATE").ToSql()
	if err != nil {
		return false, err
	}
	backoff := w.o.Backoff
	for attempt := 1; ; attempt++ {
		committed, err = w.settleOnce(ctx, q, args, seq)
		if err == nil || attempt >= settleAttempts || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff *= 2
	}
	if err != nil {
		return false, fmt.Errorf("read back %s: %w", writersTable, err)
	}
	return committed, nil
}

func (w *Writer) settleOnce(ctx context.Context, q string, args []any, seq uint64) (bool, error) {
	if w.settleHook != nil {
		if err := w.settleHook(); err != nil {
			return false, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer func() { _ = tx.Rollback() }()
	var got uint64
	switch err := tx.QueryRowContext(ctx, q, args...).Scan(&got); {
	case errors.Is(err, gosql.ErrNoRows):
		return false, nil // the row was never committed, so neither was the chunk
	case err != nil:
		return false, err
	}
	return got >= seq, nil
}
