package sql

import (
	"context"
	gosql "database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// Reconciler reads the rows of xbt_files and xbt_files_users that claim
// live peers (seeders or leechers not 0, active = 1), a chunk at a time in
// primary-key order, and corrects them in bulk: the start-up reconciliation
// that clears ghost peers left by a crash or another tracker, and the
// runtime sweep that finds rows no announce corrects (see sync's
// reconcile.go). Every statement is its own short autocommit statement that
// touches only the rows it names, so a 1M-row table never locks the catalog
// out for long.
type Reconciler struct {
	db *gosql.DB
	s  Schema

	files, filesUsers           string // quoted
	fid, seeders, leechers      string
	fuFid, infoHash, uid, activ string
}

// NewReconciler returns a Reconciler for the tables and columns in s.
func NewReconciler(db *gosql.DB, s Schema) (*Reconciler, error) {
	r := &Reconciler{db: db, s: s, infoHash: "`info_hash`", uid: "`uid`", activ: "`active`"}
	for _, x := range []struct {
		dst  *string
		name string
	}{
		{&r.files, s.Files}, {&r.filesUsers, s.FilesUsers}, {&r.fid, s.FilesFid},
		{&r.seeders, s.FilesSeeders}, {&r.leechers, s.FilesLeechers}, {&r.fuFid, s.FilesUsersFid},
	} {
		q, err := quoteIdent(x.name)
		if err != nil {
			return nil, fmt.Errorf("reconciler: %w", err)
		}
		*x.dst = q
	}
	return r, nil
}

// FileCounts is one xbt_files row that claims peers.
type FileCounts struct {
	Fid               uint32
	InfoHash          tracker.InfoHash
	Seeders, Leechers int
	Mtime             int64 // the row's mtime: when its counts were last written for an announce
}

// FilesWithPeers returns up to limit xbt_files rows with fid > after whose
// seeders or leechers are not 0, in fid order.
func (r *Reconciler) FilesWithPeers(ctx context.Context, after uint32, limit int) ([]FileCounts, error) {
	q := fmt.Sprintf("SELECT %s, %s, %s, %s, `mtime` FROM %s WHERE %s > ? AND (%s <> 0 OR %s <> 0) ORDER BY %s LIMIT %d", //nolint:gosec // G201: identifiers validated by quoteIdent; values are placeholders
		r.fid, r.infoHash, r.seeders, r.leechers, r.files, r.fid, r.seeders, r.leechers, r.fid, limit)
	rows, err := r.db.QueryContext(ctx, q, after)
	if err != nil {
		return nil, fmt.Errorf("read %s with peers: %w", r.s.Files, err)
	}
	defer rows.Close()
	var out []FileCounts
	for rows.Next() {
		var f FileCounts
		var ih []byte
		if err := rows.Scan(&f.Fid, &ih, &f.Seeders, &f.Leechers, &f.Mtime); err != nil {
			return nil, fmt.Errorf("read %s with peers: %w", r.s.Files, err)
		}
		copy(f.InfoHash[:], ih)
		out = append(out, f)
	}
	return out, rows.Err()
}

// ActiveFileUser is one xbt_files_users row with active = 1. HasTorrent
// is false when no xbt_files row has its fid (the torrent was deleted).
type ActiveFileUser struct {
	Fid, UID   uint32
	InfoHash   tracker.InfoHash
	HasTorrent bool
	Left       uint64
	Mtime      int64
}

// ActiveFileUsers returns up to limit xbt_files_users rows with active = 1
// and (fid, uid) after the given key, in key order, with their torrent's
// info_hash.
func (r *Reconciler) ActiveFileUsers(ctx context.Context, after tracker.FileUserKey, limit int) ([]ActiveFileUser, error) {
	// fid > ? OR (fid = ? AND uid > ?): a range the optimiser reads from
	// the primary key (a row constructor comparison is not always one).
	q := fmt.Sprintf("SELECT fu.%s, fu.%s, f.%s, fu.`left`, fu.`mtime` FROM %s fu LEFT JOIN %s f ON f.%s = fu.%s "+ //nolint:gosec // G201: identifiers validated by quoteIdent; values are placeholders
		"WHERE (fu.%s > ? OR (fu.%s = ? AND fu.%s > ?)) AND fu.%s = 1 ORDER BY fu.%s, fu.%s LIMIT %d",
		r.fuFid, r.uid, r.infoHash, r.filesUsers, r.files, r.fid, r.fuFid,
		r.fuFid, r.fuFid, r.uid, r.activ, r.fuFid, r.uid, limit)
	rows, err := r.db.QueryContext(ctx, q, after.Fid, after.Fid, after.UID)
	if err != nil {
		return nil, fmt.Errorf("read active %s rows: %w", r.s.FilesUsers, err)
	}
	defer rows.Close()
	var out []ActiveFileUser
	for rows.Next() {
		var a ActiveFileUser
		var ih []byte
		if err := rows.Scan(&a.Fid, &a.UID, &ih, &a.Left, &a.Mtime); err != nil {
			return nil, fmt.Errorf("read active %s rows: %w", r.s.FilesUsers, err)
		}
		a.HasTorrent = len(ih) == len(a.InfoHash)
		copy(a.InfoHash[:], ih)
		out = append(out, a)
	}
	return out, rows.Err()
}

// ZeroFiles sets seeders and leechers to 0 on the given fids (primary-key
// lookups only).
func (r *Reconciler) ZeroFiles(ctx context.Context, fids []uint32) error {
	if len(fids) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "UPDATE %s SET %s = 0, %s = 0 WHERE %s IN (", r.files, r.seeders, r.leechers, r.fid)
	for i, fid := range fids {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.FormatUint(uint64(fid), 10))
	}
	b.WriteString(")")
	if _, err := r.db.ExecContext(ctx, b.String()); err != nil {
		return fmt.Errorf("zero %s seeders and leechers: %w", r.s.Files, err)
	}
	return nil
}

// SetFileCounts sets one torrent's seeders and leechers.
func (r *Reconciler) SetFileCounts(ctx context.Context, fid uint32, seeders, leechers int) error {
	q := fmt.Sprintf("UPDATE %s SET %s = ?, %s = ? WHERE %s = ?", r.files, r.seeders, r.leechers, r.fid) //nolint:gosec // G201: identifiers validated by quoteIdent; values are placeholders
	if _, err := r.db.ExecContext(ctx, q, seeders, leechers, fid); err != nil {
		return fmt.Errorf("set %s counts of %s %d: %w", r.s.Files, r.s.FilesFid, fid, err)
	}
	return nil
}

// DeactivateFileUsers sets active = 0 on the given xbt_files_users rows.
// Like the writer's statements it joins a derived table of the keys
// (STRAIGHT_JOIN, key order), so exactly those rows are locked, in order.
func (r *Reconciler) DeactivateFileUsers(ctx context.Context, keys []tracker.FileUserKey) error {
	if len(keys) == 0 {
		return nil
	}
	b := make([]byte, 0, 128+len(keys)*40)
	b = append(b, "UPDATE ("...)
	aliases := []string{"f", "u"}
	for i, k := range keys {
		b = appendUnionRow(b, i == 0, aliases, uint64(k.Fid), uint64(k.UID))
	}
	b = fmt.Appendf(b, ") v STRAIGHT_JOIN %s t ON t.%s = v.f AND t.%s = v.u SET t.%s = 0",
		r.filesUsers, r.fuFid, r.uid, r.activ)
	if _, err := r.db.ExecContext(ctx, string(b)); err != nil {
		return fmt.Errorf("clear stale %s.active: %w", r.s.FilesUsers, err)
	}
	return nil
}
