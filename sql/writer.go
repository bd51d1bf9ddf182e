package sql

import (
	"context"
	gosql "database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// Writer defaults (WriterOptions zero values mean these).
const (
	DefaultMaxRowsPerStatement = 250
	DefaultMaxAttempts         = 5
	DefaultBackoff             = 50 * time.Millisecond
)

// maxPlaceholders is the protocol limit on parameters of one prepared
// statement. With interpolateParams=true the driver sends text, but it falls
// back to a server-side prepare when it cannot interpolate, so every chunk
// stays under it.
const maxPlaceholders = 65535

// MySQL error numbers the writer retries: the server rolled the statement
// (1205) or the whole transaction (1213) back, so running it again is safe.
const (
	errLockWaitTimeout = 1205
	errDeadlock        = 1213
)

// ErrCommitUnknown is wrapped by Write's error when the connection failed
// while a chunk's COMMIT was in flight and the outcome could not be read
// back yet. See Writer.Write.
var ErrCommitUnknown = errors.New("commit outcome unknown")

// WriterOptions tune a Writer; zero fields take the defaults above.
type WriterOptions struct {
	// MaxRowsPerStatement bounds the rows of one multi-row statement
	// (one chunk, one transaction). Default 250: large enough that a
	// statement's round trip and fsync are amortised, small enough that
	// the database's work for one chunk (2-3 ms of CPU) is a short burst
	// for the announces sharing its cores, and the row locks it holds are
	// released within milliseconds (docs/BENCHMARKS.md, "Latency during a
	// flush": 1,000-row chunks put p99 during a flush at 2.3-2.8x).
	MaxRowsPerStatement int
	// MaxAttempts is how often one chunk is tried when the server answers
	// deadlock (1213) or lock wait timeout (1205). Default 5.
	MaxAttempts int
	// Backoff is the pause before the first retry; it doubles on each
	// further retry and is jittered (50-100%) so that two trackers that
	// collided do not collide again. Default 50ms.
	Backoff time.Duration
}

func (o WriterOptions) withDefaults() WriterOptions {
	if o.MaxRowsPerStatement <= 0 {
		o.MaxRowsPerStatement = DefaultMaxRowsPerStatement
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	return o
}

// WriterStats are a Writer's cumulative counters (for metrics and logs).
type WriterStats struct {
	Statements uint64 // chunks committed
	Rows       uint64 // rows in committed chunks
	Retries    uint64 // chunk attempts repeated after 1213/1205
	// UsersDropped counts user deltas whose uid is not in the users table
	// (the catalog deleted the user): they are dropped, not retried, and no
	// row is created for them.
	UsersDropped uint64
	// FilesUnmatched counts file updates that changed no row: the fid was
	// deleted (the update is dropped, no row is created) or, rarely, every
	// value was already the same.
	FilesUnmatched uint64
	// InDoubt counts chunks whose COMMIT outcome was unknown at first;
	// InDoubtDropped those that could never be settled because the database
	// has no xbt_tracker_writers table (migration 00003): they are dropped
	// rather than risk counting them twice.
	InDoubt, InDoubtDropped uint64
}

// Writer writes the engine's pending deltas (tracker.Batch) back to the
// database. It is safe for concurrent use, but calls are serialised: chunk
// sequence numbers (the commit marker) must be issued one at a time.
type Writer struct {
	db *gosql.DB
	s  Schema
	o  WriterOptions

	mu    sync.Mutex // serialises Write and DeleteFiles
	id    [16]byte   // this Writer's key in xbt_tracker_writers
	seq   uint64     // last chunk sequence number issued (guarded by mu)
	env   *writerEnv // what the server told us once (guarded by mu)
	doubt *doubtChunk

	stats struct {
		statements, rows, retries, usersDropped, filesUnmatched, inDoubt, inDoubtDropped atomic.Uint64
	}

	// Test hooks, nil in production. beforeCommit runs inside a chunk's
	// transaction before COMMIT with the chunk's arguments; a non-nil error
	// aborts the chunk as if the statement had failed. commit replaces
	// tx.Commit (to simulate a connection lost while COMMIT was in flight).
	// settleHook fails the read-back of the commit marker.
	beforeCommit func(table string, args []any) error
	commit       func(table string, tx *gosql.Tx) error
	settleHook   func() error
}

// doubtChunk is a chunk whose COMMIT outcome is not known yet.
type doubtChunk struct {
	seq  uint64
	rows *tracker.Batch
	err  error
}

// NewWriter returns a Writer for the tables and columns in s. It does not
// touch the database; the first Write reads what it needs once
// (max_allowed_packet, the log tables' columns, whether the commit marker
// table exists).
func NewWriter(db *gosql.DB, s Schema, o WriterOptions) *Writer {
	w := &Writer{db: db, s: s, o: o.withDefaults()}
	for i := 0; i < len(w.id); i += 8 {
		v := rand.Uint64()
		for j := 0; j < 8; j++ {
			w.id[i+j] = byte(v >> (8 * j))
		}
	}
	return w
}

// Stats returns the cumulative counters.
func (w *Writer) Stats() WriterStats {
	return WriterStats{
		Statements:     w.stats.statements.Load(),
		Rows:           w.stats.rows.Load(),
		Retries:        w.stats.retries.Load(),
		UsersDropped:   w.stats.usersDropped.Load(),
		FilesUnmatched: w.stats.filesUnmatched.Load(),
		InDoubt:        w.stats.inDoubt.Load(),
		InDoubtDropped: w.stats.inDoubtDropped.Load(),
	}
}

// InDoubt is the number of rows the Writer holds because their chunk's
// COMMIT outcome is still unknown (0 normally). The next Write settles them
// first: committed rows are forgotten, uncommitted ones written with the new
// batch. A caller stopping for good may log this number: those rows were
// possibly, not certainly, written.
func (w *Writer) InDoubt() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.doubt == nil {
		return 0
	}
	return w.doubt.rows.Len()
}

// Write writes b: auto-registered torrents, file counters, user totals,
// per-user-and-file rows, then the announce and scrape logs.
//
// Each chunk (one multi-row statement of at most MaxRowsPerStatement rows,
// 65,535 placeholders and max_allowed_packet bytes) runs in its own short
// transaction, in primary-key order, so concurrent writers (the catalog,
// another tracker) take row locks in the same order and cannot deadlock us
// for long; deadlocks (1213) and lock wait timeouts (1205) are retried with
// jittered exponential backoff, up to MaxAttempts per chunk.
//
// On any other failure (or retries exhausted, or ctx done between chunks)
// Write stops and returns the part of b not committed: a new Batch holding
// exactly the rows of the failed chunk and of every later one, with the
// error. The caller restores only that (tracker.Restore), so nothing
// committed is ever written twice. unwritten is nil on success.
//
// One case is neither: the connection breaks while COMMIT is in flight.
// Every chunk transaction also records its sequence number in
// xbt_tracker_writers (migration 00003), so Write reads it back and knows.
// If the database cannot answer right then, the Writer keeps that chunk
// (see InDoubt), returns the later chunks as unwritten with an error
// wrapping ErrCommitUnknown, and settles it at the start of the next Write.
//
// A chunk already sent is not interrupted by ctx between its statement and
// COMMIT (interrupting a COMMIT is what makes its outcome unknown); ctx is
// checked before each chunk, while waiting to retry and during the pause
// between chunks that WithChunkPause asks for.
//
// Deltas for users or files the catalog has deleted are dropped (UPDATE ...
// JOIN never creates rows; counted in Stats). Announce/scrape log entries
// are dropped when the schema has no such table.
func (w *Writer) Write(ctx context.Context, b *tracker.Batch) (unwritten *tracker.Batch, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if b.Len() == 0 && w.doubt == nil {
		return nil, nil
	}
	if err := w.ensureEnv(ctx); err != nil {
		return orEmpty(b), err
	}
	if w.doubt != nil {
		committed, err := w.settle(ctx, w.doubt.seq)
		if err != nil {
			return orEmpty(b), fmt.Errorf("write: settle earlier chunk (%d rows) first: %w: %w", w.doubt.rows.Len(), ErrCommitUnknown, err)
		}
		if !committed {
			b = tracker.MergeBatches(w.doubt.rows, b)
		}
		w.doubt = nil
	}

	parts := w.plan(b)
	gap := chunkPause(ctx)
	first := true
	for pi, p := range parts {
		per := w.chunkRows(p)
		for lo := 0; lo < p.len(); lo += per {
			hi := min(lo+per, p.len())
			if !first {
				pause(ctx, gap)
			}
			first = false
			if err := ctx.Err(); err != nil {
				return remainder(parts, pi, lo), fmt.Errorf("write %s: %w", p.table(), err)
			}
			err := w.execChunk(ctx, p, lo, hi)
			if err == nil {
				continue
			}
			var d *doubtError
			if !errors.As(err, &d) {
				return remainder(parts, pi, lo), err
			}
			committed, serr := w.settle(ctx, d.seq)
			switch {
			case serr == nil && committed:
				w.countCommitted(p, lo, hi, d.affected)
				continue
			case serr == nil:
				return remainder(parts, pi, lo), err
			case errors.Is(serr, errNoMarker):
				// Unknowable: dropping may lose the chunk, retrying may count
				// it twice. The contract is "never twice".
				w.stats.inDoubtDropped.Add(1)
				return remainder(parts, pi, hi), fmt.Errorf("%w; the chunk (%d rows) was dropped because %s", err, hi-lo, serr)
			default:
				held := &tracker.Batch{}
				fill(held)
				p.restore(held, lo, hi)
				w.doubt = &doubtChunk{seq: d.seq, rows: held, err: err}
				return remainder(parts, pi, hi), fmt.Errorf("%w; %d rows held until the next Write settles them: %w", err, hi-lo, serr)
			}
		}
	}
	return nil, nil
}

// chunkPauseKey carries WithChunkPause's pause in a context.
type chunkPauseKey struct{}

// WithChunkPause returns a context under which Write sleeps d between two
// chunks (not before the first, not after the last). A periodic flush uses it
// to yield the CPU: the tracker usually runs on few cores and the database's
// work for one chunk competes with the announces for them, so spreading the
// chunks out keeps announce latency down while a large batch is written. The
// pause is cut short when ctx ends (Write then returns the rest as
// unwritten, as for any cancellation). d <= 0 means no pause.
func WithChunkPause(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, chunkPauseKey{}, d)
}

