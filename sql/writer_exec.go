// Executing a Writer's chunks: one short transaction per chunk with the
// commit marker, retries of deadlocks and lock wait timeouts, COMMITs of
// unknown outcome settled or held, and chunk sizing.

package sql

import (
	"context"
	gosql "database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"go.uber.org/zap"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

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
	n := uint64(hi - lo) //nolint:gosec // G115: rows [lo, hi) of a part, so hi >= lo >= 0
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
