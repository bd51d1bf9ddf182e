package tracker

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/xbt-tracker/xbt-tracker/passkey"
)

// TestAnnounceFailurePrecedence gives each case a request that breaks its
// rule and every rule of lower precedence, so the test fails if two checks
// are swapped. (Peers limit and torrents limit cannot both fail at once: the
// first needs leeching peers on this torrent, the second needs none.)
func TestAnnounceFailurePrecedence(t *testing.T) {
	const uid = 7
	known, unknown, other := hashN(1), hashN(2), hashN(3)
	worst := User{UID: uid, CanLeech: false, WaitTime: 3600, PeersLimit: 1, TorrentsLimit: 1}
	cases := []struct {
		name string
		mod  func(*Settings)
		u    User
		a    *Announce
		want Failure
	}{
		{"offline beats unregistered pass", func(s *Settings) { s.OfflineMessage = "down for maintenance" },
			worst, &Announce{InfoHash: unknown, Passkey: []byte(strings.Repeat("z", 32)), Left: 1, Addr: addr4(9)},
			"down for maintenance"},
		{"unregistered pass beats unregistered torrent", nil,
			worst, &Announce{InfoHash: unknown, Passkey: []byte(strings.Repeat("z", 32)), Left: 1, Addr: addr4(9)},
			ErrUnregisteredTorrentPass},
		{"unregistered pass: no passkey", nil, worst, &Announce{InfoHash: known, Left: 1, Addr: addr4(9)},
			ErrUnregisteredTorrentPass},
		{"unregistered pass: short passkey", nil, worst,
			&Announce{InfoHash: known, Passkey: pk(uid, known)[:31], Left: 1, Addr: addr4(9)}, ErrUnregisteredTorrentPass},
		{"unregistered pass: passkey of another torrent", nil, user(uid),
			&Announce{InfoHash: known, Passkey: pk(uid, other), Left: 1, Addr: addr4(9)}, ErrUnregisteredTorrentPass},
		{"unregistered torrent beats can_leech", nil, worst, ann(uid, unknown, 9, 1), ErrUnregisteredTorrent},
		{"can_leech beats wait_time and limits", nil, worst, ann(uid, known, 9, 1), ErrCanNotLeech},
		{"can_leech applies to a known peer", nil, User{UID: uid}, ann(uid, known, 1, 1), ErrCanNotLeech},
		{"wait_time beats peers limit", nil,
			User{UID: uid, CanLeech: true, WaitTime: 3600, PeersLimit: 1, TorrentsLimit: 1},
			ann(uid, known, 9, 1), ErrWaitTime},
		{"peers limit", nil, User{UID: uid, CanLeech: true, PeersLimit: 1, TorrentsLimit: 1},
			ann(uid, known, 9, 1), ErrPeersLimitReached},
		{"torrents limit", nil, User{UID: uid, CanLeech: true, PeersLimit: 1, TorrentsLimit: 1},
			ann(uid, other, 9, 1), ErrTorrentsLimitReached},
		{"all rules pass for a seeder", nil, User{UID: uid, WaitTime: 3600, PeersLimit: 1, TorrentsLimit: 1},
			ann(uid, other, 9, 0), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr, _ := newTest(t, c.mod)
			tr.UpsertTorrent(torrent(1, known, t0-10))
			tr.UpsertTorrent(torrent(3, other, t0-10))
			// uid leeches known with peer 1: one leeching peer, one leeching torrent.
			tr.UpsertUser(user(uid))
			if c.mod == nil {
				mustOK(t, tr, ann(uid, known, 1, 100))
			}
			tr.UpsertUser(c.u)
			tr.Drain()
			before := tr.Stats()

			out := do(tr, c.a)
			if out.Failure != c.want {
				t.Fatalf("failure = %q, want %q", out.Failure, c.want)
			}
			if c.want == "" {
				return
			}
			// A refusal changes nothing.
			after := tr.Stats()
			if after.Peers != before.Peers || after.Torrents != before.Torrents || after.LedgerLen != 0 {
				t.Errorf("state changed by a refusal: before %+v after %+v", before, after)
			}
			if after.AnnouncesFailed != before.AnnouncesFailed+1 {
				t.Errorf("failed announces %d -> %d", before.AnnouncesFailed, after.AnnouncesFailed)
			}
			if out.Complete != 0 || out.Interval != 0 || len(out.Peers4) != 0 {
				t.Errorf("refusal carries a response: %+v", out)
			}
			checkInvariants(t, tr)
		})
	}
}

