package sql

import (
	"context"
	gosql "database/sql"
	"fmt"
	"math"
	"strings"

	sq "github.com/Masterminds/squirrel"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// CreditRules reads the credit factors the catalog set (issue 15): the
// up_multi and down_multi of the torrents and users whose factors are not
// 100 %, and the freeleech tokens not yet expired. What the schema lacks is
// not read: a missing column is 100 % for every row, a missing token table
// means no token. It returns nil when there is nothing but 100 % and no
// token.
//
// The rows are read wholesale at every reload, not through the change log:
// a factor is a column the catalog UPDATEs, and xbt_files may have no
// UPDATE trigger (migration 00004). Only the rows that are not 100 % are
// read, through an index on each column (extras migration 00002; CheckSchema
// warns without it), so a reload of a catalog with a few hundred freeleech
// torrents reads a few hundred rows.
func (l *Loader) CreditRules(ctx context.Context) (*tracker.CreditRules, error) {
	s := l.s
	var (
		r   tracker.CreditRules
		err error
	)
	if r.Torrents, err = l.factors(ctx, s.Files, s.FilesFid, s.HasFilesUpMulti, s.HasFilesDownMulti); err != nil {
		return nil, err
	}
	if r.Users, err = l.factors(ctx, s.Users, s.UsersUID, s.HasUsersUpMulti, s.HasUsersDownMulti); err != nil {
		return nil, err
	}
	if r.Tokens, err = l.FreeleechTokens(ctx); err != nil {
		return nil, err
	}
	if len(r.Torrents)+len(r.Users)+len(r.Tokens) == 0 {
		return nil, nil
	}
	return &r, nil
}

// factors reads the rows of table whose up_multi or down_multi is not 100,
// keyed by idCol. A column the table lacks is 100 % and is not queried, so
// the query is one SELECT per existing column, UNIONed: each can use its own
// index, where an OR of the two would scan the table.
func (l *Loader) factors(ctx context.Context, table, idCol string, hasUp, hasDown bool) (map[uint32]tracker.Factors, error) {
	if !hasUp && !hasDown {
		return nil, nil
	}
	t, err := quoteIdent(table)
	if err != nil {
		return nil, err
	}
	id, err := quoteIdent(idCol)
	if err != nil {
		return nil, err
	}
	cols := []string{id, "100", "100"} // a missing column reads 100
	var wheres, parts []string
	if hasUp {
		cols[1] = "`up_multi`"
		wheres = append(wheres, "`up_multi` <> 100")
	}
	if hasDown {
		cols[2] = "`down_multi`"
		wheres = append(wheres, "`down_multi` <> 100")
	}
	var args []any
	for _, w := range wheres {
		q, a, err := sq.Select(cols...).From(t).Where(w).ToSql()
		if err != nil {
			return nil, fmt.Errorf("load credit factors from %s: %w", table, err)
		}
		parts, args = append(parts, q), append(args, a...)
	}
	q := strings.Join(parts, " UNION ")
	rows, err := l.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("load credit factors from %s: %w", table, err)
	}
	defer rows.Close()
	var out map[uint32]tracker.Factors
	for rows.Next() {
		var (
			key      int64
			upV, dnV gosql.NullInt64
		)
		if err := rows.Scan(&key, &upV, &dnV); err != nil {
			return nil, fmt.Errorf("load credit factors from %s: %w", table, err)
		}
		f := tracker.Factors{Up: percent(upV), Down: percent(dnV)}
		if key <= 0 || key > math.MaxUint32 || f == (tracker.Factors{}) {
			continue // not a row the tracker can have; or 100 % after all (NULL)
		}
		if out == nil {
			out = make(map[uint32]tracker.Factors)
		}
		out[uint32(key)] = f
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load credit factors from %s: %w", table, err)
	}
	return out, nil
}

// percent reads a factor column: NULL is 100 % (a catalog that allows NULL
// means "not set"), a negative value 0 %, a value over tracker.MaxPercent
// that maximum.
func percent(v gosql.NullInt64) tracker.Multiplier {
	switch {
	case !v.Valid:
		return tracker.Percent(100)
	case v.Int64 < 0:
		return tracker.Percent(0)
	case v.Int64 > tracker.MaxPercent:
		return tracker.Percent(tracker.MaxPercent)
	}
	return tracker.Percent(uint32(v.Int64)) //nolint:gosec // G115: 0 ≤ v ≤ MaxPercent here
}

// FreeleechTokens reads the freeleech tokens that have not expired by the
// database's clock (nil without the table): also the change poll's cheap
// part of CreditRules, one indexed query. One that expires between two
// reads stops counting on time anyway: the tracker compares each
// announce's time with expires.
func (l *Loader) FreeleechTokens(ctx context.Context) (map[tracker.FileUserKey]int64, error) {
	if !l.s.HasFreeleechTokens {
		return nil, nil
	}
	q, args, err := sq.Select("`uid`", "`fid`", "`expires`").
		From("`" + FreeleechTokensTable + "`").
		Where("`expires` > UNIX_TIMESTAMP()").
		ToSql()
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", FreeleechTokensTable, err)
	}
	rows, err := l.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", FreeleechTokensTable, err)
	}
	defer rows.Close()
	var out map[tracker.FileUserKey]int64
	for rows.Next() {
		var uid, fid, expires int64
		if err := rows.Scan(&uid, &fid, &expires); err != nil {
			return nil, fmt.Errorf("load %s: %w", FreeleechTokensTable, err)
		}
		if uid <= 0 || uid > math.MaxUint32 || fid <= 0 || fid > math.MaxUint32 {
			continue
		}
		if out == nil {
			out = make(map[tracker.FileUserKey]int64)
		}
		out[tracker.FileUserKey{Fid: uint32(fid), UID: uint32(uid)}] = expires
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load %s: %w", FreeleechTokensTable, err)
	}
	return out, nil
}
