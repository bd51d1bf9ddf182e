package sync

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	xsql "github.com/xbt-tracker/xbt-tracker/sql"
	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// Flush writes the pending ledger to the database: the ledger is swapped
// for an empty one (announces never wait), the batch is written, and on
// failure exactly the rows the Writer did not commit are merged back
// (tracker.Restore adds the summed fields to whatever announces recorded
// meanwhile), to be retried by the next Flush. Nothing is dropped.
//
// A failure, a time-out included, is a stall: the first of a streak is
// logged as a warning with the error, the rows pending and the age of the
// oldest delta not yet written; later ones at debug level; the recovery at
// info level. Only a flush cut short by its caller (a cancelled ctx: the
// process stopping) is not the database's failure and is logged at debug
// level. A successful flush logs one summary line at debug level.
//
// Flush writes the chunks back to back; Run's periodic flush paces them
// (flushPause) so the database does not compete with the announces for the
// CPU in one long burst.
func (s *Syncer) Flush(ctx context.Context) error { return s.flush(ctx, false, false) }

// Pacing of the periodic flush (see flushPause).
const (
	// flushChunkPause is the pause between two chunks of a periodic flush.
	// A chunk of 250 rows takes the database about as long; pausing
	// halves the time the database competes with the announces for the
	// CPU, in short bursts (docs/BENCHMARKS.md, "Latency during a flush").
	flushChunkPause = 6 * time.Millisecond
	// flushPauseShare is the share of WriteInterval the pauses of one flush
	// may add up to, so that a paced flush still ends well before the
	// next one is due.
	flushPauseShare = 3
)

// flushPause is the pause between chunks for a periodic flush of n rows:
// flushChunkPause, less when the pauses would add up to more than
// WriteInterval/flushPauseShare.
func (s *Syncer) flushPause(n int) time.Duration {
	chunks := n/xsql.DefaultMaxRowsPerStatement + 1
	return min(flushChunkPause, s.o.WriteInterval/flushPauseShare/time.Duration(chunks))
}

// flush is Flush; paced (the periodic flush) spreads the chunks out with
// flushPause; final (Shutdown's attempts) leaves the reporting of failures
// to Shutdown's loss report.
func (s *Syncer) flush(ctx context.Context, paced, final bool) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.logCappedCredits()
	b := s.trk.Drain()
	n := b.Len()
	if n == 0 && s.w.InDoubt() == 0 && s.w.Quarantined() == 0 {
		// Nothing to write is a successful flush: the status says the
		// write-back is healthy.
		s.flushOK(time.Now())
		return nil
	}
	start := time.Now()
	var wo xsql.WriteOptions
	if paced {
		wo.ChunkPause = s.flushPause(n)
	}
	s.inFlight.Store(int64(n))
	unwritten, err := s.w.WriteWith(ctx, b, wo)
	took := time.Since(start)
	s.m.flushDuration.Observe(took.Seconds())
	if err != nil {
		left := unwritten.Len()
		s.trk.Restore(unwritten)
		s.inFlight.Store(0) // after Restore: pending rows are never under-counted
		s.m.flushFailures.Inc()
		s.m.flushRows.Add(float64(max(n-left, 0)))
		fields := []zap.Field{zap.Error(err), zap.Int("pending_rows", s.pendingRows()),
			zap.Duration("oldest_delta_age", time.Since(s.lastWritten())),
			zap.Int("written_rows", max(n-left, 0)), zap.Duration("took", took)}
		if errors.Is(ctx.Err(), context.Canceled) || final {
			// Cut short by the caller (stopping), or one of Shutdown's
			// attempts: not reported here; Shutdown reports what is left.
			s.log.Debug("writing statistics to the database interrupted", fields...)
			return err
		}
		s.flushFailures++
		if s.flushFailures == 1 {
			s.log.Warn("writing statistics to the database failed; they stay in memory and are retried every write_db_interval", fields...)
		} else {
			s.log.Debug("writing statistics to the database failed again", append(fields, zap.Int("failures", s.flushFailures))...)
		}
		s.setStatus(func(st *Status) { st.FlushErr = oneLine(err) })
		return err
	}
	s.inFlight.Store(0)
	s.m.flushRows.Add(float64(n))
	if s.flushFailures > 0 {
		s.log.Info("writing statistics to the database works again", zap.Int("failed_flushes", s.flushFailures), zap.Int("rows", n))
		s.flushFailures = 0
	}
	s.log.Debug("flushed statistics", zap.Int("rows", n), zap.Duration("took", took))
	s.flushOK(start)
	if n >= ReleaseAfterRows && s.o.ReleaseMemory != nil {
		s.o.ReleaseMemory() // the batch is garbage now
	}
	return nil
}

