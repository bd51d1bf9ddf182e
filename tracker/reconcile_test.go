package tracker

import "testing"

// TestReconcile: a database row is corrected (through the ledger) only where
// it disagrees with memory, and a correction never undoes what an announce
// recorded.
func TestReconcile(t *testing.T) {
	h1, h2 := hashN(1), hashN(2)
	tr, _ := newTest(t, nil)
	tr.UpsertTorrent(torrent(1, h1, t0))
	tr.UpsertTorrent(torrent(2, h2, t0))
	for uid := uint32(1); uid <= 3; uid++ {
		tr.UpsertUser(user(uid))
	}
	mustOK(t, tr, ann(1, h1, 1, 0))  // user 1 seeds h1
	mustOK(t, tr, ann(2, h1, 2, 50)) // user 2 leeches h1 with two peers
	mustOK(t, tr, ann(2, h1, 3, 50))
	stop := ann(2, h1, 3, 50)
	stop.Event = EventStopped
	mustOK(t, tr, stop) // one of them stops: user 2 is still active
	tr.Drain()

	torrents := []struct {
		name       string
		ih         InfoHash
		fid        uint32
		dbS, dbL   int
		wantRecord bool
	}{
		{"counts agree", h1, 1, 1, 1, false},
		{"stale counts", h1, 1, 5, 3, true},
		{"no peers, database claims some", h2, 2, 0, 2, true},
		{"no peers, database agrees", h2, 2, 0, 0, false},
		{"another fid", h1, 9, 5, 3, false},
		{"not loaded", hashN(3), 3, 5, 3, false},
	}
	for _, tc := range torrents {
		if got := tr.ReconcileTorrent(tc.ih, tc.fid, tc.dbS, tc.dbL); got != tc.wantRecord {
			t.Errorf("ReconcileTorrent %s = %v, want %v", tc.name, got, tc.wantRecord)
		}
	}
	b := tr.Drain()
	if got := b.Files[1]; got.Seeders != 1 || got.Leechers != 1 || got.Completed != 0 {
		t.Errorf("fid 1 correction %+v, want 1 seeder 1 leecher, no completion", got)
	}
	if got, ok := b.Files[2]; !ok || got.Seeders != 0 || got.Leechers != 0 {
		t.Errorf("fid 2 correction %+v (%v), want 0/0", got, ok)
	}

	users := []struct {
		name               string
		ih                 InfoHash
		fid, uid           uint32
		wantOff, wantKnown bool
	}{
		{"seeder present", h1, 1, 1, false, true},
		{"one of two peers stopped", h1, 1, 2, false, true},
		{"no peer", h1, 1, 3, true, true},
		{"torrent without peers", h2, 2, 1, true, true},
		{"torrent not loaded", hashN(3), 3, 1, false, false},
	}
	for _, tc := range users {
		off, known := tr.ReconcileFileUser(tc.ih, tc.fid, tc.uid, 77, 1234)
		if off != tc.wantOff || known != tc.wantKnown {
			t.Errorf("ReconcileFileUser %s = %v, %v; want %v, %v", tc.name, off, known, tc.wantOff, tc.wantKnown)
		}
	}
	b = tr.Drain()
	if len(b.FileUsers) != 2 {
		t.Fatalf("corrections %+v, want (1,3) and (2,1)", b.FileUsers)
	}
	if got := b.FileUsers[FileUserKey{1, 3}]; got != (FileUserDelta{Active: false, Left: 77, Mtime: 1234}) {
		t.Errorf("(1,3) correction %+v: only active changes, left and mtime are the row's", got)
	}

	// A correction after an announce's stop keeps the announce's left,
	// mtime and counters.
	mustOK(t, tr, ann(3, h2, 4, 20))
	st := ann(3, h2, 4, 20)
	st.Uploaded, st.Event = 500, EventStopped
	mustOK(t, tr, st)
	tr.DeactivateFileUser(2, 3, 999, 1)
	got := tr.Drain().FileUsers[FileUserKey{2, 3}]
	if got.Active || got.Left != 20 || got.Mtime != t0 || got.Uploaded != 500 || got.Announced != 2 {
		t.Errorf("(2,3) after stop and correction %+v: the announce's values must stay", got)
	}
}