func chunkPause(ctx context.Context) time.Duration {
	d, _ := ctx.Value(chunkPauseKey{}).(time.Duration)
	return d
}

// pause sleeps d unless ctx ends first.
func pause(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// orEmpty returns b, or an empty Batch for a nil b (so that a non-nil error
// always comes with a non-nil remainder the caller can restore).
func orEmpty(b *tracker.Batch) *tracker.Batch {
	if b == nil {
		b = &tracker.Batch{}
		fill(b)
	}
	return b
}

// doubtError is a chunk whose COMMIT failed on the connection (not with a
// server error), so whether it committed is unknown.
type doubtError struct {
	seq      uint64
	affected int64
	err      error
}

func (e *doubtError) Error() string { return e.err.Error() }
func (e *doubtError) Unwrap() []error {
	return []error{ErrCommitUnknown, e.err}
}

// execChunk writes rows [lo, hi) of p, retrying deadlocks and lock wait
// timeouts.
func (w *Writer) execChunk(ctx context.Context, p part, lo, hi int) error {
	q, args, err := p.build(lo, hi)
	if err != nil {
		return fmt.Errorf("write %s: build statement: %w", p.table(), err)
	}
	backoff := w.o.Backoff
	for attempt := 1; ; attempt++ {
		affected, err := w.tryChunk(ctx, p, q, args)
		if err == nil {
			w.countCommitted(p, lo, hi, affected)
			return nil
		}
		var d *doubtError
		if errors.As(err, &d) {
			d.err = fmt.Errorf("write %s (%d rows): %w", p.table(), hi-lo, d.err)
			return d
		}
		if !retryable(err) || attempt >= w.o.MaxAttempts {
			if retryable(err) {
				return fmt.Errorf("write %s (%d rows): gave up after %d attempts: %w", p.table(), hi-lo, attempt, err)
			}
			return fmt.Errorf("write %s (%d rows): %w", p.table(), hi-lo, err)
		}
		w.stats.retries.Add(1)
		// Full jitter in [backoff/2, backoff): two writers that deadlocked
		// each other should not retry in lockstep.
		pause := backoff/2 + time.Duration(rand.Int64N(int64(backoff/2)+1))
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("write %s (%d rows): %w (while retrying after: %w)", p.table(), hi-lo, ctx.Err(), err)
		case <-t.C:
		}
		backoff *= 2
	}
}