// pendingRows is every row not yet in the database: the ledger, the batch
// being written, the chunk held in doubt and the quarantine.
func (s *Syncer) pendingRows() int {
	return s.trk.LedgerLen() + int(s.inFlight.Load()) + s.w.InDoubt() + s.w.Quarantined()
}

// lastWritten is the start of the last successful flush (the Syncer's
// creation before the first): every delta older than that is written, so
// it bounds the age of the oldest delta pending.
func (s *Syncer) lastWritten() time.Time {
	if t := s.Status().LastFlush; !t.IsZero() {
		return t
	}
	return s.created
}

// maxCappedLines bounds the log lines one flush writes about announces
// refused credit by max_credit_per_announce.
const maxCappedLines = 20

// logCappedCredits logs, once per flush interval, the users whose announces
// were refused credit by max_credit_per_announce since the last flush.
func (s *Syncer) logCappedCredits() {
	users, unnamed := s.trk.TakeCappedCredits()
	for i, u := range users {
		if i == maxCappedLines {
			unnamed += len(users) - i
			break
		}
		s.log.Warn("announces credited nothing: their delta was over max_credit_per_announce (a lying client or a wrapped counter)",
			zap.Uint32("uid", u.UID), zap.Int("announces", u.Announces),
			zap.Uint64("uploaded_delta", u.Uploaded), zap.Uint64("downloaded_delta", u.Downloaded))
	}
	if unnamed > 0 {
		s.log.Warn("more announces credited nothing for a delta over max_credit_per_announce", zap.Int("users_not_named", unnamed))
	}
}

func (s *Syncer) flushOK(t time.Time) {
	s.m.lastFlush.Set(float64(t.UnixNano()) / 1e9)
	s.setStatus(func(st *Status) { st.LastFlush, st.FlushErr = t, "" })
}

