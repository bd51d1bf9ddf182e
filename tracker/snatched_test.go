package tracker

import "testing"

// A completion appends one SnatchEntry (uid, fid, address, time); the same
// peer announcing completed again, or stopping with nothing left, adds none.
func TestSnatchOnePerCompletion(t *testing.T) {
	h := hashN(1)
	tr, clk := newTest(t, nil)
	tr.UpsertTorrent(torrent(7, h, t0))
	tr.UpsertUser(user(3))
	a := ann(3, h, 1, 100)
	a.Addr = addr6(1)
	mustOK(t, tr, a)
	clk.Add(10)
	a.Left, a.Event = 0, EventCompleted
	mustOK(t, tr, a)
	clk.Add(10)
	mustOK(t, tr, a) // completed again
	a.Event = EventStopped
	mustOK(t, tr, a)

	b := tr.Drain()
	want := SnatchEntry{Addr: addr6(1), UID: 3, Fid: 7, Mtime: t0 + 10}
	if len(b.Snatches) != 1 || b.Snatches[0] != want {
		t.Fatalf("snatches %+v, want [%+v]", b.Snatches, want)
	}
	if f := b.Files[7]; f.Completed != 1 {
		t.Errorf("completed %d", f.Completed)
	}
	if tr.LedgerLen() != 0 || len(tr.Drain().Snatches) != 0 {
		t.Error("snatch still pending after Drain")
	}
}

// A peer that finished without event=completed (stopped with left 0) is a
// completion too; an anonymous peer or a torrent without a fid yet logs none.
func TestSnatchImplicitAnonymousAndNoFid(t *testing.T) {
	h, h2, h3 := hashN(1), hashN(2), hashN(3)
	tr, _ := newTest(t, func(s *Settings) { s.AnonymousAnnounce, s.AutoRegister = true, true })
	tr.UpsertTorrent(torrent(1, h, t0))
	tr.UpsertTorrent(torrent(2, h2, t0))
	tr.UpsertUser(user(5))

	a := ann(5, h, 1, 10)
	mustOK(t, tr, a)
	a.Left, a.Event = 0, EventStopped
	mustOK(t, tr, a)

	anon := ann(0, h2, 2, 0)
	anon.Event = EventCompleted
	mustOK(t, tr, anon)

	auto := ann(5, h3, 3, 0) // auto-registered: fid 0 until a reload
	auto.Event = EventCompleted
	mustOK(t, tr, auto)

	b := tr.Drain()
	if len(b.Snatches) != 1 || b.Snatches[0].UID != 5 || b.Snatches[0].Fid != 1 || b.Snatches[0].Addr != addr4(1) {
		t.Fatalf("snatches %+v, want one of uid 5 on fid 1", b.Snatches)
	}
}

// A batch whose write failed is restored: its snatches come back once,
// ahead of newer ones, and MergeBatches keeps them in order.
func TestSnatchRestore(t *testing.T) {
	h := hashN(1)
	tr, clk := newTest(t, nil)
	tr.UpsertTorrent(torrent(1, h, t0))
	tr.UpsertUser(user(1))
	tr.UpsertUser(user(2))
	a := ann(1, h, 1, 0)
	a.Event = EventCompleted
	mustOK(t, tr, a)
	b1 := tr.Drain()
	if len(b1.Snatches) != 1 || b1.Len() != 3 { // files, files_users, snatch
		t.Fatalf("window 1: %+v", b1)
	}

	clk.Add(60)
	c := ann(2, h, 2, 0)
	c.Event = EventCompleted
	mustOK(t, tr, c)
	if n := tr.LedgerLen(); n != 3 {
		t.Fatalf("window 2 LedgerLen %d, want 3", n)
	}
	tr.Restore(b1) // writing b1 failed
	b := tr.Drain()
	if len(b.Snatches) != 2 || b.Snatches[0].UID != 1 || b.Snatches[1].UID != 2 {
		t.Fatalf("after Restore: %+v", b.Snatches)
	}
	// A committed batch is never written again: nothing left.
	if got := tr.Drain(); len(got.Snatches) != 0 {
		t.Fatalf("snatches left after Drain: %+v", got.Snatches)
	}

	m := MergeBatches(&Batch{Snatches: b.Snatches[:1]}, &Batch{Snatches: b.Snatches[1:]})
	if len(m.Snatches) != 2 || m.Snatches[0].UID != 1 || m.Snatches[1].UID != 2 || m.Len() != 2 {
		t.Fatalf("MergeBatches: %+v", m.Snatches)
	}
}
