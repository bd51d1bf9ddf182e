package tracker

import (
	"math"
	"testing"
)

// TestCreditCap: a delta over MaxCreditPerAnnounce credits nothing for that
// counter (the other counter is still credited), the next honest delta is
// credited from the new baseline, and the refused announce is counted and
// named once.
func TestCreditCap(t *testing.T) {
	const lim = 1 << 20
	tests := []struct {
		name           string
		limit          uint64
		up, down       uint64 // second announce's deltas
		wantUp, wantDn uint64 // credited for them
		wantCapped     uint64
	}{
		{"under the cap", lim, 1000, 2000, 1000, 2000, 0},
		{"exactly the cap", lim, lim, lim, lim, lim, 0},
		{"upload over the cap", lim, lim + 1, 500, 0, 500, 1},
		{"download over the cap", lim, 700, 1 << 40, 700, 0, 1},
		{"both over the cap", lim, 1 << 50, 1 << 41, 0, 0, 1},
		{"no cap", 0, 1 << 60, 1 << 61, 1 << 60, 1 << 61, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := hashN(1)
			tr, _ := newTest(t, func(s *Settings) { s.MaxCreditPerAnnounce = tc.limit })
			tr.UpsertTorrent(torrent(1, h, t0))
			tr.UpsertUser(user(7))
			a := ann(7, h, 1, 100)
			mustOK(t, tr, a)
			a.Uploaded, a.Downloaded = tc.up, tc.down
			mustOK(t, tr, a)
			// The next honest announce is credited from the lie's counters.
			a.Uploaded, a.Downloaded = tc.up+10, tc.down+20
			mustOK(t, tr, a)

			b := tr.Drain()
			if got, want := b.Users[7], (UserDelta{Uploaded: tc.wantUp + 10, Downloaded: tc.wantDn + 20}); got != want {
				t.Errorf("xbt_users delta %+v, want %+v", got, want)
			}
			fu := b.FileUsers[FileUserKey{1, 7}]
			if fu.Uploaded != tc.wantUp+10 || fu.Downloaded != tc.wantDn+20 {
				t.Errorf("xbt_files_users delta %d/%d, want %d/%d", fu.Uploaded, fu.Downloaded, tc.wantUp+10, tc.wantDn+20)
			}
			if got := tr.Stats().CreditCapped; got != tc.wantCapped {
				t.Errorf("CreditCapped = %d, want %d", got, tc.wantCapped)
			}
			users, unnamed := tr.TakeCappedCredits()
			if tc.wantCapped == 0 {
				if len(users) != 0 || unnamed != 0 {
					t.Errorf("capped users %+v (+%d), want none", users, unnamed)
				}
				return
			}
			if len(users) != 1 || users[0].UID != 7 || users[0].Announces != 1 || unnamed != 0 {
				t.Fatalf("capped users %+v (+%d), want uid 7 once", users, unnamed)
			}
			if again, _ := tr.TakeCappedCredits(); len(again) != 0 {
				t.Errorf("TakeCappedCredits did not forget: %+v", again)
			}
		})
	}
}

// TestCappedUIDsBounded: a flood of lying users is counted in full but only
// the first maxCappedUIDs are named.
func TestCappedUIDsBounded(t *testing.T) {
	tr, _ := newTest(t, nil)
	for uid := uint32(1); uid <= maxCappedUIDs+5; uid++ {
		tr.caps.record(uid, 1, 0)
	}
	users, unnamed := tr.TakeCappedCredits()
	if len(users) != maxCappedUIDs || unnamed != 5 || tr.Stats().CreditCapped != maxCappedUIDs+5 {
		t.Fatalf("named %d, unnamed %d, total %d", len(users), unnamed, tr.Stats().CreditCapped)
	}
}

// TestLedgerSaturates: sums of deltas never wrap around.
func TestLedgerSaturates(t *testing.T) {
	tests := []struct{ a, b, want uint64 }{
		{1, 2, 3},
		{math.MaxUint64 - 1, 1, math.MaxUint64},
		{math.MaxUint64 - 1, 2, math.MaxUint64},
		{math.MaxUint64, math.MaxUint64, math.MaxUint64},
		{0, math.MaxUint64, math.MaxUint64},
	}
	for _, tc := range tests {
		if got := satAdd(tc.a, tc.b); got != tc.want {
			t.Errorf("satAdd(%d, %d) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
	older := &Batch{Users: map[uint32]UserDelta{1: {Uploaded: math.MaxUint64 - 5}},
		FileUsers: map[FileUserKey]FileUserDelta{{1, 1}: {Downloaded: math.MaxUint64}}}
	newer := &Batch{Users: map[uint32]UserDelta{1: {Uploaded: 10}},
		FileUsers: map[FileUserKey]FileUserDelta{{1, 1}: {Downloaded: 1}}}
	m := MergeBatches(older, newer)
	if m.Users[1].Uploaded != math.MaxUint64 || m.FileUsers[FileUserKey{1, 1}].Downloaded != math.MaxUint64 {
		t.Fatalf("merge wrapped: %+v %+v", m.Users[1], m.FileUsers[FileUserKey{1, 1}])
	}
}
