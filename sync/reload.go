package sync

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	xsql "github.com/xbt-tracker/xbt-tracker/sql"
	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// Load is the start-up load: users, torrents and the deny list (the
// Loader's first, full snapshot), applied to the tracker, with one info line
// of counts and duration. The settings are the caller's (cmd applies them
// before). Torrents the catalog flagged deleted are deleted from the
// database like at every reload.
func (s *Syncer) Load(ctx context.Context) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	start := time.Now()
	snap, deny, err := s.reload(ctx)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	took := time.Since(start)
	s.m.reloadDuration.Observe(took.Seconds())
	s.log.Info("loaded users and torrents",
		zap.Int("users", len(snap.Users)), zap.Int("torrents", len(snap.Torrents)),
		zap.Int("deny_ranges", deny), zap.Duration("took", took))
	s.setStatus(func(st *Status) { st.LastReload, st.ReloadErr = start, "" })
	if snap.Full && s.o.ReleaseMemory != nil {
		s.o.ReleaseMemory() // the snapshot and the replaced users and torrents are garbage now
	}
	return nil
}

// Reload applies what changed in the database since the last load: users
// and torrents added, changed or removed (passkey version bumps, flags & 1
// deletions), the deny list, the client rules and the credit factors and
// freeleech tokens. A full snapshot replaces the tracker's sets; an
// incremental one is applied key by key. Announces keep running.
func (s *Syncer) Reload(ctx context.Context) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	start := time.Now()
	snap, deny, err := s.reload(ctx)
	took := time.Since(start)
	s.m.reloadDuration.Observe(took.Seconds())
	if err != nil {
		s.m.reloadFailures.Inc()
		if ctx.Err() != nil {
			s.log.Debug("reloading users and torrents interrupted", zap.Error(err))
			return err
		}
		s.readFailed("reload", err) // one warning per streak, polls included
		return err
	}
	s.readWorked(false)
	s.log.Debug("reloaded", zap.Bool("full", snap.Full),
		zap.Int("users", len(snap.Users)), zap.Int("removed_users", len(snap.RemovedUsers)),
		zap.Int("torrents", len(snap.Torrents)), zap.Int("removed_torrents", len(snap.RemovedTorrents)),
		zap.Int("deleted_fids", len(snap.DeletedFids)), zap.Int("deny_ranges", deny), zap.Duration("took", took))
	s.setStatus(func(st *Status) { st.LastReload = start })
	if snap.Full && s.o.ReleaseMemory != nil {
		s.o.ReleaseMemory() // the snapshot and the replaced users and torrents are garbage now
	}
	return nil
}

// reload reads a snapshot, the deny list, the client rules and the credit
// factors and tokens, and applies them (reloadMu held). A failure to read
// one of the rule sets keeps that set and the ones after it as they were.
func (s *Syncer) reload(ctx context.Context) (*xsql.Snapshot, int, error) {
	snap, err := s.ld.Load(ctx)
	if err != nil {
		return nil, 0, err
	}
	// Apply the snapshot before reading the deny list: the Loader does not
	// return an incremental change twice, so a deny-list failure must not
	// discard it (it only fails this reload's status).
	s.apply(ctx, snap)
	v4, v6, err := s.ld.DenyList(ctx)
	if err != nil {
		return snap, 0, err
	}
	s.trk.SetDenyList(tracker.NewDenyList(v4, v6))
	allow, deny, err := s.ld.ClientRules(ctx)
	if err != nil {
		return snap, 0, err
	}
	s.trk.SetClientRules(tracker.NewClientRules(allow, deny))
	credit, err := s.ld.CreditRules(ctx)
	if err != nil {
		return snap, 0, err
	}
	s.trk.SetCreditRules(credit)
	return snap, len(v4) + len(v6), nil
}

// apply installs a snapshot in the tracker, then deletes the rows of
// torrents the catalog flagged deleted (XBT's polite delete: only rows still
// flagged), which the tracker has just forgotten. A failed delete is
// retried at the next reload.
func (s *Syncer) apply(ctx context.Context, snap *xsql.Snapshot) {
	// Removals first, then upserts (the Loader's contract; a full snapshot
	// lists flagged torrents in RemovedTorrents, already absent from
	// Torrents, so removing them again is a no-op).
	for _, uid := range snap.RemovedUsers {
		s.trk.RemoveUser(uid)
	}
	for _, ih := range snap.RemovedTorrents {
		s.trk.RemoveTorrent(ih)
	}
	if snap.Full {
		s.trk.ReplaceUsers(snap.Users)
		s.trk.ReplaceTorrents(snap.Torrents)
	} else {
		for _, u := range snap.Users {
			s.trk.UpsertUser(u)
		}
		for _, t := range snap.Torrents {
			s.trk.UpsertTorrent(t)
		}
	}
	if s.res != nil {
		s.res.forget(snap) // "not found" of what was just read is stale
	}
	for _, fid := range snap.DeletedFids {
		s.pendingDeletes[fid] = struct{}{}
	}
	if len(s.pendingDeletes) == 0 {
		return
	}
	fids := make([]uint32, 0, len(s.pendingDeletes))
	for fid := range s.pendingDeletes {
		fids = append(fids, fid)
	}
	slices.Sort(fids)
	if err := s.w.DeleteFiles(ctx, fids); err != nil {
		if !s.deleteFailing {
			s.deleteFailing = true
			s.log.Warn("deleting torrents flagged deleted failed; retrying at the next reload", zap.Int("torrents", len(fids)), zap.Error(err))
		}
		return
	}
	if s.deleteFailing {
		s.deleteFailing = false
		s.log.Info("deleting torrents flagged deleted works again")
	}
	s.log.Debug("deleted torrents flagged deleted", zap.Int("torrents", len(fids)))
	clear(s.pendingDeletes)
}
