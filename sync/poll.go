package sync

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	xsql "github.com/xbt-tracker/xbt-tracker/sql"
)

// Change polls: catalog changes within seconds.
//
// A reload (every read_db_interval, 60 s by default, XBT's key) reads what
// changed in users and torrents and the whole deny list; about hourly it
// reads everything. Between reloads, with change tracking installed
// (migration 00004), the Syncer polls the change log every
// change_poll_interval (2 s): only users and torrents the catalog inserted,
// changed or deleted, applied exactly as a reload applies them. A poll that
// finds nothing costs four short queries (docs/BENCHMARKS.md, "Change
// poll"). Without change tracking the Loader answers every poll with
// xsql.ErrPollNeedsLoad without a query, so polls are off, and they start by
// themselves once a reload finds the migration applied.
//
// Polls and reloads run in one goroutine and hold reloadMu, so they never
// overlap (the Loader's watermarks are shared), and share one failure
// streak: one warning when reads start failing, one info line when both
// work again.

// changePoller is what Poll needs of *sql.Loader.
type changePoller interface {
	Poll(context.Context) (*xsql.Snapshot, error)
}

// polling reports whether Run polls the change log between reloads.
func (s *Syncer) polling() bool {
	_, ok := s.ld.(changePoller)
	return ok && s.o.ChangePollInterval > 0 && s.o.ChangePollInterval < s.o.ReadDBInterval
}

// reloadLoop runs the reloads every ReadDBInterval and, when polling, the
// change polls every ChangePollInterval, until ctx ends.
func (s *Syncer) reloadLoop(ctx context.Context) {
	reload := time.NewTicker(s.o.ReadDBInterval)
	defer reload.Stop()
	var poll <-chan time.Time
	if s.polling() {
		t := time.NewTicker(s.o.ChangePollInterval)
		defer t.Stop()
		poll = t.C
	}
	run := func(f func(context.Context) error) {
		ctx, cancel := context.WithTimeout(ctx, s.o.ReloadTimeout)
		defer cancel()
		_ = f(ctx) // logged and counted by f
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-reload.C:
			run(s.Reload)
			select {
			case <-poll: // a poll due meanwhile has nothing left to read
			default:
			}
		case <-poll:
			run(s.Poll)
		}
	}
}

// Poll applies what the change log reports since the previous reload or
// poll: users and torrents inserted, changed or deleted (never a full read,
// never the deny list). Without change tracking it does nothing. Announces
// keep running.
func (s *Syncer) Poll(ctx context.Context) error {
	p, ok := s.ld.(changePoller)
	if !ok {
		return nil
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	start := time.Now()
	snap, err := p.Poll(ctx)
	if errors.Is(err, xsql.ErrPollNeedsLoad) {
		s.readWorked(true) // nothing to read: the next reload reads everything
		return nil
	}
	took := time.Since(start)
	s.m.pollDuration.Observe(took.Seconds())
	if err != nil {
		s.m.pollFailures.Inc()
		if ctx.Err() != nil {
			s.log.Debug("polling the change log interrupted", zap.Error(err))
			return err
		}
		s.readFailed("change poll", err)
		return err
	}
	s.apply(ctx, snap)
	s.readWorked(true)
	if !snap.Empty() {
		s.log.Debug("applied catalog changes",
			zap.Int("users", len(snap.Users)), zap.Int("removed_users", len(snap.RemovedUsers)),
			zap.Int("torrents", len(snap.Torrents)), zap.Int("removed_torrents", len(snap.RemovedTorrents)),
			zap.Int("deleted_fids", len(snap.DeletedFids)), zap.Duration("took", took))
	}
	return nil
}

// readFailed records a failed reload or change poll (reloadMu held): one
// warning per failure streak of both together.
func (s *Syncer) readFailed(what string, err error) {
	streak := s.reloadFailing || s.pollFailing
	if what == "reload" {
		s.reloadFailing = true
	} else {
		s.pollFailing = true
	}
	s.reloadFailures++
	if !streak {
		s.log.Warn("reloading users and torrents failed; serving what is in memory and retrying",
			zap.String("during", what), zap.Error(err))
	}
	s.setStatus(func(st *Status) { st.ReloadErr = oneLine(err) })
}

// readWorked records a successful reload (poll false) or change poll
// (reloadMu held). The streak ends, with one info line, when the last
// reload and the last poll both worked: a poll working while every reload
// fails (on the deny list, say) does not end it.
func (s *Syncer) readWorked(poll bool) {
	if poll {
		s.pollFailing = false
	} else {
		s.reloadFailing = false
	}
	if s.reloadFailures == 0 || s.reloadFailing || s.pollFailing {
		return
	}
	s.log.Info("reloading users and torrents works again", zap.Int("failed_reloads", s.reloadFailures))
	s.reloadFailures = 0
	s.setStatus(func(st *Status) { st.ReloadErr = "" })
}
