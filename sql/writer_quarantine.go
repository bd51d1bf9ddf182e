package sql

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// The quarantine: rows the database refuses on their own, for a reason
// retrying at once cannot fix (a trigger the catalog added that SIGNALs, a
// foreign key, a value a CHECK constraint rejects). They must never hold
// back anyone else's statistics, and must not be retried forever.
//
// What happens to their bytes: a quarantined row is kept in memory, with
// every newer delta of the same key added to it (so that key costs no
// failed statement per flush), and tried again alone every QuarantineRetry
// (the catalog may fix the row, or drop its trigger). Written then, nothing
// is lost. Still refused after QuarantineKeep, or when the tracker stops,
// it is given up: one error line with the table, the key and the exact
// values it carried, so an operator can apply them by hand, and a count in
// xbt_tracker_flush_quarantine_given_up_total. At most quarantineMax rows
// are held; past that a newly refused row is given up at once.
const (
	QuarantineRetry = 10 * time.Minute
	QuarantineKeep  = time.Hour
	quarantineMax   = 10_000
	clampKeysMax    = 10_000
)

// quarantined is one row set aside.
type quarantined struct {
	table   string
	info    rowInfo        // key and the key's text (bytes are in rows)
	rows    *tracker.Batch // the row, newer deltas of its key merged in
	err     error          // the database's last answer
	since   time.Time      // first refused
	lastTry time.Time
}

type quarantine struct {
	keyed map[rowKey]*quarantined // rows with a primary key
	logs  []*quarantined          // log rows: each is its own
}

func (q *quarantine) len() int { return len(q.keyed) + len(q.logs) }

// due reports whether some row is due for another try.
func (q *quarantine) due(now time.Time) bool {
	for _, e := range q.keyed {
		if now.Sub(e.lastTry) >= QuarantineRetry {
			return true
		}
	}
	for _, e := range q.logs {
		if now.Sub(e.lastTry) >= QuarantineRetry {
			return true
		}
	}
	return false
}

// quarantine sets row i of p aside after the database refused it alone.
func (w *Writer) quarantine(p part, i int, err error) {
	now := w.clock()
	one := &tracker.Batch{}
	fill(one)
	p.restore(one, i, i+1)
	info := p.row(i)
	w.stats.quarantined.Add(1)
	if w.q.len() >= quarantineMax {
		w.giveUp(&quarantined{table: p.table(), info: info, rows: one, err: err, since: now}, "the quarantine is full")
		return
	}
	e := &quarantined{table: p.table(), info: info, rows: one, err: err, since: now, lastTry: now}
	if info.key.kind == kindLog {
		w.q.logs = append(w.q.logs, e)
	} else {
		if w.q.keyed == nil {
			w.q.keyed = map[rowKey]*quarantined{}
		}
		if old := w.q.keyed[info.key]; old != nil {
			// A retry of this key failed again: keep its history.
			e.since = old.since
		}
		w.q.keyed[info.key] = e
	}
	w.quarantinedRows.Store(int64(w.q.len()))
	w.log.Warn("quarantined a row the database refuses; every other row was written, this one is retried alone every 10 minutes for an hour, then given up (logged with its values)",
		zap.String("table", p.table()), zap.String("key", info.text), zap.Error(err),
		zap.Uint64("uploaded", info.uploaded), zap.Uint64("downloaded", info.downloaded),
		zap.Int("quarantined_rows", w.q.len()))
}

// divert moves b's rows whose key is quarantined into the quarantine: the
// newer delta joins the refused one instead of failing a statement again.
func (w *Writer) divert(b *tracker.Batch) {
	for k, e := range w.q.keyed {
		if one := takeRow(b, k); one != nil {
			e.rows = tracker.MergeBatches(e.rows, one)
		}
	}
}

// takeRow removes key k's row from b and returns it as a one-row Batch, or
// nil when b has none.
func takeRow(b *tracker.Batch, k rowKey) *tracker.Batch {
	one := &tracker.Batch{}
	fill(one)
	var moved bool
	switch k.kind {
	case kindUser:
		moved = moveKey(b.Users, one.Users, k.a)
	case kindFile:
		moved = moveKey(b.Files, one.Files, k.a)
	case kindFileUser:
		moved = moveKey(b.FileUsers, one.FileUsers, tracker.FileUserKey{Fid: k.a, UID: k.b})
	case kindNewFile:
		moved = moveKey(b.NewFiles, one.NewFiles, k.ih)
	}
	if !moved {
		return nil
	}
	return one
}

// moveKey moves k's entry from src to dst, if src has one.
func moveKey[K comparable, V any](src, dst map[K]V, k K) bool {
	v, ok := src[k]
	if ok {
		delete(src, k)
		dst[k] = v
	}
	return ok
}

