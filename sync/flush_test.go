package sync

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

func TestFlushRestoresWhatWasNotWritten(t *testing.T) {
	for _, partial := range []bool{false, true} {
		h := newHarness(t, 2, 1, Options{})
		h.w.partial = partial
		c1 := &client{uid: 1, ih: hashOf(1), id: 1, left: 100}
		c2 := &client{uid: 2, ih: hashOf(1), id: 2}
		for _, c := range []*client{c1, c2} {
			if f := c.announce(h.trk, 0, 0); f != "" {
				t.Fatal(f)
			}
		}
		c1.announce(h.trk, 1000, 500)
		c2.announce(h.trk, 3000, 0)

		h.w.setFail(func(int) bool { return true })
		if err := h.s.Flush(context.Background()); !errors.Is(err, errDown) {
			t.Fatalf("flush: %v, want the writer's error", err)
		}
		if h.trk.LedgerLen() == 0 {
			t.Fatal("the failed batch was not put back")
		}
		if st := h.s.Status(); st.FlushErr == "" || !st.LastFlush.IsZero() {
			t.Fatalf("status after a failure: %+v", st)
		}
		// Announces keep arriving while the database is down.
		c1.announce(h.trk, 10, 20)
		if err := h.s.Flush(context.Background()); err == nil {
			t.Fatal("second flush succeeded with the writer failing")
		}

		h.w.setFail(nil)
		if err := h.s.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := h.trk.LedgerLen(); n != 0 {
			t.Fatalf("ledger holds %d rows after a good flush", n)
		}
		if up, down := h.w.totals(); up != 4010 || down != 520 {
			t.Fatalf("partial=%v: written totals up=%d down=%d, want 4010 and 520 (each delta exactly once)", partial, up, down)
		}
		if got := h.w.announced[tracker.FileUserKey{Fid: 1, UID: 1}]; got != 3 {
			t.Fatalf("partial=%v: announced for (1,1) = %d, want 3", partial, got)
		}
		if st := h.s.Status(); st.FlushErr != "" || st.LastFlush.IsZero() {
			t.Fatalf("status after recovery: %+v", st)
		}
		if n := countLevel(h.logs, zapcore.WarnLevel, ""); n != 1 {
			t.Fatalf("%d warnings for one failure streak, want 1", n)
		}
		if n := countLevel(h.logs, zapcore.InfoLevel, "writing statistics to the database works again"); n != 1 {
			t.Fatalf("%d recovery lines, want 1", n)
		}
	}
}

