package sql

import (
	"context"
	"maps"
	"testing"
	"time"
)

// Two instances share their users' leeching-torrent counts: each sees the
// other's, never its own; a count that drops to nothing disappears at the
// next publication, and a retired instance's at once.
func TestLeechingExchange(t *testing.T) {
	ctx := context.Background()
	db, _, _ := writerDB(t, "")
	a, b := NewLeechingExchange(db), NewLeechingExchange(db)
	exchange := func(x *LeechingExchange, mine map[uint32]int32) map[uint32]int32 {
		t.Helper()
		others, err := x.Exchange(ctx, mine, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return others
	}
	if got := exchange(a, map[uint32]int32{1: 2, 2: 1}); len(got) != 0 {
		t.Fatalf("a sees %v before b published", got)
	}
	if got := exchange(b, map[uint32]int32{1: 1}); !maps.Equal(got, map[uint32]int32{1: 2, 2: 1}) {
		t.Fatalf("b sees %v, want a's counts", got)
	}
	if got := exchange(a, map[uint32]int32{1: 2, 2: 1}); !maps.Equal(got, map[uint32]int32{1: 1}) {
		t.Fatalf("a sees %v, want b's counts", got)
	}
	// uid 2 leeches nothing on a any more (a second later: the rows a
	// publication did not refresh are the ones it drops).
	time.Sleep(1100 * time.Millisecond)
	exchange(a, map[uint32]int32{1: 3})
	if got := exchange(b, map[uint32]int32{1: 1}); !maps.Equal(got, map[uint32]int32{1: 3}) {
		t.Fatalf("b sees %v after a's change, want {1: 3}", got)
	}
	// A stale writer (an instance that died) no longer counts.
	mustExec(t, db, "UPDATE xbt_tracker_leeching SET updated = updated - 120 WHERE writer = ?", a.writer[:])
	if got := exchange(b, map[uint32]int32{1: 1}); len(got) != 0 {
		t.Fatalf("b sees %v from a writer silent for 2 minutes, want nothing", got)
	}
	exchange(a, map[uint32]int32{1: 3})
	if err := a.Retire(ctx); err != nil {
		t.Fatal(err)
	}
	if got := exchange(b, map[uint32]int32{1: 1}); len(got) != 0 {
		t.Fatalf("b sees %v after a retired, want nothing", got)
	}
}