// retryQuarantined tries each quarantined row that is due (every one when
// force) alone. A row written is forgotten; a row refused again waits for
// its next turn, or is given up once it has been refused for
// QuarantineKeep. A failure that is not the row's (the connection) stops
// the retries; the rows wait for the next Write.
func (w *Writer) retryQuarantined(ctx context.Context, now time.Time, force bool) {
	if w.q.len() == 0 {
		return
	}
	var due []*quarantined
	for _, e := range w.q.keyed {
		if force || now.Sub(e.lastTry) >= QuarantineRetry {
			due = append(due, e)
		}
	}
	for _, e := range w.q.logs {
		if force || now.Sub(e.lastTry) >= QuarantineRetry {
			due = append(due, e)
		}
	}
	for _, e := range due {
		if ctx.Err() != nil {
			return
		}
		parts := w.plan(e.rows)
		var err error
		for _, p := range parts {
			for i := 0; i < p.len() && err == nil; i++ {
				err = w.execRange(ctx, p, i, i+1, w.mustClamp(p, i, i+1))
			}
		}
		e.lastTry = now
		switch {
		case err == nil:
			w.forget(e)
			w.stats.quarantineWritten.Add(1)
			w.log.Info("a quarantined row was written after all", zap.String("table", e.table), zap.String("key", e.info.text),
				zap.Duration("quarantined_for", now.Sub(e.since)))
		case isSkip(err):
			w.forget(e) // held or dropped: out of the quarantine's hands
		case !rowError(err):
			return
		default:
			e.err = err
			if now.Sub(e.since) >= QuarantineKeep {
				w.forget(e)
				w.giveUp(e, "refused for an hour")
			}
		}
	}
}

func (w *Writer) forget(e *quarantined) {
	if e.info.key.kind == kindLog {
		for i, x := range w.q.logs {
			if x == e {
				w.q.logs = append(w.q.logs[:i], w.q.logs[i+1:]...)
				break
			}
		}
	} else {
		delete(w.q.keyed, e.info.key)
	}
	w.quarantinedRows.Store(int64(w.q.len()))
}

// giveUp logs a quarantined row's values at error level: they are not in
// the database and will not be.
func (w *Writer) giveUp(e *quarantined, why string) {
	w.stats.quarantineGivenUp.Add(1)
	var up, down uint64
	for _, d := range e.rows.Users {
		up, down = d.Uploaded, d.Downloaded
	}
	for _, d := range e.rows.FileUsers {
		up, down = d.Uploaded, d.Downloaded
	}
	w.log.Error("GAVE UP on a quarantined row: its statistics are NOT in the database; apply them by hand if they are due",
		zap.String("why", why), zap.String("table", e.table), zap.String("key", e.info.text),
		zap.Uint64("uploaded", up), zap.Uint64("downloaded", down), zap.NamedError("last_error", e.err),
		zap.Duration("quarantined_for", w.clock().Sub(e.since)))
}

// FinishQuarantine is for a tracker stopping for good: it tries every
// quarantined row once more, then gives up on those still refused (each
// logged at error level with its values). It returns how many it gave up
// on.
func (w *Writer) FinishQuarantine(ctx context.Context) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.q.len() == 0 {
		return 0
	}
	if w.ensureEnv(ctx) == nil {
		w.retryQuarantined(ctx, w.clock(), true)
	}
	n := 0
	for _, e := range w.q.keyed {
		w.giveUp(e, "the tracker is stopping")
		n++
	}
	for _, e := range w.q.logs {
		w.giveUp(e, "the tracker is stopping")
		n++
	}
	w.q = quarantine{}
	w.quarantinedRows.Store(0)
	return n
}

// mustClamp reports whether rows [lo, hi) of p hold a key whose sums
// already went past a column's maximum once: the chunk is then written with
// saturating sums straight away instead of failing first.
func (w *Writer) mustClamp(p part, lo, hi int) bool {
	if len(w.clampKeys) == 0 {
		return false
	}
	if _, ok := p.(clamper); !ok {
		return false
	}
	return w.clampedRows(p, lo, hi) > 0
}

// clampedRows counts the rows of [lo, hi) whose sums saturate.
func (w *Writer) clampedRows(p part, lo, hi int) uint64 {
	var n uint64
	for i := lo; i < hi; i++ {
		if _, ok := w.clampKeys[p.key(i)]; ok {
			n++
		}
	}
	return n
}

// rememberClamp notes that row's sums go past a column's maximum, and says
// so once.
func (w *Writer) rememberClamp(row rowInfo, table string, err error) {
	if w.clampKeys == nil {
		w.clampKeys = map[rowKey]struct{}{}
	}
	if _, ok := w.clampKeys[row.key]; ok || len(w.clampKeys) >= clampKeysMax {
		return
	}
	w.clampKeys[row.key] = struct{}{}
	w.log.Warn("a sum reached its column's maximum and is saturated there (a catalog bonus, an inherited wrap-around or a lying client); the row is written clamped from now on",
		zap.String("table", table), zap.String("key", row.text),
		zap.Uint64("uploaded_delta", row.uploaded), zap.Uint64("downloaded_delta", row.downloaded), zap.Error(err))
}
