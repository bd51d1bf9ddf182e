package tracker

import (
	"math"
	"sync"
	"testing"
)

func TestMultiplierZeroValueIsHundredPercent(t *testing.T) {
	for _, tc := range []struct {
		m    Multiplier
		want uint32
	}{
		{Multiplier{}, 100},
		{Percent(0), 0},
		{Percent(100), 100},
		{Percent(250), 250},
		{Percent(MaxPercent), MaxPercent},
		{Percent(MaxPercent + 1), MaxPercent},
		{Percent(math.MaxUint32), MaxPercent},
	} {
		if got := tc.m.Percent(); got != tc.want {
			t.Errorf("%+v.Percent() = %d, want %d", tc.m, got, tc.want)
		}
	}
}

func TestScaleCredit(t *testing.T) {
	for _, tc := range []struct {
		name          string
		delta, f      uint64
		carry         uint32
		want          uint64
		wantRemainder uint32
	}{
		{"100 % is exact", 12345, creditScale, 0, 12345, 0},
		{"100 % keeps a carry", 12345, creditScale, 999_999, 12345, 999_999},
		{"0 % credits nothing, keeps the carry", 1 << 40, 0, 5, 0, 5},
		{"50 % of an odd number", 3, creditScale / 2, 0, 1, 500_000},
		{"the carry completes a byte", 1, creditScale / 2, 500_000, 1, 0},
		{"200 %", 7, 2 * creditScale, 0, 14, 0},
		{"max factors: a 128-bit product", 1 << 20, MaxPercent * MaxPercent * MaxPercent, 0, 1 << 20 * 1_000_000_000, 0},
		{"max factors, big delta: saturates", 1 << 40, MaxPercent * MaxPercent * MaxPercent, 0, math.MaxUint64, 0},
		{"saturates instead of wrapping", math.MaxUint64, 2 * creditScale, 0, math.MaxUint64, 0},
		{"max delta at 100 % is exact", math.MaxUint64, creditScale, 0, math.MaxUint64, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, rem := scaleCredit(tc.delta, tc.f, tc.carry)
			if got != tc.want || rem != tc.wantRemainder {
				t.Errorf("scaleCredit(%d, %d, %d) = %d, %d; want %d, %d", tc.delta, tc.f, tc.carry, got, rem, tc.want, tc.wantRemainder)
			}
		})
	}
}

// Many small deltas at odd factors credit exactly floor(total × factor):
// nothing is lost to rounding across announces, and the carry entry goes
// away when the remainders are 0.
func TestMultipliedCreditCarriesRemainders(t *testing.T) {
	tr, clk := newTest(t, func(s *Settings) { s.UpMulti = Percent(33) })
	tr.UpsertUser(user(1))
	h := hashN(1)
	tr.UpsertTorrent(torrent(1, h, t0))
	tr.SetCreditRules(&CreditRules{
		Torrents: map[uint32]Factors{1: {Up: Percent(70), Down: Percent(30)}},
		Users:    map[uint32]Factors{1: {Down: Percent(110)}},
	})
	var out AnnounceResult
	a := ann(1, h, 1, 1000)
	tr.Announce(a, &out)
	var realUp, realDown uint64
	for i := range 1000 {
		clk.Add(1)
		a.Uploaded += uint64(1 + i%7)
		a.Downloaded += uint64(3 + i%5)
		realUp, realDown = a.Uploaded, a.Downloaded
		tr.Announce(a, &out)
		if out.Failure != "" {
			t.Fatal(out.Failure)
		}
	}
	b := tr.Drain()
	wantUp := realUp * 33 * 70 * 100 / creditScale
	wantDown := realDown * 100 * 30 * 110 / creditScale
	if d := b.Users[1]; d.Uploaded != wantUp || d.Downloaded != wantDown {
		t.Errorf("credited %+v, want up %d down %d (real %d, %d)", d, wantUp, wantDown, realUp, realDown)
	}
	if fu := b.FileUsers[FileUserKey{1, 1}]; fu.Uploaded != realUp || fu.Downloaded != realDown {
		t.Errorf("file-user row %+v, want the real bytes %d, %d", fu, realUp, realDown)
	}
	wantCarry := [2]uint32{uint32(realUp * 33 * 70 * 100 % creditScale), uint32(realDown * 100 * 30 * 110 % creditScale)}
	if got := tr.carry.carried(1); got != wantCarry {
		t.Errorf("carried %v, want %v", got, wantCarry)
	}

	// Back to 100 %, and a delta that uses the carry up: no entry left.
	tr.SetSettings(testSettings())
	tr.SetCreditRules(nil)
	if tr.CreditRules() != nil {
		t.Fatal("SetCreditRules(nil) left rules")
	}
	tr.carry.scale(1, 1, creditScale-uint64(wantCarry[0]), 1, creditScale-uint64(wantCarry[1]))
	if n := len(tr.carry.shards[1%carryShards].m); n != 0 {
		t.Errorf("%d carry entries left after the remainders reached 0", n)
	}
}