func TestAnnounceLimitBoundaries(t *testing.T) {
	const uid = 5
	h1, h2, h3 := hashN(1), hashN(2), hashN(3)
	type step struct {
		a    *Announce
		want Failure
	}
	stop := func(a *Announce) *Announce { a.Event = EventStopped; return a }
	cases := []struct {
		name  string
		u     User
		steps []step
	}{
		{"peers limit 2", User{UID: uid, CanLeech: true, PeersLimit: 2}, []step{
			{ann(uid, h1, 1, 10), ""},
			{ann(uid, h1, 2, 10), ""},
			{ann(uid, h1, 3, 10), ErrPeersLimitReached},
			{ann(uid, h1, 1, 5), ""},                    // a known peer is not limited
			{ann(uid, h1, 3, 0), ""},                    // nor a new seeder
			{ann(uid, h2, 3, 10), ""},                   // the limit is per torrent
			{stop(ann(uid, h1, 4, 10)), ""},             // a stop adds nothing
			{ann(uid, h1, 4, 10), ErrPeersLimitReached}, // still full
			{stop(ann(uid, h1, 2, 10)), ""},             // one leaves ...
			{ann(uid, h1, 4, 10), ""},                   // ... another may come
			{ann(uid, h1, 2, 10), ErrPeersLimitReached}, // and it is full again
			{ann(uid, h1, 1, 0), ""},                    // peer 1 becomes a seeder ...
			{ann(uid, h1, 2, 10), ""},                   // ... and frees a place
		}},
		{"torrents limit 2", User{UID: uid, CanLeech: true, TorrentsLimit: 2}, []step{
			{ann(uid, h1, 1, 10), ""},
			{ann(uid, h2, 2, 10), ""},
			{ann(uid, h3, 3, 10), ErrTorrentsLimitReached},
			{ann(uid, h1, 4, 10), ""}, // a second peer on a torrent already counted
			{ann(uid, h3, 3, 0), ""},  // seeding is not limited
			{ann(uid, h1, 1, 0), ""},  // peer 1 done, but peer 4 still leeches h1
			{ann(uid, h3, 5, 10), ErrTorrentsLimitReached},
			{ann(uid, h1, 4, 0), ""}, // now h1 is seeded only
			{ann(uid, h3, 5, 10), ""},
			{ann(uid, h1, 6, 10), ErrTorrentsLimitReached},
			{stop(ann(uid, h2, 2, 10)), ""},
			{ann(uid, h1, 6, 10), ""},
		}},
		{"wait time at its boundary", User{UID: uid, CanLeech: true, WaitTime: 100}, []step{
			{ann(uid, h2, 1, 10), ErrWaitTime}, // h2: ctime = now - 99
			{ann(uid, h2, 1, 0), ""},           // seeders do not wait
			{ann(uid, h1, 1, 10), ""},          // h1: ctime = now - 100
		}},
		{"can_leech 0 may seed", User{UID: uid}, []step{
			{ann(uid, h1, 1, 10), ErrCanNotLeech},
			{ann(uid, h1, 1, 0), ""},
			{ann(uid, h1, 1, 10), ErrCanNotLeech},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr, _ := newTest(t, nil)
			tr.UpsertTorrent(torrent(1, h1, t0-100))
			tr.UpsertTorrent(torrent(2, h2, t0-99))
			tr.UpsertTorrent(torrent(3, h3, t0-1000))
			tr.UpsertUser(c.u)
			for i, st := range c.steps {
				if out := do(tr, st.a); out.Failure != st.want {
					t.Fatalf("step %d: failure %q, want %q", i, out.Failure, st.want)
				}
				checkInvariants(t, tr)
			}
		})
	}
}

