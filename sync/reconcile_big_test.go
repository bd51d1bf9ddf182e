package sync

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// TestBigReconcileAtStart measures the start-up reconciliation on a
// database another tracker left with 1,000 torrents claiming peers and 1M
// active xbt_files_users rows (docs/BENCHMARKS.md, "Ghost peers"). It takes
// a minute, so it runs only when asked:
//
//	XBT_BIG=1 go test -run TestBigReconcileAtStart -v -timeout 30m ./sync
func TestBigReconcileAtStart(t *testing.T) {
	if testing.Short() || os.Getenv("XBT_BIG") == "" {
		t.Skip("large measurement: set XBT_BIG=1 (see docs/BENCHMARKS.md)")
	}
	const nFiles, nUsers = 1000, 1000
	start := time.Now()
	db, s := ghostDB(t, nFiles, nUsers)
	t.Logf("fixture: %d torrents, %d active xbt_files_users rows in %v", nFiles, nFiles*nUsers, time.Since(start).Round(time.Millisecond))
	ctx := context.Background()
	_, sy := ghostSyncer(t, db, s)
	timed := &timedReconciler{reconciler: sy.rec}
	sy.rec = timed
	start = time.Now()
	res, err := sy.ReconcileAtStart(ctx)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if n := dbInt(t, db, "SELECT COUNT(*) FROM xbt_files_users WHERE active = 1"); n != 0 || res.FileUsers != nFiles*nUsers {
		t.Fatalf("%d rows still active, result %+v", n, res)
	}
	t.Logf("cold start reconciliation: %d torrents zeroed, %d rows deactivated in %v; %d statements, the longest %v (the longest any catalog statement could wait for these rows)",
		res.Files, res.FileUsers, took.Round(time.Millisecond), timed.n, timed.longest.Round(time.Microsecond))
}

// timedReconciler times each writing statement.
type timedReconciler struct {
	reconciler
	n       int
	longest time.Duration
}

func (r *timedReconciler) DeactivateFileUsers(ctx context.Context, keys []tracker.FileUserKey) error {
	start := time.Now()
	err := r.reconciler.DeactivateFileUsers(ctx, keys)
	r.n++
	r.longest = max(r.longest, time.Since(start))
	return err
}

func (r *timedReconciler) ZeroFiles(ctx context.Context, fids []uint32) error {
	start := time.Now()
	err := r.reconciler.ZeroFiles(ctx, fids)
	r.n++
	r.longest = max(r.longest, time.Since(start))
	return err
}