// tryChunk runs one attempt of a chunk in its own transaction: the
// statement, the commit marker, COMMIT. It returns the statement's affected
// rows.
//
// The transaction is begun with a context that ctx's cancellation does not
// reach, because database/sql rolls a transaction back from another
// goroutine when its context ends, which could cut a COMMIT in flight. The
// statements themselves use ctx: cancelling one of them can only abort a
// transaction that has not been committed.
func (w *Writer) tryChunk(ctx context.Context, p part, q string, args []any) (int64, error) {
	tx, err := w.db.BeginTx(context.WithoutCancel(ctx), nil)
	if err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		_ = tx.Rollback()
		return 0, err
	}
	affected, _ := res.RowsAffected()
	w.seq++
	seq := w.seq
	if w.env.marker {
		if err := w.mark(ctx, tx, seq); err != nil {
			_ = tx.Rollback()
			return 0, fmt.Errorf("commit marker %s: %w", writersTable, err)
		}
	}
	if w.beforeCommit != nil {
		if err := w.beforeCommit(p.table(), args); err != nil {
			_ = tx.Rollback()
			return 0, err
		}
	}
	if w.commit != nil {
		err = w.commit(p.table(), tx)
	} else {
		err = tx.Commit()
	}
	if err == nil {
		return affected, nil
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return 0, err // the server refused the COMMIT: not committed
	}
	w.stats.inDoubt.Add(1)
	return 0, &doubtError{seq: seq, affected: affected, err: fmt.Errorf("COMMIT: %w", err)}
}