// TestFlushNothingLostUnderLoad: announces from many goroutines while
// flushes fail at random (wholly or after committing part of the batch):
// what the writer committed in the end is exactly what the clients sent.
func TestFlushNothingLostUnderLoad(t *testing.T) {
	const nClients, rounds = 40, 200
	h := newHarness(t, 10, 5, Options{})
	h.w.partial = true
	h.w.setFail(func(call int) bool { return call%3 != 0 })
	var sentUp, sentDown atomic.Uint64
	var wg gosync.WaitGroup
	for i := range nClients {
		c := &client{uid: uint32(1 + i%10), ih: hashOf(1 + i%5), id: i, left: uint64(i % 2)}
		wg.Go(func() {
			if f := c.announce(h.trk, 0, 0); f != "" {
				t.Error(f)
				return
			}
			for range rounds {
				up, down := rand.Uint64N(1<<20), rand.Uint64N(1<<20)
				if f := c.announce(h.trk, up, down); f != "" {
					t.Error(f)
					return
				}
				sentUp.Add(up)
				sentDown.Add(down)
			}
		})
	}
	stop := make(chan struct{})
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		for {
			select {
			case <-stop:
				return
			default:
				_ = h.s.Flush(context.Background())
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-flushed
	h.w.setFail(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	up, down := h.w.totals()
	if up != sentUp.Load() || down != sentDown.Load() {
		t.Fatalf("written up=%d down=%d, clients sent up=%d down=%d", up, down, sentUp.Load(), sentDown.Load())
	}
}

func TestShutdownRetriesUntilWritten(t *testing.T) {
	h := newHarness(t, 1, 1, Options{})
	c := &client{uid: 1, ih: hashOf(1), id: 1}
	c.announce(h.trk, 0, 0)
	c.announce(h.trk, 777, 0)
	h.w.setFail(func(call int) bool { return call <= 3 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := h.s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if h.w.calls != 4 {
		t.Fatalf("%d write attempts, want 4", h.w.calls)
	}
	if up, _ := h.w.totals(); up != 777 {
		t.Fatalf("written %d, want 777", up)
	}
	// Backoff 100+200+400ms between the four attempts.
	if took := time.Since(start); took < 600*time.Millisecond || took > 5*time.Second {
		t.Fatalf("shutdown took %v", took)
	}
	if countLevel(h.logs, zapcore.ErrorLevel, "") != 0 {
		t.Fatal("an error was logged although everything was written")
	}
}

func TestShutdownDeadlineReportsLoss(t *testing.T) {
	h := newHarness(t, 3, 2, Options{})
	var wantUp, wantDown uint64
	for i := 1; i <= 3; i++ {
		c := &client{uid: uint32(i), ih: hashOf(1 + i%2), id: i}
		c.announce(h.trk, 0, 0)
		c.announce(h.trk, uint64(1000*i), uint64(10*i))
		wantUp += uint64(1000 * i)
		wantDown += uint64(10 * i)
	}
	h.w.setFail(func(int) bool { return true })
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := h.s.Shutdown(ctx)
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("shutdown took %v past its 400ms deadline", took)
	}
	var loss *LossError
	if !errors.As(err, &loss) {
		t.Fatalf("shutdown returned %v, want a *LossError", err)
	}
	if loss.Users != 3 || loss.Files != 2 || loss.FileUsers != 3 || loss.Uploaded != wantUp || loss.Downloaded != wantDown {
		t.Fatalf("loss %+v, want 3 users, 2 files, 3 files_users, up %d, down %d", loss, wantUp, wantDown)
	}
	if !errors.Is(err, errDown) {
		t.Fatalf("loss error does not wrap the last write error: %v", err)
	}
	if h.w.calls < 2 {
		t.Fatalf("only %d attempts before the deadline", h.w.calls)
	}
	errs := h.logs.FilterLevelExact(zapcore.ErrorLevel).All()
	if len(errs) != 1 {
		t.Fatalf("%d error lines, want exactly 1", len(errs))
	}
	f := errs[0].ContextMap()
	if f["uploaded_bytes_lost"] != wantUp || f["xbt_users_rows"] != int64(3) || f["xbt_files_users_rows"] != int64(3) {
		t.Fatalf("error line fields: %v", f)
	}
	// The engine still holds the rows (nothing was silently dropped).
	if h.trk.LedgerLen() == 0 {
		t.Fatal("the unwritten rows vanished from the engine")
	}
}

func TestShutdownEmptyLedger(t *testing.T) {
	h := newHarness(t, 0, 0, Options{})
	if err := h.s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h.w.calls != 0 {
		t.Fatalf("%d writes for an empty ledger", h.w.calls)
	}
}

func TestLedgerBoundWarnings(t *testing.T) {
	h := newHarness(t, 20, 1, Options{LedgerMaxEntries: 10})
	now := time.Now()
	// 1 file row + 1 files_users row + 1 user row per credited client.
	add := func(uid uint32) {
		c := &client{uid: uid, ih: hashOf(1), id: int(uid)}
		c.announce(h.trk, 0, 0)
		c.announce(h.trk, 1, 1)
	}
	add(1)
	h.s.checkBound(now)
	if n := len(h.logs.All()); n != 0 {
		t.Fatalf("%d log lines under the warning level", n)
	}
	for uid := uint32(2); uid <= 4; uid++ { // 1 + 2*4 = 9 rows: 90%
		add(uid)
	}
	h.s.checkBound(now)
	h.s.checkBound(now.Add(time.Second)) // rate-limited
	if n := countLevel(h.logs, zapcore.WarnLevel, ""); n != 1 {
		t.Fatalf("%d warnings near the bound, want 1", n)
	}
	add(5)
	h.s.checkBound(now.Add(2 * time.Second)) // still rate-limited
	h.s.checkBound(now.Add(2 * boundWarnEvery))
	if n := countLevel(h.logs, zapcore.ErrorLevel, ""); n != 1 {
		t.Fatalf("%d errors over the bound, want 1", n)
	}
	// Over the bound, announces are still accepted.
	c := &client{uid: 6, ih: hashOf(1), id: 6}
	if f := c.announce(h.trk, 0, 0); f != "" {
		t.Fatalf("announce over the bound refused: %q", f)
	}
	if err := h.s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.s.checkBound(now.Add(3 * boundWarnEvery))
	if n := countLevel(h.logs, zapcore.InfoLevel, "statistics pending write-back are back under the warning level"); n != 1 {
		t.Fatalf("no all-clear after the flush")
	}
}

// TestFlushInterruptedIsNotAnOutage: a flush cut short by its caller (the
// process stopping) puts its rows back without warning about the database.
func TestFlushInterruptedIsNotAnOutage(t *testing.T) {
	h := newHarness(t, 1, 1, Options{})
	c := &client{uid: 1, ih: hashOf(1), id: 1}
	c.announce(h.trk, 0, 0)
	c.announce(h.trk, 10, 0)
	h.w.setFail(func(int) bool { return true })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.s.Flush(ctx); err == nil {
		t.Fatal("flush succeeded with a failing writer")
	}
	if n := countLevel(h.logs, zapcore.WarnLevel, ""); n != 0 {
		t.Fatalf("%d warnings for an interrupted flush", n)
	}
	h.w.setFail(nil)
	if err := h.s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if up, _ := h.w.totals(); up != 10 {
		t.Fatalf("written %d, want 10", up)
	}
	if n := countLevel(h.logs, zapcore.InfoLevel, ""); n != 0 {
		t.Fatalf("%d info lines (a recovery from an interruption?)", n)
	}
}

func TestFlushPause(t *testing.T) {
	s := &Syncer{o: Options{WriteInterval: 15 * time.Second}}
	for _, c := range []struct {
		rows int
		want time.Duration
	}{
		{0, flushChunkPause},
		{150_000, flushChunkPause},          // 601 pauses of 6ms: 3.6s < 5s
		{1_000_000, 5 * time.Second / 4001}, // capped at WriteInterval/3 in all
	} {
		if got := s.flushPause(c.rows); got != c.want {
			t.Errorf("flushPause(%d) = %v, want %v", c.rows, got, c.want)
		}
	}
}

// The periodic flush asks the writer to pace its chunks (flushPause);
// Flush and Shutdown's final flush do not.
func TestFlushPacing(t *testing.T) {
	h := newHarness(t, 1, 1, Options{WriteInterval: 15 * time.Second})
	c := &client{uid: 1, ih: hashOf(1), id: 1}
	ctx := context.Background()
	c.announce(h.trk, 0, 0)
	if err := h.s.flush(ctx, true, false); err != nil { // the periodic flush
		t.Fatal(err)
	}
	c.announce(h.trk, 10, 0)
	if err := h.s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	c.announce(h.trk, 20, 0)
	if err := h.s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{h.s.flushPause(0), 0, 0}
	if !slices.Equal(h.w.pauses, want) {
		t.Fatalf("chunk pauses %v, want %v (paced periodic flush, unpaced Flush and Shutdown)", h.w.pauses, want)
	}
	if want[0] <= 0 {
		t.Fatalf("periodic flush pause %v, want > 0", want[0])
	}
}

// A flush of ReleaseAfterRows rows or more hands memory back; a small one
// and a failed one do not.
func TestFlushReleasesMemoryAfterALargeBatch(t *testing.T) {
	var released atomic.Int32
	const users, torrents = 100, 101 // 10,100 (fid, uid) rows
	h := newHarness(t, users, torrents, Options{ReleaseMemory: func() { released.Add(1) }})
	announceAll := func() {
		id := 0
		for uid := 1; uid <= users; uid++ {
			for fid := 1; fid <= torrents; fid++ {
				id++
				c := &client{uid: uint32(uid), ih: hashOf(fid), id: id}
				if f := c.announce(h.trk, 0, 0); f != "" {
					t.Fatal(f)
				}
			}
		}
	}
	announceAll()
	if n := h.trk.LedgerLen(); n < ReleaseAfterRows {
		t.Fatalf("%d rows pending, want at least %d", n, ReleaseAfterRows)
	}
	h.w.setFail(func(int) bool { return true })
	if err := h.s.Flush(context.Background()); err == nil {
		t.Fatal("flush succeeded with the writer failing")
	}
	if n := released.Load(); n != 0 {
		t.Fatalf("released %d times after a failed flush", n)
	}
	h.w.setFail(nil)
	if err := h.s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := released.Load(); n != 1 {
		t.Fatalf("released %d times after a flush of %d+ rows, want 1", n, ReleaseAfterRows)
	}
	c := &client{uid: 1, ih: hashOf(1), id: 1}
	c.announce(h.trk, 10, 0)
	if err := h.s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := released.Load(); n != 1 {
		t.Fatalf("released after a small flush (%d calls)", n)
	}
}
