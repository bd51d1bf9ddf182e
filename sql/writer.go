package sql

import (
	"context"
	gosql "database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

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
	// Cluster: this tracker is one of several writing the same database,
	// each owning the torrents a load balancer routes to it. A torrent that
	// moves between instances is briefly held by two: the counts of
	// xbt_files and active/left of xbt_files_users are then written only
	// by the one with the newer announce (mtime), so the old owner's
	// expiry cannot overwrite the new owner's rows. Summed columns are
	// added as always.
	Cluster bool
	// Logger receives what an operator must hear of: quarantined rows,
	// saturated sums, COMMITs of unknown outcome and how they were
	// settled. nil: no logging.
	Logger *zap.Logger
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
	if o.Logger == nil {
		o.Logger = zap.NewNop()
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
	// Quarantined counts rows set aside because the database refused them
	// on their own (see writer_quarantine.go); QuarantineGivenUp those
	// given up on after QuarantineKeep or at stop (logged with their
	// values); QuarantineWritten those written after all on a retry.
	Quarantined, QuarantineGivenUp, QuarantineWritten uint64
	// Clamped counts rows written with their sums saturated at the
	// column's maximum.
	Clamped uint64
}

// Writer writes the engine's pending deltas (tracker.Batch) back to the
// database. It is safe for concurrent use, but calls are serialised: chunk
// sequence numbers (the commit marker) must be issued one at a time.
type Writer struct {
	db *gosql.DB
	s  Schema
	o  WriterOptions

	log *zap.Logger

	mu        sync.Mutex // serialises Write and DeleteFiles
	id        [16]byte   // this Writer's key in xbt_tracker_writers
	seq       uint64     // last chunk sequence number issued (guarded by mu)
	env       *writerEnv // what the server told us once (guarded by mu)
	doubt     *doubtChunk
	q         quarantine          // rows the database refuses (guarded by mu)
	clampKeys map[rowKey]struct{} // rows whose sums saturate (guarded by mu)

	// Row counts readable without mu (metrics must not wait for a flush).
	inDoubtRows, quarantinedRows atomic.Int64

	stats struct {
		statements, rows, retries, usersDropped, filesUnmatched, inDoubt, inDoubtDropped atomic.Uint64
		quarantined, quarantineGivenUp, quarantineWritten, clamped                       atomic.Uint64
	}

	// now is the clock (time.Now; tests set it).
	now func() time.Time

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
	seq   uint64
	rows  *tracker.Batch
	err   error
	table string
}

// NewWriter returns a Writer for the tables and columns in s. It does not
// touch the database; the first Write reads what it needs once
// (max_allowed_packet, the log tables' columns, whether the commit marker
// table exists).
func NewWriter(db *gosql.DB, s Schema, o WriterOptions) *Writer {
	w := &Writer{db: db, s: s, o: o.withDefaults()}
	w.log = w.o.Logger
	for i := 0; i < len(w.id); i += 8 {
		binary.LittleEndian.PutUint64(w.id[i:], rand.Uint64())
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

		Quarantined:       w.stats.quarantined.Load(),
		QuarantineGivenUp: w.stats.quarantineGivenUp.Load(),
		QuarantineWritten: w.stats.quarantineWritten.Load(),
		Clamped:           w.stats.clamped.Load(),
	}
}

func (w *Writer) clock() time.Time {
	if w.now != nil {
		return w.now()
	}
	return time.Now()
}

// InDoubt is the number of rows the Writer holds because their chunk's
// COMMIT outcome is still unknown (0 normally). The next Write settles them
// first: committed rows are forgotten, uncommitted ones written with the new
// batch. A caller stopping for good may log this number: those rows were
// possibly, not certainly, written.
//
// It does not wait for a Write in progress (it is read by /metrics).
func (w *Writer) InDoubt() int { return int(w.inDoubtRows.Load()) }

// Quarantined is the number of rows held in quarantine (0 normally). It
// does not wait for a Write in progress.
func (w *Writer) Quarantined() int { return int(w.quarantinedRows.Load()) }

// Prepare reads once what the Writer needs from the server (as the first
// Write would) and says, at warning level, what the database lacks: without
// the commit marker table (migration 00003) a COMMIT whose outcome is
// unknown cannot be read back, and its chunk is dropped rather than risk
// counting it twice. serve calls it at start-up, so the operator hears of it
// before anything is at stake.
func (w *Writer) Prepare(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.ensureEnv(ctx); err != nil {
		return err
	}
	if !w.env.marker {
		w.log.Warn("the database has no " + writersTable + " table: a COMMIT whose outcome is unknown (a connection lost or an error reply during COMMIT) cannot be read back, so its chunk of statistics is dropped rather than counted twice; apply migration 00003: xbt-tracker migrate up")
	}
	return nil
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
// A chunk the server refuses for something in its rows (rowError: out of
// range, data too long, a foreign key, a trigger the catalog added) is split
// in halves until the rows at fault stand alone, so every other row commits
// in this same Write. A lone row whose sum went past its column's maximum is
// written again with the sum saturated there (counted in Stats.Clamped);
// any other lone row is quarantined (see writer_quarantine.go): set aside,
// logged, counted, retried alone later, and never allowed to hold anything
// back.
//
// On any other failure (connection lost, retries exhausted, a statement-wide
// error such as a missing privilege, ctx done between chunks) Write stops
// and returns the part of b not committed: a new Batch holding exactly the
// rows of the failed chunk and of every later one, with the error. The
// caller restores only that (tracker.Restore), so nothing committed is ever
// written twice. unwritten is nil on success.
//
// One case is neither: COMMIT was sent and its answer is an error, is lost
// with the connection, or does not come before ctx's deadline. Every chunk
// transaction also records its sequence number in xbt_tracker_writers
// (migration 00003), so Write reads it back and knows. If the database
// cannot answer right then, the Writer keeps that chunk (see InDoubt),
// returns the later chunks as unwritten with an error wrapping
// ErrCommitUnknown, and settles it at the start of the next Write.
//
// ctx bounds everything: the connection, every statement, the wait for
// COMMIT's answer (its deadline does; a cancellation leaves a COMMIT already
// sent a moment to answer, commitGrace, so that stopping does not make
// outcomes unknown for nothing), the settling read, and the pause between
// chunks that WriteOptions.ChunkPause asks for (WriteWith).
//
// Deltas for users or files the catalog has deleted are dropped (UPDATE ...
// JOIN never creates rows; counted in Stats). Announce/scrape log entries
// are dropped when the schema has no such table.
func (w *Writer) Write(ctx context.Context, b *tracker.Batch) (unwritten *tracker.Batch, err error) {
	return w.WriteWith(ctx, b, WriteOptions{})
}

// WriteWith is Write tuned by o (see WriteOptions): a periodic flush paces
// its chunks with o.ChunkPause, a final one does not.
func (w *Writer) WriteWith(ctx context.Context, b *tracker.Batch, o WriteOptions) (unwritten *tracker.Batch, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.clock()
	if b.Len() == 0 && w.doubt == nil && !w.q.due(now) {
		return nil, nil
	}
	if err := w.ensureEnv(ctx); err != nil {
		return orEmpty(b), err
	}
	if w.doubt != nil {
		d := w.doubt
		committed, err := w.settle(ctx, d.seq)
		if err != nil {
			return orEmpty(b), fmt.Errorf("write: settle earlier chunk (%d rows) first: %w: %w", d.rows.Len(), ErrCommitUnknown, err)
		}
		w.logSettled(d.table, d.rows.Len(), d.err, committed, "")
		if !committed {
			b = tracker.MergeBatches(d.rows, b)
		}
		w.setDoubt(nil)
	}
	b = orEmpty(b)
	w.divert(b)

	parts := w.plan(b)
	first := true
	for pi, p := range parts {
		per := w.chunkRows(p)
		for lo := 0; lo < p.len(); lo += per {
			hi := min(lo+per, p.len())
			if !first {
				pause(ctx, o.ChunkPause)
			}
			first = false
			if err := ctx.Err(); err != nil {
				return remainder(parts, pi, lo), fmt.Errorf("write %s: %w", p.table(), err)
			}
			if done, err := w.writeRange(ctx, p, lo, hi); err != nil {
				return remainder(parts, pi, done), err
			}
		}
	}
	w.retryQuarantined(ctx, now, false)
	return nil, nil
}

// writeRange writes rows [lo, hi) of p, isolating rows the server refuses
// (see Write). It returns how far the rows are done with: on error, rows
// [lo, done) are committed or quarantined and rows [done, hi) are not, so
// the caller hands back exactly those. Halves are written left to right, so
// what is done is always a prefix.
func (w *Writer) writeRange(ctx context.Context, p part, lo, hi int) (int, error) {
	clamp := w.mustClamp(p, lo, hi)
	err := w.execRange(ctx, p, lo, hi, clamp)
	switch {
	case err == nil:
		return hi, nil
	case isSkip(err):
		return hi, err
	case !rowError(err) || ctx.Err() != nil:
		return lo, err
	}
	if hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if done, err := w.writeRange(ctx, p, lo, mid); err != nil {
			return done, err
		}
		return w.writeRange(ctx, p, mid, hi)
	}
	if _, ok := p.(clamper); ok && !clamp && outOfRange(err) {
		// A sum past its column's maximum: saturate it there.
		cerr := w.execRange(ctx, p, lo, hi, true)
		switch {
		case cerr == nil:
			w.rememberClamp(p.row(lo), p.table(), err)
			w.stats.clamped.Add(1)
			return hi, nil
		case isSkip(cerr):
			return hi, cerr
		case !rowError(cerr):
			return lo, cerr
		}
		err = cerr
	}
	w.quarantine(p, lo, err)
	return hi, nil
}

// WriteOptions tune one Write (WriteWith); the zero value is Write's.
type WriteOptions struct {
	// ChunkPause is slept between two chunks (not before the first, not
	// after the last). A periodic flush uses it to yield the CPU: the
	// tracker usually runs on few cores and the database's work for one
	// chunk competes with the announces for them, so spreading the chunks
	// out keeps announce latency down while a large batch is written. The
	// pause is cut short when ctx ends (Write then returns the rest as
	// unwritten, as for any cancellation). <= 0 means no pause.
	ChunkPause time.Duration
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