func TestAnnounceAnonymous(t *testing.T) {
	h := hashN(1)
	for _, anon := range []bool{false, true} {
		tr, _ := newTest(t, func(s *Settings) { s.AnonymousAnnounce = anon })
		tr.UpsertTorrent(torrent(1, h, t0))
		tr.UpsertUser(user(1))
		want := ErrUnregisteredTorrentPass
		if anon {
			want = ""
		}
		noKey := ann(0, h, 1, 10)
		badKey := ann(0, h, 2, 10)
		badKey.Passkey = pk(99, h) // unknown uid
		for _, a := range []*Announce{noKey, badKey} {
			if out := do(tr, a); out.Failure != want {
				t.Fatalf("anonymous=%v: failure %q, want %q", anon, out.Failure, want)
			}
		}
		// A valid passkey still identifies its user.
		mustOK(t, tr, ann(1, h, 3, 10))
		if anon {
			if s, l := counts(tr, h); s != 0 || l != 3 {
				t.Fatalf("counts %d/%d", s, l)
			}
			// The anonymous peers are uid 0 and leave no user rows.
			a := ann(0, h, 1, 10)
			a.Uploaded = 1000
			mustOK(t, tr, a)
			b := tr.Drain()
			if len(b.Users) != 0 {
				t.Errorf("anonymous credit recorded: %v", b.Users)
			}
			for k := range b.FileUsers {
				if k.UID != 1 {
					t.Errorf("files_users row for %v", k)
				}
			}
		}
		checkInvariants(t, tr)
	}
}

func TestAnnounceAutoRegister(t *testing.T) {
	h := hashN(1)
	for _, auto := range []bool{false, true} {
		tr, clk := newTest(t, func(s *Settings) { s.AutoRegister = auto })
		tr.UpsertUser(user(1))
		tr.UpsertUser(User{UID: 2, CanLeech: false})
		tr.UpsertUser(User{UID: 3, CanLeech: true, WaitTime: 1})
		tr.UpsertUser(User{UID: 4, CanLeech: true, TorrentsLimit: 1})
		tr.UpsertTorrent(torrent(7, hashN(7), t0))
		mustOK(t, tr, ann(4, hashN(7), 4, 10)) // uid 4 is at its torrents limit
		tr.Drain()
		clk.Add(5)
		// A refused announce never registers the torrent.
		for uid, reason := range map[uint32]Failure{2: ErrCanNotLeech, 3: ErrWaitTime, 4: ErrTorrentsLimitReached} {
			if !auto {
				reason = ErrUnregisteredTorrent
			}
			mustFail(t, tr, ann(uid, h, int(uid), 10), reason)
			if _, ok := tr.Torrent(h); ok {
				t.Fatalf("auto=%v: announce refused with %q registered the torrent", auto, reason)
			}
		}
		if tr.Drain().Len() != 0 {
			t.Fatal("refusals wrote to the ledger")
		}
		out := do(tr, ann(1, h, 1, 10))
		if !auto {
			if out.Failure != ErrUnregisteredTorrent {
				t.Fatalf("failure %q", out.Failure)
			}
			if tr.Stats().Torrents != 1 || tr.Drain().Len() != 0 {
				t.Fatal("state changed")
			}
			continue
		}
		if out.Failure != "" || out.Incomplete != 1 || tr.Stats().Torrents != 2 {
			t.Fatalf("auto-registered announce: %+v", out)
		}
		got, ok := tr.Torrent(h)
		if !ok || got.Fid != 0 || got.Ctime != t0+5 {
			t.Fatalf("Torrent = %+v, %v", got, ok)
		}
		b := tr.Drain()
		if len(b.NewFiles) != 1 || b.NewFiles[h] != t0+5 {
			t.Fatalf("NewFiles = %v", b.NewFiles)
		}
		// Fid 0: no files or files_users rows (XBT).
		if len(b.Files) != 0 || len(b.FileUsers) != 0 {
			t.Fatalf("rows for fid 0: %v %v", b.Files, b.FileUsers)
		}
		checkInvariants(t, tr)
	}
}