func TestSetCreditRulesEmptyIsNil(t *testing.T) {
	tr, _ := newTest(t, nil)
	tr.SetCreditRules(&CreditRules{Torrents: map[uint32]Factors{}})
	if tr.CreditRules() != nil {
		t.Error("empty rules were kept: the hot path would look them up")
	}
	tr.SetCreditRules(&CreditRules{
		Torrents: map[uint32]Factors{1: {}, 2: {}},
		Users:    map[uint32]Factors{1: {}},
		Tokens:   map[FileUserKey]int64{{1, 1}: 1, {1, 2}: 1, {2, 2}: 1},
	})
	if st := tr.Stats(); st.FactorTorrents != 2 || st.FactorUsers != 1 || st.Tokens != 3 {
		t.Errorf("Stats counts %d torrents, %d users, %d tokens; want 2, 1, 3", st.FactorTorrents, st.FactorUsers, st.Tokens)
	}
}

// A token counts only for its own user and torrent and only before it
// expires; it frees the download, never the upload.
func TestTokenScope(t *testing.T) {
	tr, clk := newTest(t, nil)
	h1, h2 := hashN(1), hashN(2)
	tr.UpsertTorrent(torrent(1, h1, t0))
	tr.UpsertTorrent(torrent(2, h2, t0))
	for uid := uint32(1); uid <= 2; uid++ {
		tr.UpsertUser(user(uid))
	}
	tr.SetCreditRules(&CreditRules{Tokens: map[FileUserKey]int64{{Fid: 1, UID: 1}: t0 + 10}})
	// Each step announces 7 more bytes up and 100 more down for its peer.
	var out AnnounceResult
	type step struct {
		uid  uint32
		fid  uint32
		wait int64  // seconds before the step
		down uint64 // credited of the 100 real bytes
	}
	hashes := map[uint32]InfoHash{1: h1, 2: h2}
	peers := map[FileUserKey]*Announce{}
	for i, s := range []step{
		{1, 1, 0, 0},    // the token's user and torrent
		{1, 2, 0, 100},  // another torrent
		{2, 1, 0, 100},  // another user
		{1, 1, 9, 0},    // 1 s before expiry
		{1, 1, 1, 100},  // at expiry: counted
		{1, 1, 60, 100}, // after
	} {
		clk.Add(s.wait)
		k := FileUserKey{s.fid, s.uid}
		a := peers[k]
		if a == nil {
			a = ann(s.uid, hashes[s.fid], 1, 500)
			peers[k] = a
			tr.Announce(a, &out) // the baseline
		}
		a.Uploaded += 7
		a.Downloaded += 100
		tr.Drain()
		tr.Announce(a, &out)
		b := tr.Drain()
		if d := b.Users[s.uid]; d.Downloaded != s.down || d.Uploaded != 7 {
			t.Errorf("step %d: credited %+v, want up 7 down %d", i, d, s.down)
		}
		if fu := b.FileUsers[k]; fu.Downloaded != 100 || fu.Uploaded != 7 {
			t.Errorf("step %d: file-user row %+v, want the real 7 and 100 bytes", i, fu)
		}
	}
}

// Factors of other users and torrents, and a token, do not make the
// announce allocate.
func TestMultipliedAnnounceDoesNotAllocate(t *testing.T) {
	tr, a := multipliedTracker(t, 50)
	var out AnnounceResult
	tr.Announce(a, &out)
	if n := testing.AllocsPerRun(200, func() {
		a.Uploaded += 1001
		a.Downloaded += 3
		tr.Announce(a, &out)
	}); n != 0 {
		t.Errorf("%.1f allocations per multiplied announce", n)
	}
}

// Concurrent announces of one user on several torrents share its carry:
// the sum is still exact (run with -race).
func TestCarryConcurrent(t *testing.T) {
	tr, _ := newTest(t, func(s *Settings) { s.UpMulti = Percent(50) })
	tr.UpsertUser(user(1))
	const workers, rounds = 4, 200
	for w := range workers {
		tr.UpsertTorrent(torrent(uint32(w+1), hashN(w), t0))
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out AnnounceResult
			a := ann(1, hashN(w), 1, 10)
			tr.Announce(a, &out)
			for range rounds {
				a.Uploaded++ // 1 byte at 50 %: only the carry makes it count
				tr.Announce(a, &out)
			}
		}()
	}
	wg.Wait()
	if got := tr.Drain().Users[1].Uploaded; got != workers*rounds/2 {
		t.Errorf("credited %d, want %d", got, workers*rounds/2)
	}
}
