package sql

import (
	"context"
	gosql "database/sql"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"
)

// LeechingExchange is how the instances of a cluster share their users'
// leeching-torrent counts for torrents_limit (migration 00008,
// xbt_tracker_leeching; docs/CLUSTER.md, "Per-user limits"). Each instance
// publishes its own counts under a random writer id and reads the sum of
// the others' fresh rows. Not safe for concurrent use: one loop calls it.
type LeechingExchange struct {
	db     *gosql.DB
	writer [16]byte
}

// leechingChunk bounds the rows of one publishing INSERT.
const leechingChunk = 1000

// NewLeechingExchange returns an exchange on db with a new writer id.
func NewLeechingExchange(db *gosql.DB) *LeechingExchange {
	x := &LeechingExchange{db: db}
	binary.LittleEndian.PutUint64(x.writer[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(x.writer[8:], rand.Uint64())
	return x
}

// Exchange publishes mine (uid -> torrents leeched on this instance) and
// returns the other instances' counts summed per uid, from rows they
// published within fresh. Times are the database server's, so the
// instances' clocks need not agree. Rows of writers silent for ten times
// fresh (instances that died) are deleted on the way.
func (x *LeechingExchange) Exchange(ctx context.Context, mine map[uint32]int32, fresh time.Duration) (map[uint32]int32, error) {
	var now int64
	if err := x.db.QueryRowContext(ctx, "SELECT UNIX_TIMESTAMP()").Scan(&now); err != nil {
		return nil, fmt.Errorf("leeching exchange: %w", err)
	}
	uids := make([]uint32, 0, len(mine))
	for uid := range mine {
		uids = append(uids, uid)
	}
	slices.Sort(uids) // primary-key order: no deadlock between two publishers
	for lo := 0; lo < len(uids); lo += leechingChunk {
		hi := min(lo+leechingChunk, len(uids))
		q := make([]byte, 0, 96+(hi-lo)*40)
		q = append(q, "INSERT INTO xbt_tracker_leeching (writer, uid, leeching, updated) VALUES "...)
		args := make([]any, 0, hi-lo)
		for i, uid := range uids[lo:hi] {
			if i > 0 {
				q = append(q, ", "...)
			}
			q = append(q, "(?, "...)
			q = strconv.AppendUint(q, uint64(uid), 10)
			q = append(q, ", "...)
			q = strconv.AppendInt(q, int64(max(mine[uid], 0)), 10)
			q = append(q, ", "...)
			q = strconv.AppendInt(q, now, 10)
			q = append(q, ')')
			args = append(args, x.writer[:])
		}
		q = append(q, " ON DUPLICATE KEY UPDATE leeching = VALUES(leeching), updated = VALUES(updated)"...)
		if _, err := x.db.ExecContext(ctx, string(q), args...); err != nil {
			return nil, fmt.Errorf("leeching exchange: publish: %w", err)
		}
	}
	// This instance's users who leech nothing here any more: the rows this
	// publication did not refresh.
	if _, err := x.db.ExecContext(ctx, "DELETE FROM xbt_tracker_leeching WHERE writer = ? AND updated < ?", x.writer[:], now); err != nil {
		return nil, fmt.Errorf("leeching exchange: delete: %w", err)
	}
	freshSec := int64(max(fresh/time.Second, 1))
	if _, err := x.db.ExecContext(ctx, "DELETE FROM xbt_tracker_leeching WHERE updated < ? LIMIT 10000", now-10*freshSec); err != nil {
		return nil, fmt.Errorf("leeching exchange: delete stale: %w", err)
	}
	rows, err := x.db.QueryContext(ctx, "SELECT uid, SUM(leeching) FROM xbt_tracker_leeching WHERE writer <> ? AND updated >= ? GROUP BY uid",
		x.writer[:], now-freshSec)
	if err != nil {
		return nil, fmt.Errorf("leeching exchange: read: %w", err)
	}
	defer rows.Close()
	others := map[uint32]int32{}
	for rows.Next() {
		var uid uint32
		var n int32 // a sum of counts of torrents: far below 2^31
		if err := rows.Scan(&uid, &n); err != nil {
			return nil, fmt.Errorf("leeching exchange: read: %w", err)
		}
		others[uid] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("leeching exchange: read: %w", err)
	}
	return others, nil
}

// Retire deletes this instance's rows (at a clean stop), so the others
// stop counting its users' torrents at once rather than after fresh.
func (x *LeechingExchange) Retire(ctx context.Context) error {
	if _, err := x.db.ExecContext(ctx, "DELETE FROM xbt_tracker_leeching WHERE writer = ?", x.writer[:]); err != nil {
		return fmt.Errorf("leeching exchange: retire: %w", err)
	}
	return nil
}
