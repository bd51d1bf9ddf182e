package tracker

import (
	"testing"
)

func TestLedgerCoalesces(t *testing.T) {
	h1, h2 := hashN(1), hashN(2)
	tr, clk := newTest(t, nil)
	tr.UpsertTorrent(torrent(1, h1, t0))
	tr.UpsertTorrent(torrent(2, h2, t0))
	tr.UpsertUser(user(1))
	tr.UpsertUser(user(2))
	// Ten announces by user 1 on h1 with two peers, two by user 2 on h2.
	for i := 1; i <= 5; i++ {
		for p := 1; p <= 2; p++ {
			a := ann(1, h1, p, uint64(100-i))
			a.Uploaded, a.Downloaded = uint64(i*10), uint64(i)
			mustOK(t, tr, a)
		}
		clk.Add(1)
	}
	a := ann(2, h2, 3, 0)
	mustOK(t, tr, a)
	a.Uploaded = 7
	mustOK(t, tr, a)

	b := tr.Drain()
	if len(b.Users) != 2 || len(b.Files) != 2 || len(b.FileUsers) != 2 || b.Len() != 6 {
		t.Fatalf("not coalesced: %+v", b)
	}
	if got := b.Users[1]; got != (UserDelta{2 * 40, 2 * 4}) {
		t.Errorf("user 1 %+v", got)
	}
	if got := b.Users[2]; got != (UserDelta{7, 0}) {
		t.Errorf("user 2 %+v", got)
	}
	if got := b.Files[1]; got != (FileDelta{Seeders: 0, Leechers: 2, Mtime: t0 + 4}) {
		t.Errorf("file 1 %+v", got)
	}
	// Two leeching peers, four 1 s intervals each: 8 s leeching.
	want := FileUserDelta{Active: true, Announced: 10, Uploaded: 80, Downloaded: 8, LeechTime: 8, Left: 95, Mtime: t0 + 4}
	if got := b.FileUsers[FileUserKey{1, 1}]; got != want {
		t.Errorf("files_users (1,1) %+v, want %+v", got, want)
	}
	if tr.LedgerLen() != 0 || tr.Drain().Len() != 0 {
		t.Error("ledger not empty after Drain")
	}
}

// TestDrainRestore: a batch that failed to be written is merged back; both
// windows' credit counts and newer overwritten values win.
func TestDrainRestore(t *testing.T) {
	h1, h2 := hashN(1), hashN(2)
	tr, clk := newTest(t, nil)
	tr.UpsertTorrent(torrent(1, h1, t0))
	tr.UpsertTorrent(torrent(2, h2, t0))
	tr.UpsertUser(user(1))

	// Window 1: user 1 uploads 100 on h1 (leeching, left 50) and completes h2.
	a := ann(1, h1, 1, 50)
	mustOK(t, tr, a)
	a.Uploaded = 100
	mustOK(t, tr, a)
	c := ann(1, h2, 2, 10)
	mustOK(t, tr, c)
	c.Left, c.Event = 0, EventCompleted
	mustOK(t, tr, c)
	a.Event = EventNone
	b1 := tr.Drain()

	// Window 2: 30 more on h1, which is now at left 20; h2 untouched.
	clk.Add(60)
	a.Uploaded, a.Left = 130, 20
	mustOK(t, tr, a)
	if tr.LedgerLen() != 3 {
		t.Fatalf("window 2 ledger %d rows", tr.LedgerLen())
	}

	// Writing b1 failed: give it back.
	tr.Restore(b1)
	b := tr.Drain()
	if got := b.Users[1]; got.Uploaded != 130 {
		t.Errorf("user 1 uploaded %d, want 100+30", got.Uploaded)
	}
	fu := b.FileUsers[FileUserKey{1, 1}]
	if fu.Uploaded != 130 || fu.Announced != 3 || fu.Left != 20 || fu.Mtime != t0+60 || !fu.Active {
		t.Errorf("files_users (1,1) %+v: sums added, left/mtime from window 2", fu)
	}
	if f := b.Files[1]; f.Mtime != t0+60 || f.Leechers != 1 {
		t.Errorf("file 1 %+v", f)
	}
	// Keys only in the restored batch come back as they were.
	if f := b.Files[2]; f.Completed != 1 || f.Seeders != 1 || f.Mtime != t0 {
		t.Errorf("file 2 %+v", f)
	}
	if fu := b.FileUsers[FileUserKey{2, 1}]; fu.Completed != 1 || fu.Announced != 2 || fu.Left != 0 {
		t.Errorf("files_users (2,1) %+v", fu)
	}
	if len(b.Snatches) != 1 || b.Snatches[0].Fid != 2 {
		t.Errorf("snatches %+v: the completion of h2, once", b.Snatches)
	}
	if b.Len() != 6 { // 5 rows and the snatch
		t.Errorf("batch len %d: %+v", b.Len(), b)
	}
}