func (w *Writer) countCommitted(p part, lo, hi int, affected int64) {
	n := uint64(hi - lo)
	w.stats.statements.Add(1)
	w.stats.rows.Add(n)
	if affected >= 0 && uint64(affected) < n {
		switch p.(type) {
		case *userPart:
			w.stats.usersDropped.Add(n - uint64(affected))
		case *filePart:
			w.stats.filesUnmatched.Add(n - uint64(affected))
		}
	}
}

// retryable reports whether err is a deadlock or lock wait timeout: the
// server has rolled the statement back, so running it again is safe.
func retryable(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == errDeadlock || me.Number == errLockWaitTimeout)
}

// chunkRows is how many rows of p go into one statement: at most
// MaxRowsPerStatement, at most 65,535 placeholders, and an estimated
// statement text under max_allowed_packet (interpolateParams=true sends the
// text, so its size is what must fit).
func (w *Writer) chunkRows(p part) int {
	n := w.o.MaxRowsPerStatement
	if c := p.cols(); c > 0 {
		n = min(n, maxPlaceholders/c)
	}
	if w.env != nil && w.env.maxPacket > 0 {
		budget := w.env.maxPacket - p.fixedBytes() - packetSlack
		n = min(n, max(budget, 0)/p.rowBytes())
	}
	return max(n, 1)
}

// packetSlack is kept free in every packet for the protocol header and
// estimation error.
const packetSlack = 1024

// DeleteFiles deletes the xbt_files rows with these fids, but only those
// still flagged deleted (flags & 1): XBT's polite delete, done by the
// tracker once it has dropped the torrents from memory. A catalog that
// un-flagged a row in the meantime keeps it. xbt_files_users rows are left
// alone, like XBT does.
func (w *Writer) DeleteFiles(ctx context.Context, fids []uint32) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(fids) == 0 {
		return nil
	}
	p, err := newDeletePart(w.s, fids)
	if err != nil {
		return err
	}
	per := w.chunkRows(p)
	for lo := 0; lo < p.len(); lo += per {
		hi := min(lo+per, p.len())
		q, args, err := p.build(lo, hi)
		if err != nil {
			return fmt.Errorf("delete from %s: build statement: %w", w.s.Files, err)
		}
		backoff := w.o.Backoff
		for attempt := 1; ; attempt++ {
			_, err = w.db.ExecContext(ctx, q, args...)
			if err == nil || !retryable(err) || attempt >= w.o.MaxAttempts {
				break
			}
			w.stats.retries.Add(1)
			select {
			case <-ctx.Done():
				return fmt.Errorf("delete from %s: %w", w.s.Files, ctx.Err())
			case <-time.After(backoff):
			}
			backoff *= 2
		}
		if err != nil {
			return fmt.Errorf("delete from %s: %w", w.s.Files, err)
		}
	}
	return nil
}
