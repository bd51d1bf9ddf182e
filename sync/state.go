package sync

import (
	"context"
	gosql "database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/xbt-tracker/xbt-tracker/internal/statefile"
	xsql "github.com/xbt-tracker/xbt-tracker/sql"
	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// Warm restart (state_file). At a clean stop, once the final flush has
// written everything, the swarms are saved to a state file; the next start
// puts them back when the file is young enough and the database agrees with
// it, so peer lists are never emptied and each peer's next announce is
// credited from the counters it last announced (XBT's delta rule), as if no
// restart had happened. After a crash there is no fresh file: the start is
// cold.
//
// "The database agrees" is the commit marker (migration 00003): the file
// records the stopping Writer's id and the sequence number its row in
// xbt_tracker_writers held after the final flush. A start believes the file
// only if that row still holds that number (the final flush committed and
// nothing rolled it back: a database restored from a backup fails here) and
// no other writer's row changed since the file was saved (no other tracker,
// such as a later run that crashed, has used the database since). The file
// also names the database and server and a hash of
// torrent_pass_private_key, which must match, and must be younger than the
// peer expiry (1.5 × announce_interval). The file is removed once read,
// whether it is used or not, so it is never used twice.

// StateOptions say where the state file is and give what checks it.
type StateOptions struct {
	Path   string           // state_file; "" = no warm restarts
	DB     *gosql.DB        // the pool the Writer writes through
	Writer *xsql.Writer     // this process's Writer (its commit marker)
	Now    func() time.Time // nil: time.Now

	// Timeout bounds the database reads of RestoreState (default 10 s).
	// SaveState's are bounded by its context (the stop's deadline).
	Timeout time.Duration
}

func (o StateOptions) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// SaveState writes the swarms to o.Path after the final flush. shutdownErr
// is what Shutdown returned: a state file is written only when it is nil,
// the ledger is empty and no chunk is in doubt (every byte credited so far
// is in the database), and the commit marker can be read back. Otherwise no
// file is written and any file at o.Path is removed, so the next start is
// cold; one log line says why. Success is one info line: peers and torrents
// saved, size, time. ctx bounds the database reads and the writing (the
// stop's deadline): past it the file is abandoned.
func (s *Syncer) SaveState(ctx context.Context, o StateOptions, shutdownErr error) {
	if o.Path == "" {
		return
	}
	start := time.Now()
	skip := func(reason string, err error) {
		fields := []zap.Field{zap.String("reason", reason), zap.String("state_file", o.Path)}
		if err != nil {
			fields = append(fields, zap.Error(err))
		}
		if rmErr := os.Remove(o.Path); rmErr == nil {
			fields = append(fields, zap.Bool("stale_file_removed", true))
		}
		s.log.Warn("no state file written: the next start is cold", fields...)
	}
	switch {
	case shutdownErr != nil:
		skip("the final write to the database did not complete", nil)
		return
	case s.trk.LedgerLen() != 0 || s.w.InDoubt() != 0:
		skip(fmt.Sprintf("statistics not written yet: %d rows pending, %d in doubt", s.trk.LedgerLen(), s.w.InDoubt()), nil)
		return
	case o.Writer == nil || o.DB == nil:
		skip("no database writer", nil)
		return
	}
	id, _ := o.Writer.Marker()
	seq, found, err := xsql.ReadMarker(ctx, o.DB, id)
	switch {
	case err != nil:
		skip("cannot read the commit marker back", err)
		return
	case !found:
		skip("this tracker's commit marker is not in xbt_tracker_writers", nil)
		return
	}
	dbName, server, err := xsql.ServerIdentity(ctx, o.DB)
	if err != nil {
		skip("cannot read the database's identity", err)
		return
	}
	h := statefile.Header{
		SavedAt:    o.now(),
		SecretHash: statefile.SecretHash(s.trk.Settings().Secret),
		Writer:     id, Seq: seq,
		Database: dbName, Server: server,
	}
	w, err := statefile.Create(o.Path, h)
	if err != nil {
		skip("cannot create the file", err)
		return
	}
	n := 0
	err = s.trk.ForEachSwarm(func(ih tracker.InfoHash, fid uint32, peers []tracker.PeerState) error {
		if n++; n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("shutdown_timeout reached: %w", err)
			}
		}
		return w.Torrent(ih, fid, peers)
	})
	if err != nil {
		w.Abort()
		skip("writing the file failed", err)
		return
	}
	torrents, peers := w.Counts()
	size, err := w.Commit()
	if err != nil {
		skip("writing the file failed", err)
		return
	}
	s.log.Info("saved the swarms to the state file for a warm restart",
		zap.String("state_file", o.Path), zap.Uint64("peers", peers), zap.Uint64("torrents", torrents),
		zap.Int64("bytes", size), zap.Duration("took", time.Since(start)))
}