func TestRestoreMerge(t *testing.T) {
	ih1, ih2 := hashN(1), hashN(2)
	tr, _ := newTest(t, nil)
	tr.Restore(nil)                                            // no-op
	tr.Restore(&Batch{Users: map[uint32]UserDelta{1: {1, 1}}}) // nil maps elsewhere
	cur := tr.Drain()
	if cur.Users[1] != (UserDelta{1, 1}) || cur.Files == nil {
		t.Fatalf("restore into empty ledger: %+v", cur)
	}

	// The ledger currently holds newer values (restoring into an empty
	// ledger takes everything).
	tr.Restore(&Batch{
		Users:       map[uint32]UserDelta{1: {10, 20}},
		Files:       map[uint32]FileDelta{1: {Completed: 1, Seeders: 9, Leechers: 9, Mtime: 200}},
		FileUsers:   map[FileUserKey]FileUserDelta{{1, 1}: {Active: false, Announced: 1, Uploaded: 5, Downloaded: 6, Mtime: 200}},
		NewFiles:    map[InfoHash]int64{ih1: 200},
		AnnounceLog: []AnnounceLogEntry{{UID: 2}},
		ScrapeLog:   []ScrapeLogEntry{{UID: 2}},
	})
	if n := tr.LedgerLen(); n != 6 {
		t.Fatalf("LedgerLen %d", n)
	}
	old := &Batch{
		Users: map[uint32]UserDelta{1: {1, 2}, 2: {3, 4}},
		Files: map[uint32]FileDelta{1: {Completed: 2, Seeders: 1, Leechers: 1, Mtime: 100}, 2: {Completed: 3, Seeders: 4, Leechers: 5, Mtime: 100}},
		FileUsers: map[FileUserKey]FileUserDelta{
			{1, 1}: {Active: true, Announced: 2, Completed: 1, Uploaded: 1, Downloaded: 1, Left: 50, Mtime: 100},
			{2, 1}: {Active: true, Announced: 1, Left: 7, Mtime: 100},
		},
		NewFiles:    map[InfoHash]int64{ih1: 100, ih2: 100},
		AnnounceLog: []AnnounceLogEntry{{UID: 1}},
		ScrapeLog:   []ScrapeLogEntry{{UID: 1}},
	}
	tr.Restore(old)
	b := tr.Drain()
	checks := []struct {
		name      string
		got, want any
	}{
		{"user 1 summed", b.Users[1], UserDelta{11, 22}},
		{"user 2 restored", b.Users[2], UserDelta{3, 4}},
		{"file 1: completed summed, counts newer", b.Files[1], FileDelta{Completed: 3, Seeders: 9, Leechers: 9, Mtime: 200}},
		{"file 2 restored", b.Files[2], FileDelta{Completed: 3, Seeders: 4, Leechers: 5, Mtime: 100}},
		{"files_users (1,1)", b.FileUsers[FileUserKey{1, 1}],
			FileUserDelta{Active: false, Announced: 3, Completed: 1, Uploaded: 6, Downloaded: 7, Left: 0, Mtime: 200}},
		{"files_users (2,1)", b.FileUsers[FileUserKey{2, 1}], FileUserDelta{Active: true, Announced: 1, Left: 7, Mtime: 100}},
		{"new file kept newer", b.NewFiles[ih1], int64(200)},
		{"new file restored", b.NewFiles[ih2], int64(100)},
		{"announce log order", len(b.AnnounceLog) == 2 && b.AnnounceLog[0].UID == 1 && b.AnnounceLog[1].UID == 2, true},
		{"scrape log order", len(b.ScrapeLog) == 2 && b.ScrapeLog[0].UID == 1 && b.ScrapeLog[1].UID == 2, true},
		{"len", b.Len(), 2 + 2 + 2 + 2 + 2 + 2},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, c.got, c.want)
		}
	}
}

func TestUpsertTorrentCatchUp(t *testing.T) {
	h := hashN(1)
	tr, _ := newTest(t, func(s *Settings) { s.AutoRegister = true })
	tr.UpsertUser(user(1))
	a := ann(1, h, 1, 10)
	mustOK(t, tr, a)
	a.Left = 0
	mustOK(t, tr, a) // a completion while the torrent has no fid
	if b := tr.Drain(); len(b.Files)+len(b.FileUsers) != 0 || len(b.NewFiles) != 1 {
		t.Fatalf("fid 0 batch %+v", b)
	}
	// sync inserted the row: the reload brings its fid.
	tr.ReplaceTorrents([]Torrent{{Fid: 42, InfoHash: h, Ctime: t0}})
	b := tr.Drain()
	if f := b.Files[42]; f.Completed != 1 || f.Seeders != 1 || f.Leechers != 0 {
		t.Fatalf("catch-up row %+v", b.Files)
	}
	// A later reload with the row's value (1) changes nothing.
	tr.ReplaceTorrents([]Torrent{{Fid: 42, InfoHash: h, Ctime: t0, Completed: 1}})
	if got, _ := tr.Torrent(h); got.Completed != 1 || got.Fid != 42 {
		t.Fatalf("torrent %+v", got)
	}
	if tr.Drain().Len() != 0 {
		t.Fatal("reload wrote rows")
	}
}
