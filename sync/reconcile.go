package sync

import (
	"context"
	"errors"

	"time"

	"go.uber.org/zap"

	xsql "github.com/xbt-tracker/xbt-tracker/sql"
	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// No ghost peers. xbt_files' seeders and leechers and xbt_files_users'
// active flag are what a site shows; they must agree with the swarms in
// memory at every moment a catalog may read them.
//
// At start-up, before the first announce is answered, ReconcileAtStart
// corrects every row memory does not back, directly and in chunks: after a
// cold start memory is empty, so every count goes to 0 and every row to
// inactive (what XBT does at start); after a warm start (the swarms loaded
// from the state file) the rows of the restored swarms stay.
//
// While running, the tracker keeps the rows it touches right; rows nothing
// touches (left by a crash, another tracker, a lost write) are found by a
// sweep every clean_up_interval that reads a budget of the rows claiming
// peers, in key order and around, and records memory's view in the ledger
// (so the correction is ordered with the announces and written by the
// normal flush). XBT's own rule, active = 0 once mtime is an hour old, is
// the floor: every claiming row is checked at least once per cycle, and a
// cycle of 1M active rows takes under an hour with the default budget.

// reconcileChunk is the rows one reconcile query reads.
const reconcileChunk = 1000

// Sweep budget per clean_up_interval: at most this many chunks of each
// table and this much time, so the sweep's database work stays a small,
// steady cost.
const (
	sweepChunks = 20
	sweepBudget = time.Second
)

// reconciler is what the reconciliation needs of *sql.Reconciler.
type reconciler interface {
	FilesWithPeers(ctx context.Context, after uint32, limit int) ([]xsql.FileCounts, error)
	ActiveFileUsers(ctx context.Context, after tracker.FileUserKey, limit int) ([]xsql.ActiveFileUser, error)
	ZeroFiles(ctx context.Context, fids []uint32) error
	SetFileCounts(ctx context.Context, fid uint32, seeders, leechers int) error
	DeactivateFileUsers(ctx context.Context, keys []tracker.FileUserKey) error
}

// ReconcileResult counts what a reconciliation corrected.
type ReconcileResult struct {
	Files, FileUsers int // rows corrected
	Read             int // rows read
}

// ReconcileAtStart makes xbt_files' counts and xbt_files_users' active
// flags agree with memory before serving (see above). It returns an error
// only when the database cannot be read or written; the caller decides
// whether to serve anyway.
func (s *Syncer) ReconcileAtStart(ctx context.Context) (ReconcileResult, error) {
	var res ReconcileResult
	if s.rec == nil {
		return res, nil
	}
	start := time.Now()
	var after uint32
	for {
		rows, err := s.rec.FilesWithPeers(ctx, after, reconcileChunk)
		if err != nil {
			return res, err
		}
		if len(rows) == 0 {
			break
		}
		res.Read += len(rows)
		var zero []uint32
		staleBefore := s.clusterStaleBefore()
		for _, f := range rows {
			seeders, leechers, _ := s.trk.TorrentLive(f.InfoHash, f.Fid)
			switch {
			case s.o.Cluster && f.Mtime >= staleBefore:
				// Possibly another live instance's torrent: its counts
				// stay; if this instance holds the torrent (a warm
				// start), its flushes compete by announce time.
			case seeders == f.Seeders && leechers == f.Leechers:
			case seeders == 0 && leechers == 0:
				zero = append(zero, f.Fid)
			default:
				if err := s.rec.SetFileCounts(ctx, f.Fid, seeders, leechers); err != nil {
					return res, err
				}
				res.Files++
			}
		}
		if err := s.rec.ZeroFiles(ctx, zero); err != nil {
			return res, err
		}
		res.Files += len(zero)
		after = rows[len(rows)-1].Fid
	}
	var key tracker.FileUserKey
	staleBefore := s.clusterStaleBefore()
	for {
		rows, err := s.rec.ActiveFileUsers(ctx, key, reconcileChunk)
		if err != nil {
			return res, err
		}
		if len(rows) == 0 {
			break
		}
		res.Read += len(rows)
		var stale []tracker.FileUserKey
		for _, a := range rows {
			if s.o.Cluster && a.Mtime >= staleBefore {
				continue // possibly another live instance's peer
			}
			if !a.HasTorrent || !s.trk.UserLive(a.InfoHash, a.Fid, a.UID) {
				stale = append(stale, tracker.FileUserKey{Fid: a.Fid, UID: a.UID})
			}
		}
		if err := s.rec.DeactivateFileUsers(ctx, stale); err != nil {
			return res, err
		}
		res.FileUsers += len(stale)
		last := rows[len(rows)-1]
		key = tracker.FileUserKey{Fid: last.Fid, UID: last.UID}
	}
	s.log.Info("peer counts in the database agree with memory",
		zap.Int("torrents_corrected", res.Files), zap.Int("files_users_deactivated", res.FileUsers),
		zap.Int("rows_read", res.Read), zap.Duration("took", time.Since(start)))
	return res, nil
}

// sweepCursor is where the runtime sweep goes on from.
type sweepCursor struct {
	fid uint32
	key tracker.FileUserKey
}

// sweep is one clean_up_interval's share of the runtime reconciliation: up
// to sweepChunks chunks of each table or sweepBudget, continuing where the
// last one stopped and starting over at the end.
func (s *Syncer) sweep(ctx context.Context) (ReconcileResult, error) {
	var res ReconcileResult
	if s.rec == nil {
		return res, nil
	}
	deadline := time.Now().Add(sweepBudget)
	c := &s.sweepAt
	// In a cluster refreshStored reads these rows every write_db_interval
	// and reconciles them as it goes: reading them here too would be the
	// same queries twice.
	for i := 0; !s.o.Cluster && i < sweepChunks && time.Now().Before(deadline); i++ {
		rows, err := s.rec.FilesWithPeers(ctx, c.fid, reconcileChunk)
		if err != nil {
			return res, err
		}
		res.Read += len(rows)
		for _, f := range rows {
			if s.reconcileFile(f, 0) {
				res.Files++
			}
		}
		if len(rows) < reconcileChunk {
			c.fid = 0 // the end: next time from the start
			break
		}
		c.fid = rows[len(rows)-1].Fid
	}
	// A row of a torrent that is not in memory may be a torrent loaded a
	// moment from now whose peer announced already: only rows older than
	// the peer expiry are stale for sure.
	staleBefore := time.Now().Unix() - int64(1.5*float64(s.trk.Settings().AnnounceInterval))
	if s.o.Cluster {
		staleBefore = s.clusterStaleBefore()
	}
	for i := 0; i < sweepChunks && time.Now().Before(deadline); i++ {
		rows, err := s.rec.ActiveFileUsers(ctx, c.key, reconcileChunk)
		if err != nil {
			return res, err
		}
		res.Read += len(rows)
		for _, a := range rows {
			var off, loaded bool
			if s.o.Cluster && a.Mtime >= staleBefore {
				continue // possibly another live instance's peer
			}
			if a.HasTorrent {
				off, loaded = s.trk.ReconcileFileUser(a.InfoHash, a.Fid, a.UID, a.Left, a.Mtime)
			}
			if !loaded && a.Mtime < staleBefore {
				s.trk.DeactivateFileUser(a.Fid, a.UID, a.Left, a.Mtime)
				off = true
			}
			if off {
				res.FileUsers++
			}
		}
		if len(rows) < reconcileChunk {
			c.key = tracker.FileUserKey{}
			break
		}
		last := rows[len(rows)-1]
		c.key = tracker.FileUserKey{Fid: last.Fid, UID: last.UID}
	}
	return res, nil
}

// reconcileFile compares one xbt_files row claiming peers with memory and
// records memory's counts for the next flush where they differ (true). In
// a cluster a row written for an announce since clusterStale may be
// another instance's torrent: only a swarm this instance holds competes
// (by announce time, in the database); an empty or unknown one stays quiet.
func (s *Syncer) reconcileFile(f xsql.FileCounts, clusterStale int64) bool {
	if s.o.Cluster && f.Mtime >= clusterStale {
		if se, le, _ := s.trk.TorrentLive(f.InfoHash, f.Fid); se+le == 0 {
			return false
		}
	}
	return s.trk.ReconcileTorrent(f.InfoHash, f.Fid, f.Seeders, f.Leechers)
}

// sweepTick runs sweep and logs what it found.
func (s *Syncer) sweepTick(ctx context.Context) {
	res, err := s.sweep(ctx)
	if err != nil && !errors.Is(err, context.Canceled) {
		s.log.Debug("ghost peer sweep failed; it goes on at the next clean_up_interval", zap.Error(err))
	}
	s.logCorrections(res)
}

// logCorrections logs what a reconciliation corrected: a correction means
// the database held something the tracker did not write, worth a line.
func (s *Syncer) logCorrections(res ReconcileResult) {
	if res.Files+res.FileUsers > 0 {
		s.log.Info("corrected ghost peers in the database (rows no announce had corrected)",
			zap.Int("torrents", res.Files), zap.Int("files_users_deactivated", res.FileUsers))
	}
}

// clusterStaleBefore is the mtime before which a row claiming peers is
// stale in a cluster: no instance can still hold a peer it counts. Every
// live peer announces within announce_interval, and what it announced is
// written within a write interval or two; the peer expiry (1.5 ×
// announce_interval) plus two write intervals and a minute is beyond both.
func (s *Syncer) clusterStaleBefore() int64 {
	expire := time.Duration(1.5 * float64(s.trk.Settings().AnnounceInterval) * float64(time.Second))
	return time.Now().Add(-expire - 2*s.o.WriteInterval - time.Minute).Unix()
}

// Stored counts (cluster only): a scrape routed to this instance by its
// first info_hash asks about torrents other instances hold, and is answered
// with the counts their owners wrote to xbt_files. refreshStored copies
// them into memory, storedChunks chunks of the rows claiming peers per
// write_db_interval, going on where it stopped; a pass ends at the last
// row, and a torrent not read in the last complete pass scrapes as empty.
// With the defaults a site with up to 50k torrents with peers is read in
// full every 15 s, a larger one in proportion. The same rows are the ghost
// sweep's first half, so in a cluster they are reconciled here instead.
const storedChunks = 50

// storedCursor is where the refresh goes on from.
type storedCursor struct {
	fid  uint32
	pass uint32 // the pass under way, from 1
}

func (s *Syncer) refreshStored(ctx context.Context) (ReconcileResult, error) {
	var res ReconcileResult
	c := &s.storedAt
	if c.pass == 0 {
		c.pass = 1
	}
	clusterStale := s.clusterStaleBefore()
	for range storedChunks {
		rows, err := s.rec.FilesWithPeers(ctx, c.fid, reconcileChunk)
		if err != nil {
			return res, err
		}
		res.Read += len(rows)
		for _, f := range rows {
			s.trk.StoreCounts(f.InfoHash, f.Fid, f.Seeders, f.Leechers, c.pass)
			if s.reconcileFile(f, clusterStale) {
				res.Files++
			}
		}
		if len(rows) < reconcileChunk {
			s.trk.CompleteStoredPass(c.pass)
			c.fid, c.pass = 0, c.pass+1
			return res, nil
		}
		c.fid = rows[len(rows)-1].Fid
	}
	return res, nil
}

func (s *Syncer) refreshStoredTick(ctx context.Context) {
	res, err := s.refreshStored(ctx)
	if err != nil && !errors.Is(err, context.Canceled) {
		s.log.Debug("reading the other instances' counts failed; scrapes of their torrents keep the last ones read", zap.Error(err))
	}
	s.logCorrections(res)
}
