package sync

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"
)

// LeechingExchanger is what the cluster's torrents_limit exchange needs of
// *sql.LeechingExchange.
type LeechingExchanger interface {
	Exchange(ctx context.Context, mine map[uint32]int32, fresh time.Duration) (map[uint32]int32, error)
	Retire(ctx context.Context) error
}

// leechingFresh is how long another instance's published counts are
// believed: three publications and a margin, so one late publication does
// not drop them, and a dead instance's users are free again within it.
func (s *Syncer) leechingFresh() time.Duration { return 3*s.o.WriteInterval + 10*time.Second }

// exchangeLeeching publishes this instance's per-user leeching-torrent
// counts and installs the other instances' (one Options.WriteInterval
// tick). On failure the previous counts stay: a database outage keeps the
// limit as it was last known rather than lifting it.
func (s *Syncer) exchangeLeeching(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, max(s.o.WriteInterval, 5*time.Second))
	defer cancel()
	others, err := s.o.Leeching.Exchange(ctx, s.trk.LeechingCounts(), s.leechingFresh())
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return
		}
		if msg := oneLine(err); msg != s.leechErr {
			s.leechErr = msg
			s.log.Warn("sharing torrents_limit counts with the other instances failed; each instance counts only its own torrents until it works (migration 00008 must be applied: xbt-tracker migrate up)",
				zap.Error(err))
		}
		return
	}
	if s.leechErr != "" {
		s.leechErr = ""
		s.log.Info("sharing torrents_limit counts with the other instances works again")
	}
	s.trk.SetRemoteLeeching(others)
}

// RetireLeeching removes this instance's published counts (at a clean
// stop, after the final flush), so the other instances stop counting them
// at once. No-op without an exchange.
func (s *Syncer) RetireLeeching(ctx context.Context) {
	if s.o.Leeching == nil {
		return
	}
	if err := s.o.Leeching.Retire(ctx); err != nil {
		s.log.Debug("could not remove this instance's torrents_limit counts; the others ignore them once stale", zap.Error(err))
	}
}