// RestoreState puts back the swarms saved at the last clean stop, if o.Path
// holds a state file the database agrees with (see the top of this file),
// and removes the file. Call it after Load (the users and torrents are in
// memory) and before the listeners start. It logs one info line: a warm
// start (peers and torrents restored, peers skipped, the file's age, the
// time it took) or a cold one and why (at warning level when a file was
// there but not used). It reports whether the start is warm.
//
// Peers of torrents or users no longer loaded are skipped; the counts of a
// torrent that lost some are recorded for the next flush. Otherwise the
// ledger stays empty: the final flush before the stop wrote these counts.
func (s *Syncer) RestoreState(ctx context.Context, o StateOptions) bool {
	start := time.Now()
	if o.Path == "" {
		s.log.Info("cold start: state_file is empty, warm restarts are off")
		return false
	}
	r, err := statefile.Open(o.Path)
	if errors.Is(err, fs.ErrNotExist) {
		s.log.Info("cold start: no state file (the first start, or the last stop was not clean)", zap.String("state_file", o.Path))
		return false
	}
	if err != nil {
		s.log.Warn("cold start: the state file is not usable", zap.String("state_file", o.Path), zap.String("reason", err.Error()),
			zap.Bool("removed", os.Remove(o.Path) == nil))
		return false
	}
	defer r.Close()
	h := r.Header()
	age := o.now().Sub(h.SavedAt)
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	reason := s.checkState(cctx, o, &h)
	cancel()
	// Used at most once: a crash after this start must not find it.
	rmErr := os.Remove(o.Path)
	if rmErr != nil && reason == "" {
		reason = "cannot remove it after reading it (it must never be used twice): " + rmErr.Error()
	}
	if reason != "" {
		s.log.Warn("cold start: the state file is not used", zap.String("state_file", o.Path),
			zap.String("reason", reason), zap.Duration("file_age", age.Round(time.Millisecond)), zap.Bool("removed", rmErr == nil))
		return false
	}

	wasEmpty := s.trk.LedgerLen() == 0
	var (
		buf                       []tracker.PeerState
		torrents, skippedTorrents int
		restored, skipped         int
	)
	for {
		ih, fid, peers, ok, err := r.Next(buf)
		if err != nil {
			// Verified by Open, so the file changed under us: undo.
			s.trk.DropAllPeers()
			if wasEmpty {
				s.trk.Drain() // only what the half restore recorded
			}
			s.log.Warn("cold start: the state file could not be read to the end; nothing restored",
				zap.String("state_file", o.Path), zap.Error(err))
			return false
		}
		if !ok {
			break
		}
		buf = peers[:0]
		res := s.trk.RestoreSwarm(ih, fid, peers)
		restored += res.Restored
		skipped += res.Skipped
		if res.Restored > 0 {
			torrents++
		} else {
			skippedTorrents++
		}
	}
	s.log.Info("warm start: swarms restored from the state file",
		zap.Int("peers", restored), zap.Int("torrents", torrents),
		zap.Int("skipped_peers", skipped), zap.Int("skipped_torrents", skippedTorrents),
		zap.Duration("file_age", age.Round(time.Millisecond)), zap.Duration("took", time.Since(start)),
		zap.String("state_file", o.Path))
	return true
}

// checkState returns "" when the database agrees with the file, else why
// not.
func (s *Syncer) checkState(ctx context.Context, o StateOptions, h *statefile.Header) string {
	if o.DB == nil {
		return "no database"
	}
	dbName, server, err := xsql.ServerIdentity(ctx, o.DB)
	if err != nil {
		return err.Error()
	}
	if reason := h.Check(statefile.Expect{
		Now: o.now(), MaxAge: s.trk.PeerExpiry(),
		SecretHash: statefile.SecretHash(s.trk.Settings().Secret),
		Database:   dbName, Server: server,
	}); reason != "" {
		return reason
	}
	seq, found, err := xsql.ReadMarker(ctx, o.DB, h.Writer)
	switch {
	case err != nil:
		return "cannot read the commit marker: " + err.Error()
	case !found:
		return "the commit marker of the stop that saved it is not in xbt_tracker_writers (another database, or one restored from a backup)"
	case seq != h.Seq:
		return fmt.Sprintf("the commit marker of the stop that saved it holds sequence %d, the file says %d (the database was restored or rolled back since)", seq, h.Seq)
	}
	var except [][16]byte
	except = append(except, h.Writer)
	if o.Writer != nil {
		own, _ := o.Writer.Marker()
		except = append(except, own)
	}
	n, err := xsql.WritersSince(ctx, o.DB, h.SavedAt.Unix(), except...)
	if err != nil {
		return "cannot read xbt_tracker_writers: " + err.Error()
	}
	if n > 0 {
		return fmt.Sprintf("%d other tracker process(es) used the database since it was saved (a later run that did not stop cleanly, or another tracker)", n)
	}
	return ""
}