func TestAnnouncePasskeys(t *testing.T) {
	h, h2 := hashN(1), hashN(2)
	legacy := "0123456789abcdefABCDEF0123456789"
	tr, _ := newTest(t, nil)
	tr.UpsertTorrent(torrent(1, h, t0))
	tr.UpsertTorrent(torrent(2, h2, t0))
	tr.UpsertUser(User{UID: 1, CanLeech: true, TorrentPass: legacy})
	tr.UpsertUser(user(2))

	withKey := func(key []byte, ih InfoHash) *Announce {
		a := ann(0, ih, 1, 0)
		a.Passkey = key
		return a
	}
	check := func(name string, key []byte, ih InfoHash, want Failure) {
		t.Helper()
		if out := do(tr, withKey(key, ih)); out.Failure != want {
			t.Errorf("%s: failure %q, want %q", name, out.Failure, want)
		}
	}
	check("derived", pk(2, h), h, "")
	check("derived, upper case", bytes.ToUpper(pk(2, h)), h, "")
	check("derived for another torrent", pk(2, h2), h, ErrUnregisteredTorrentPass)
	check("legacy", []byte(legacy), h, "")
	check("legacy on any torrent", []byte(legacy), h2, "")
	check("legacy is case-sensitive", []byte(strings.ToLower(legacy)), h, ErrUnregisteredTorrentPass)
	check("tampered digest", append(pk(2, h)[:31:31], 'x'), h, ErrUnregisteredTorrentPass)

	// Bumping torrent_pass_version revokes every derived passkey.
	tr.UpsertUser(User{UID: 2, CanLeech: true, TorrentPassVersion: 1})
	check("old version", pk(2, h), h, ErrUnregisteredTorrentPass)
	check("new version", pkv(2, 1, h), h, "")

	// A new torrent_pass replaces the old one in the legacy index.
	newLegacy := strings.Repeat("n", 32)
	tr.UpsertUser(User{UID: 1, CanLeech: true, TorrentPass: newLegacy})
	check("replaced legacy", []byte(legacy), h, ErrUnregisteredTorrentPass)
	check("new legacy", []byte(newLegacy), h, "")
	if n := len(tr.users.legacy); n != 1 {
		t.Errorf("legacy index holds %d entries, want 1 (no stale pass)", n)
	}

	tr.RemoveUser(2)
	check("removed user", pkv(2, 1, h), h, ErrUnregisteredTorrentPass)
	tr.RemoveUser(1)
	check("removed legacy user", []byte(newLegacy), h, ErrUnregisteredTorrentPass)
	if n := len(tr.users.legacy); n != 0 {
		t.Errorf("legacy index holds %d entries after RemoveUser", n)
	}
	if _, ok := tr.User(1); ok {
		t.Error("User(1) after RemoveUser")
	}

	// Without a secret, derived passkeys would be forgeable: refused.
	s := tr.Settings()
	s.Secret = ""
	tr.SetSettings(s)
	tr.UpsertUser(user(3))
	check("empty secret", []byte(passkey.Derive("", 0, 3, h)), h, ErrUnregisteredTorrentPass)
	checkInvariants(t, tr)
}

