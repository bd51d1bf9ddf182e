package tracker

import (
	"testing"
)

func pid(s string) PeerID {
	var p PeerID
	copy(p[:], s)
	return p
}

func bs(s ...string) [][]byte {
	out := make([][]byte, len(s))
	for i, x := range s {
		out[i] = []byte(x)
	}
	return out
}

func TestClientRulesCheck(t *testing.T) {
	for _, c := range []struct {
		name        string
		allow, deny [][]byte
		id          string
		want        Failure
	}{
		{"no rules", nil, nil, "-TR3000-abcdefghijkl", ""},
		{"empty lists", bs(), bs(), "-TR3000-abcdefghijkl", ""},
		{"only blank prefixes", bs("", "  ", "\t"), bs(" "), "-TR3000-abcdefghijkl", ""},
		{"allowed", bs("-UT3", "-TR3"), nil, "-TR3000-abcdefghijkl", ""},
		{"allowed, whole peer_id", bs("-TR3000-abcdefghijkl"), nil, "-TR3000-abcdefghijkl", ""},
		{"not allowed", bs("-UT3", "-TR3"), nil, "-qB4650-abcdefghijkl", ErrClientNotAllowed},
		{"not allowed, case matters", bs("-tr3"), nil, "-TR3000-abcdefghijkl", ErrClientNotAllowed},
		{"denied", nil, bs("-XL0"), "-XL0012-abcdefghijkl", ErrClientDenied},
		{"deny only, others allowed", nil, bs("-XL0"), "-TR3000-abcdefghijkl", ""},
		{"deny wins over allow", bs("-TR"), bs("-TR2"), "-TR2940-abcdefghijkl", ErrClientDenied},
		{"allow list and deny list, allowed", bs("-TR"), bs("-TR2"), "-TR3000-abcdefghijkl", ""},
		{"allow prefix longer than peer_id", bs("-TR3000-abcdefghijklm"), nil, "-TR3000-abcdefghijkl", ErrClientNotAllowed},
		{"deny prefix longer than peer_id", nil, bs("-TR3000-abcdefghijklm"), "-TR3000-abcdefghijkl", ""},
		{"trailing char padding", bs("-TR3   "), nil, "-TR3000-abcdefghijkl", ""},
		{"blank allow prefix ignored", bs(" ", "-UT3"), nil, "-TR3000-abcdefghijkl", ErrClientNotAllowed},
		{"raw bytes", bs("\x00\xff"), nil, "\x00\xffabcdefghijklmnopqr", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := pid(c.id)
			r := NewClientRules(c.allow, c.deny)
			if got := r.Check(&id); got != c.want {
				t.Fatalf("Check(%q) = %q, want %q", c.id, got, c.want)
			}
			// And through Announce, first in line after the host checks.
			tr, _ := newTest(t, nil)
			tr.UpsertUser(user(1))
			tr.UpsertTorrent(torrent(1, hashN(1), t0))
			tr.SetClientRules(r)
			a := ann(1, hashN(1), 1, 0)
			a.PeerID = id
			out := do(tr, a)
			if out.Failure != c.want {
				t.Fatalf("announce failure = %q, want %q", out.Failure, c.want)
			}
			st := tr.Stats()
			wantAllow, wantDeny := 0, 0
			switch c.want {
			case ErrClientNotAllowed:
				wantAllow = 1
			case ErrClientDenied:
				wantDeny = 1
			}
			if st.ClientNotAllowed != uint64(wantAllow) || st.ClientDenied != uint64(wantDeny) {
				t.Fatalf("refusals allow=%d deny=%d, want %d, %d", st.ClientNotAllowed, st.ClientDenied, wantAllow, wantDeny)
			}
		})
	}
}

func TestClientRulesEmptyIsNil(t *testing.T) {
	if r := NewClientRules(bs("", " "), nil); r != nil {
		t.Fatalf("blank prefixes gave rules %+v", r)
	}
	tr, _ := newTest(t, nil)
	tr.SetClientRules(&ClientRules{})
	if tr.ClientRules() != nil {
		t.Fatal("empty rules installed: the announce path would check them")
	}
	r := NewClientRules(bs("-TR3", "-TR3", "-UT3"), bs("-XL0"))
	if a, d := r.Len(); a != 2 || d != 1 {
		t.Fatalf("Len = %d, %d; want 2, 1 (duplicates once)", a, d)
	}
}

// The rules come before the passkey: a refused client with a bad passkey
// is told about its client; the host deny list and offline_message come
// first; a scrape (no peer_id) is not checked.
func TestClientRulesOrder(t *testing.T) {
	tr, _ := newTest(t, nil)
	tr.UpsertTorrent(torrent(1, hashN(1), t0))
	tr.SetClientRules(NewClientRules(bs("-TR3"), nil))
	a := ann(0, hashN(1), 1, 0)
	a.Passkey = []byte("nonsense")
	mustFail(t, tr, a, ErrClientNotAllowed)

	tr.SetDenyList(NewDenyList([][2]uint32{{0, ^uint32(0)}}, nil))
	mustFail(t, tr, a, ErrHostDenied)
	tr.SetDenyList(nil)

	s := tr.Settings()
	s.OfflineMessage = "maintenance"
	tr.SetSettings(s)
	mustFail(t, tr, a, "maintenance")
	s.OfflineMessage = ""
	tr.SetSettings(s)

	var sc ScrapeResult
	tr.Scrape(&ScrapeRequest{InfoHashes: []InfoHash{hashN(1)}, Addr: addr4(1)}, &sc)
	if sc.Failure == ErrClientNotAllowed || sc.Failure == ErrClientDenied {
		t.Fatalf("scrape refused by the client rules: %q", sc.Failure)
	}

	tr.SetClientRules(nil)
	a.Passkey = nil
	mustFail(t, tr, a, ErrUnregisteredTorrentPass)
}

func TestClientRulesCheckDoesNotAllocate(t *testing.T) {
	tr, _ := newTest(t, nil)
	tr.SetClientRules(NewClientRules(bs("-UT3", "-TR3"), bs("-XL0")))
	a := ann(1, hashN(1), 1, 0)
	for _, id := range []string{"-TR3000-abcdefghijkl", "-qB4650-abcdefghijkl", "-XL0012-abcdefghijkl"} {
		a.PeerID = pid(id)
		if n := testing.AllocsPerRun(100, func() { tr.checkClient(a) }); n != 0 {
			t.Fatalf("%s: %v allocs", id, n)
		}
	}
}

// BenchmarkAnnounceClientRules: BenchmarkAnnounceExistingPeer with an
// allow list of 20 prefixes (the client's last) and a deny list of 10.
func BenchmarkAnnounceClientRules(b *testing.B) {
	tr, h := benchTracker(b, 1, 200)
	var allow, deny [][]byte
	for i := range 19 {
		allow = append(allow, []byte{'-', 'A' + byte(i), 'Z', '1'})
	}
	allow = append(allow, []byte("-TT0"))
	for i := range 10 {
		deny = append(deny, []byte{'-', 'X', 'A' + byte(i), '0'})
	}
	tr.SetClientRules(NewClientRules(allow, deny))
	a := ann(1, h[0], 5, 10)
	var out AnnounceResult
	tr.Announce(a, &out)
	b.ReportAllocs()
	for b.Loop() {
		a.Uploaded += 1000
		tr.Announce(a, &out)
	}
	if out.Failure != "" || len(out.Peers4) != 50*6 {
		b.Fatalf("%q %d", out.Failure, len(out.Peers4))
	}
}