// Shutdown is the final write-back at stop: it flushes, retrying with
// backoff (100ms doubling to 2s), until the ledger is empty and no chunk is
// in doubt, or ctx ends. Call it after the frontends have stopped (no more
// announces) and Run has returned.
//
// If ctx ends first, what could not be written is logged at error level,
// per table and with the uploaded/downloaded bytes it carries, and returned
// as a *LossError.
func (s *Syncer) Shutdown(ctx context.Context) error {
	start := time.Now()
	backoff := 100 * time.Millisecond
	var last error
	for attempt := 1; ; attempt++ {
		err := s.flush(ctx, false, true)
		if err == nil && s.trk.LedgerLen() == 0 && s.w.InDoubt() == 0 {
			// What is left is the quarantine: tried once more, then given
			// up on row by row (each logged with its values), so it does
			// not fail the stop.
			gaveUp := s.w.FinishQuarantine(ctx)
			s.log.Info("final write to the database done", zap.Int("attempts", attempt), zap.Duration("took", time.Since(start)),
				zap.Int("quarantined_rows_given_up", gaveUp))
			return nil
		}
		if err != nil {
			last = err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return s.reportLoss(last, attempt)
		case <-t.C:
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// LossError is what Shutdown could not write before its deadline.
type LossError struct {
	Users, Files, FileUsers, NewFiles, AnnounceLog, ScrapeLog int    // rows per table
	Snatched                                                  int    // completion log rows (xbt_snatched)
	Uploaded, Downloaded                                      uint64 // bytes of the xbt_users deltas
	InDoubt                                                   int    // rows whose commit is unknown: possibly written
	Err                                                       error  // the last write error
}

// Rows is the number of rows not written.
func (e *LossError) Rows() int {
	return e.Users + e.Files + e.FileUsers + e.NewFiles + e.AnnounceLog + e.ScrapeLog + e.Snatched
}

func (e *LossError) Error() string {
	msg := fmt.Sprintf("statistics not written to the database before the shutdown deadline: %d rows (xbt_users %d, xbt_files %d, xbt_files_users %d, new torrents %d, announce log %d, scrape log %d, completion log %d) carrying %d uploaded and %d downloaded bytes",
		e.Rows(), e.Users, e.Files, e.FileUsers, e.NewFiles, e.AnnounceLog, e.ScrapeLog, e.Snatched, e.Uploaded, e.Downloaded)
	if e.InDoubt > 0 {
		msg += fmt.Sprintf("; %d more rows possibly written (commit outcome unknown)", e.InDoubt)
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *LossError) Unwrap() error { return e.Err }

// lossOf counts what b holds.
func lossOf(b *tracker.Batch) *LossError {
	e := &LossError{
		Users: len(b.Users), Files: len(b.Files), FileUsers: len(b.FileUsers),
		NewFiles: len(b.NewFiles), AnnounceLog: len(b.AnnounceLog), ScrapeLog: len(b.ScrapeLog),
		Snatched: len(b.Snatches),
	}
	for _, d := range b.Users {
		e.Uploaded += d.Uploaded
		e.Downloaded += d.Downloaded
	}
	return e
}

func (s *Syncer) reportLoss(last error, attempts int) error {
	b := s.trk.Drain()
	e := lossOf(b)
	e.InDoubt = s.w.InDoubt()
	e.Err = last
	s.trk.Restore(b) // leave the engine as it was
	if e.Rows() == 0 && e.InDoubt == 0 {
		return nil // the last attempt did it after all
	}
	s.log.Error("SHUTDOWN DEADLINE PASSED: statistics NOT written to the database are LOST",
		zap.Int("rows", e.Rows()),
		zap.Int("xbt_users_rows", e.Users),
		zap.Int("xbt_files_rows", e.Files),
		zap.Int("xbt_files_users_rows", e.FileUsers),
		zap.Int("new_torrents", e.NewFiles),
		zap.Int("announce_log_rows", e.AnnounceLog),
		zap.Int("scrape_log_rows", e.ScrapeLog),
		zap.Int("snatched_rows", e.Snatched),
		zap.Uint64("uploaded_bytes_lost", e.Uploaded),
		zap.Uint64("downloaded_bytes_lost", e.Downloaded),
		zap.Int("in_doubt_rows", e.InDoubt),
		zap.Int("attempts", attempts),
		zap.NamedError("last_error", last),
		zap.String("hint", "raise shutdown_timeout or fix the database before stopping the tracker"))
	return e
}

// checkBound warns when the ledger nears LedgerMaxEntries.
//
// The bound is for alerting, not a cut-off. Beyond it the tracker keeps
// accepting announces and keeps every delta, warning at error level once a
// minute. Why not refuse announces instead: the ledger coalesces by primary
// key (one row per uid, fid and (fid,uid) whatever the number of announces),
// so it grows with the number of distinct active users and torrents, not
// with time, and levels off at the size of the live swarm; refusing
// announces would punish every user for a database outage, cut peers off
// from each other, and still not let anything be written. Dropping would
// lose what users uploaded, which the project never does. (The announce and
// scrape logs, off by default, are the only per-announce growth: turn
// log_announce/log_scrape off in xbt_config during a long outage.)
func (s *Syncer) checkBound(now time.Time) {
	bound := s.o.LedgerMaxEntries
	n := s.trk.LedgerLen()
	if float64(n) < boundWarnFraction*float64(bound) {
		if s.overBound {
			s.overBound = false
			s.log.Info("statistics pending write-back are back under the warning level", zap.Int("pending_rows", n), zap.Int("ledger_max_entries", bound))
		}
		return
	}
	s.overBound = true
	if !s.boundWarned.IsZero() && now.Sub(s.boundWarned) < boundWarnEvery {
		return
	}
	s.boundWarned = now
	st := s.Status()
	fields := []zap.Field{zap.Int("pending_rows", n), zap.Int("ledger_max_entries", bound),
		zap.String("last_flush_error", st.FlushErr), zap.Time("last_flush", st.LastFlush)}
	if n >= bound {
		s.log.Error("statistics pending write-back EXCEED ledger_max_entries: the database has not accepted writes for too long; announces are still served and nothing is dropped, but memory keeps growing: fix the database", fields...)
		return
	}
	s.log.Warn("statistics pending write-back are near ledger_max_entries: the database is not accepting writes", fields...)
}
