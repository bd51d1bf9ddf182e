package sync

import (
	"context"
	"errors"
	"maps"
	"time"

	"go.uber.org/zap"

	xsql "github.com/xbt-tracker/xbt-tracker/sql"
	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// Change polls: catalog changes within seconds.
//
// A reload (every read_db_interval, 60 s by default, XBT's key) reads what
// changed in users and torrents and the whole deny list; about hourly it
// reads everything. Between reloads, with change tracking installed
// (migration 00004), the Syncer polls the change log every
// change_poll_interval (2 s): only users and torrents the catalog inserted,
// changed or deleted, applied exactly as a reload applies them, plus the
// freeleech tokens (pollCredit). A poll that finds nothing costs four short
// queries, and one more for the tokens (docs/BENCHMARKS.md, "Change poll").
// Without change tracking the Loader answers every poll with
// xsql.ErrPollNeedsLoad without a query, so polls are off, and they start by
// themselves once a reload finds the migration applied.
//
// Polls and reloads run in one goroutine and hold reloadMu, so they never
// overlap (the Loader's watermarks are shared), and share one failure
// streak: one warning when reads start failing, one info line when both
// work again.

// changePoller is what Poll needs of *sql.Loader: the change log and the
// freeleech tokens.
type changePoller interface {
	Poll(context.Context) (*xsql.Snapshot, error)
	FreeleechTokens(context.Context) (map[tracker.FileUserKey]int64, error)
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
	if err == nil {
		s.apply(ctx, snap)
		err = s.pollCredit(ctx, p, snap)
	}
	if err != nil {
		s.m.pollFailures.Inc()
		if ctx.Err() != nil {
			s.log.Debug("polling the change log interrupted", zap.Error(err))
			return err
		}
		s.readFailed("change poll", err)
		return err
	}
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

// pollCredit refreshes the credit rules between reloads (reloadMu held).
// A catalog inserts a freeleech torrent with down_multi = 0 and a user buys
// a token just before the download it is for, and a fast client reports
// its download within seconds (event=completed): waiting for the next
// reload (read_db_interval) would charge it. So a poll that brought any
// change re-reads every credit rule, and every poll re-reads the tokens
// (only the valid ones, through the index on expires: one short query).
// A factor changed on an existing row waits for the reload.
func (s *Syncer) pollCredit(ctx context.Context, p changePoller, snap *xsql.Snapshot) error {
	if !snap.Empty() {
		rules, err := s.ld.CreditRules(ctx)
		if err != nil {
			return err
		}
		s.trk.SetCreditRules(rules)
		return nil
	}
	tokens, err := p.FreeleechTokens(ctx)
	if err != nil {
		return err
	}
	var nr tracker.CreditRules
	if cur := s.trk.CreditRules(); cur != nil {
		if maps.Equal(cur.Tokens, tokens) {
			return nil
		}
		nr = *cur
	} else if len(tokens) == 0 {
		return nil
	}
	nr.Tokens = tokens
	s.trk.SetCreditRules(&nr)
	return nil
}