func TestAnnounceResponse(t *testing.T) {
	h := hashN(1)
	tr, _ := newTest(t, nil)
	tr.UpsertTorrent(torrent(1, h, t0))
	for uid := uint32(1); uid <= 3; uid++ {
		tr.UpsertUser(user(uid))
	}
	mustOK(t, tr, ann(1, h, 1, 0))
	mustOK(t, tr, ann(2, h, 2, 10))
	out := mustOK(t, tr, ann(3, h, 3, 10))
	if out.Complete != 1 || out.Incomplete != 2 || out.Interval != testInterval || out.MinInterval != testInterval {
		t.Fatalf("response %+v", out)
	}
	if len(out.Peers4) != 2*6 {
		t.Fatalf("peers %d bytes", len(out.Peers4))
	}
	// The response reuses the caller's slices.
	before := &out.Peers4[0]
	tr.Announce(ann(3, h, 3, 10), out)
	if &out.Peers4[0] != before {
		t.Error("Peers4 was reallocated")
	}
	// Counts are taken after the update: a leecher turning seeder.
	out = mustOK(t, tr, ann(3, h, 3, 0))
	if out.Complete != 2 || out.Incomplete != 1 {
		t.Fatalf("after completion %d/%d", out.Complete, out.Incomplete)
	}
	// event=stopped: no peers, counts without the stopped peer.
	a := ann(3, h, 3, 0)
	a.Event = EventStopped
	out = mustOK(t, tr, a)
	if out.Complete != 1 || out.Incomplete != 1 || len(out.Peers4)+len(out.Peers6) != 0 {
		t.Fatalf("stopped: %+v", out)
	}
	if s, l := counts(tr, h); s != 1 || l != 1 {
		t.Fatalf("counts after stop %d/%d", s, l)
	}
	// Stopping an unknown peer is accepted and changes nothing.
	a = ann(3, h, 33, 10)
	a.Event = EventStopped
	if out = mustOK(t, tr, a); out.Complete != 1 || out.Incomplete != 1 {
		t.Fatalf("unknown stop: %+v", out)
	}
	checkInvariants(t, tr)
}

func TestAnnounceDenied(t *testing.T) {
	h := hashN(1)
	tr, _ := newTest(t, func(s *Settings) { s.OfflineMessage = "offline" })
	tr.UpsertTorrent(torrent(1, h, t0))
	tr.SetDenyList(NewDenyList([][2]uint32{{0x0a000000, 0x0a0000ff}}, nil))
	mustFail(t, tr, ann(0, h, 5, 0), ErrHostDenied) // 10.0.0.5: denied before anything else
	mustFail(t, tr, ann(0, h, 256, 0), "offline")   // 10.0.1.0: not denied
	tr.SetDenyList(nil)
	mustFail(t, tr, ann(0, h, 5, 0), "offline")
}

// addrOf decodes a compact peer entry.
func addrOf(b []byte) netip.AddrPort {
	var a netip.Addr
	if len(b) == 6 {
		a = netip.AddrFrom4([4]byte(b[:4]))
	} else {
		a = netip.AddrFrom16([16]byte(b[:16]))
	}
	return netip.AddrPortFrom(a, uint16(b[len(b)-2])<<8|uint16(b[len(b)-1]))
}

// One user's peers on one swarm are counted in 16 bits: the peer past
// maxUserPeers is refused rather than wrapping the count, and stopping one
// makes room again.
func TestMaxUserPeersPerSwarm(t *testing.T) {
	if testing.Short() {
		t.Skip("65,535 announces")
	}
	tr, _ := newTest(t, nil)
	const uid = 7
	tr.UpsertUser(user(uid))
	tr.UpsertUser(user(uid + 1))
	h := hashN(1)
	tr.UpsertTorrent(torrent(1, h, t0))
	a := ann(uid, h, 0, 0)
	var out AnnounceResult
	for p := range maxUserPeers {
		a.PeerID, a.Addr = peerN(p), addr4(p)
		if tr.Announce(a, &out); out.Failure != "" {
			t.Fatalf("peer %d refused: %q", p, out.Failure)
		}
	}
	if s, _ := counts(tr, h); s != maxUserPeers {
		t.Fatalf("%d seeders, want %d", s, maxUserPeers)
	}
	mustFail(t, tr, ann(uid, h, maxUserPeers, 0), ErrPeersLimitReached)
	mustOK(t, tr, ann(uid, h, 5, 0)) // a known peer still announces
	mustOK(t, tr, ann(uid+1, h, maxUserPeers, 0))
	stop := ann(uid, h, 5, 0)
	stop.Event = EventStopped
	mustOK(t, tr, stop)
	mustOK(t, tr, ann(uid, h, maxUserPeers+1, 0))
	if got := swarmOf(tr, h).userCount(uid).total; got != maxUserPeers {
		t.Fatalf("user count %d, want %d", got, maxUserPeers)
	}
}
