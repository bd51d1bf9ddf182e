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
// chunks that WithChunkPause asks for.
//
// Deltas for users or files the catalog has deleted are dropped (UPDATE ...
// JOIN never creates rows; counted in Stats). Announce/scrape log entries
// are dropped when the schema has no such table.
func (w *Writer) Write(ctx context.Context, b *tracker.Batch) (unwritten *tracker.Batch, err error) {
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

// execRange writes rows [lo, hi) of p as one chunk, retrying deadlocks and
// lock wait timeouts, and settles a COMMIT of unknown outcome through the
// commit marker. nil: committed. A *skipError: the rows must not be handed
// back (dropped, or held as in doubt). Any other error: not committed.
func (w *Writer) execRange(ctx context.Context, p part, lo, hi int, clamp bool) error {
	err := w.execChunk(ctx, p, lo, hi, clamp)
	var d *doubtError
	if !errors.As(err, &d) {
		return err
	}
	committed, serr := w.settle(ctx, d.seq)
	switch {
	case serr == nil && committed:
		w.logSettled(p.table(), hi-lo, d.err, true, "")
		w.countCommitted(p, lo, hi, d.affected, clamp)
		return nil
	case serr == nil:
		w.logSettled(p.table(), hi-lo, d.err, false, "")
		return fmt.Errorf("%w (read back: not committed)", d.err)
	case errors.Is(serr, errNoMarker):
		// Unknowable: dropping may lose the chunk, retrying may count it
		// twice. The contract is "never twice".
		w.stats.inDoubtDropped.Add(1)
		up, down := rangeBytes(p, lo, hi)
		w.log.Warn("commit outcome unknown; the chunk is DROPPED (never counted twice) because the commit marker table is missing: apply migration 00003 (xbt-tracker migrate up)",
			zap.String("settled", "dropped"), zap.String("table", p.table()), zap.Int("rows", hi-lo),
			zap.Uint64("uploaded_bytes", up), zap.Uint64("downloaded_bytes", down), zap.NamedError("commit_error", d.err))
		return &skipError{fmt.Errorf("%w; the chunk (%d rows) was dropped because %w", d.err, hi-lo, serr)}
	default:
		held := &tracker.Batch{}
		fill(held)
		p.restore(held, lo, hi)
		w.setDoubt(&doubtChunk{seq: d.seq, rows: held, err: d.err, table: p.table()})
		w.logSettled(p.table(), hi-lo, d.err, false, "held")
		return &skipError{fmt.Errorf("%w; %d rows held until the next Write settles them: %w", d, hi-lo, serr)}
	}
}

// skipError: execRange neither committed the rows nor may they be handed
// back (dropped, or held).
type skipError struct{ err error }

func (e *skipError) Error() string { return e.err.Error() }
func (e *skipError) Unwrap() error { return e.err }

func isSkip(err error) bool {
	var s *skipError
	return errors.As(err, &s)
}

// rangeBytes sums the uploaded and downloaded bytes rows [lo, hi) carry.
func rangeBytes(p part, lo, hi int) (up, down uint64) {
	for i := lo; i < hi; i++ {
		r := p.row(i)
		up += r.uploaded
		down += r.downloaded
	}
	return up, down
}

// logSettled says how a COMMIT of unknown outcome was settled: at info when
// read back (nothing is lost or doubled), at warn when held.
func (w *Writer) logSettled(table string, rows int, commitErr error, committed bool, how string) {
	if how == "" {
		how = "not committed"
		if committed {
			how = "committed"
		}
	}
	f := []zap.Field{zap.String("settled", how), zap.String("table", table), zap.Int("rows", rows), zap.NamedError("commit_error", commitErr)}
	if how == "held" {
		w.log.Warn("commit outcome unknown and the database cannot be asked now; the chunk is held and settled by the next write", f...)
		return
	}
	w.log.Info("commit outcome unknown; read back from the commit marker", f...)
}

func (w *Writer) setDoubt(d *doubtChunk) {
	w.doubt = d
	n := 0
	if d != nil {
		n = d.rows.Len()
	}
	w.inDoubtRows.Store(int64(n))
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

// doubtError is a chunk whose COMMIT was sent but not answered with
// success, so whether it committed is unknown.
type doubtError struct {
	seq      uint64
	affected int64
	err      error
}

func (e *doubtError) Error() string { return e.err.Error() }
func (e *doubtError) Unwrap() []error {
	return []error{ErrCommitUnknown, e.err}
}

// execChunk writes rows [lo, hi) of p (saturating sums when clamp),
// retrying deadlocks and lock wait timeouts.
func (w *Writer) execChunk(ctx context.Context, p part, lo, hi int, clamp bool) error {
	build := p.build
	if c, ok := p.(clamper); ok && clamp {
		build = c.buildClamped
	}
	q, args, err := build(lo, hi)
	if err != nil {
		return fmt.Errorf("write %s: build statement: %w", p.table(), err)
	}
	backoff := w.o.Backoff
	for attempt := 1; ; attempt++ {
		affected, err := w.tryChunk(ctx, p, q, args)
		if err == nil {
			w.countCommitted(p, lo, hi, affected, clamp)
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

// commitGrace is how long a COMMIT already sent may still answer after the
// write was cancelled (not timed out): normally milliseconds; waiting a
// little saves settling an unknown outcome for nothing.
const commitGrace = 2 * time.Second

// errCommitNoAnswer: COMMIT was sent and did not answer in time. Whether it
// committed is unknown; it is settled through the commit marker.
var errCommitNoAnswer = errors.New("COMMIT sent, no answer before the write's deadline")

// tryChunk runs one attempt of a chunk in its own transaction: the
// statement, the commit marker, COMMIT. It returns the statement's affected
// rows.
//
// Once begun, the transaction's context carries ctx's deadline but not its
// cancellation: a stop should let a chunk already written commit rather
// than roll it back, while the deadline bounds everything (database/sql
// rolls the transaction back when that context ends, and the driver gives
// up on a connection attempt or a statement). The statements themselves
// use ctx. COMMIT takes no context in database/sql (the driver waits up to
// its read timeout), so commitBounded waits for it at most until the
// deadline.
func (w *Writer) tryChunk(ctx context.Context, p part, q string, args []any) (int64, error) {
	txCtx, cancel := deadlineOnly(ctx)
	defer cancel()
	// Until the transaction has begun, a cancellation does reach it: the
	// connection attempt and BEGIN of a stopping tracker must not wait for
	// a hung database.
	stop := context.AfterFunc(ctx, cancel)
	tx, err := w.db.BeginTx(txCtx, nil)
	if !stop() {
		if err == nil {
			_ = tx.Rollback()
		}
		return 0, fmt.Errorf("begin: %w", ctx.Err())
	}
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
	err = w.commitBounded(ctx, txCtx, p.table(), tx)
	if err == nil {
		return affected, nil
	}
	if commitNotSent(err) {
		return 0, fmt.Errorf("COMMIT not sent: %w", err)
	}
	// Sent: an error reply (a proxy may answer one for a backend that did
	// commit), a lost connection, or no answer in time. Only the commit
	// marker knows.
	w.stats.inDoubt.Add(1)
	return 0, &doubtError{seq: seq, affected: affected, err: fmt.Errorf("COMMIT: %w", err)}
}

// commitBounded commits tx, waiting for the answer until txCtx's deadline,
// or for commitGrace once ctx is cancelled. A COMMIT given up on goes on in
// its goroutine until the driver's read timeout; its outcome is settled
// through the commit marker (whose locking read waits for it).
func (w *Writer) commitBounded(ctx, txCtx context.Context, table string, tx *gosql.Tx) error {
	done := make(chan error, 1)
	hook := w.commit
	go func() {
		if hook != nil {
			done <- hook(table, tx)
			return
		}
		done <- tx.Commit()
	}()
	select {
	case err := <-done:
		return err
	case <-txCtx.Done():
		return errCommitNoAnswer
	case <-ctx.Done():
	}
	t := time.NewTimer(commitGrace)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-txCtx.Done():
	case <-t.C:
	}
	return errCommitNoAnswer
}

// deadlineOnly returns a context with ctx's deadline and values but not its
// cancellation (it ends at the deadline or when cancel is called).
func deadlineOnly(ctx context.Context) (context.Context, context.CancelFunc) {
	c := context.WithoutCancel(ctx)
	if dl, ok := ctx.Deadline(); ok {
		return context.WithDeadline(c, dl)
	}
	return context.WithCancel(c)
}

func (w *Writer) countCommitted(p part, lo, hi int, affected int64, clamped bool) {
	n := uint64(hi - lo)
	w.stats.statements.Add(1)
	w.stats.rows.Add(n)
	if clamped {
		w.stats.clamped.Add(w.clampedRows(p, lo, hi))
	}
	if affected >= 0 && uint64(affected) < n {
		switch p.(type) {
		case *userPart:
			w.stats.usersDropped.Add(n - uint64(affected))
		case *filePart:
			w.stats.filesUnmatched.Add(n - uint64(affected))
		}
	}
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
