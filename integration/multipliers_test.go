package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Credit multipliers (issue 15, section 1) with the real binary: what an
// announce adds to xbt_users is the reported delta times the torrent's
// (xbt_files.up_multi/down_multi, extras migration), the user's
// (xbt_users.up_multi/down_multi) and the site's (xbt_config up_multi and
// down_multi) percentages, download 0 under a valid freeleech token
// (xbt_freeleech_tokens), floor'd with the sub-byte remainder carried per
// user; xbt_files_users keeps the real bytes. Helpers are prefixed ml.

// mlScale is the denominator of three percentages multiplied: a factor of
// mlScale credits the reported bytes.
const mlScale = 100 * 100 * 100

// mlF is the factor an announce is credited with: the product of the
// torrent's, the user's and the site's percentages, up and down. Tests
// write the product out (e.g. 50 * 300 * 200) so that the expectation is
// visible where the announce is.
type mlF struct{ up, down uint64 }

// mlNormal credits the bytes as reported.
var mlNormal = mlF{mlScale, mlScale}

// mlRun is one tracker against one catalog, with the expected credit of
// every user computed the way the contract says: per user and counter,
// floor((delta × factor + carried remainder) / mlScale), the new remainder
// carried to that user's next announce (of any torrent).
type mlRun struct {
	cat    *syCatalog
	base   string
	secret string
	uids   []uint32
	peers  []*ftPeer
	carry  map[uint32][2]uint64 // uid → remainders (up, down), < mlScale
	want   map[uint32]ftBytes   // uid → what xbt_users must hold
}

func newMlRun(cat *syCatalog) *mlRun {
	return &mlRun{cat: cat, carry: map[uint32][2]uint64{}, want: map[uint32]ftBytes{}}
}

// user adds a user whose credit the run checks.
func (r *mlRun) user(t *testing.T) uint32 {
	t.Helper()
	uid := r.cat.addUser(t)
	r.uids = append(r.uids, uid)
	return uid
}

// torrent registers a torrent named name.
func (r *mlRun) torrent(t *testing.T, name string) ftTorrent {
	t.Helper()
	ih := syInfoHash("multipliers " + name)
	return ftTorrent{ih: ih, fid: r.cat.addFile(t, ih)}
}

// peer is a new client of uid on f, started (its baseline, no credit).
func (r *mlRun) peer(t *testing.T, uid uint32, f ftTorrent) *ftPeer {
	t.Helper()
	sp := newSimPeer(r.base, r.secret, 0, uid, f.ih, 100+len(r.peers), 1<<30)
	p := &ftPeer{simPeer: sp, uid: uid, fid: f.fid}
	r.peers = append(r.peers, p)
	syMustAnnounce(t, sp, 0, 0, "started")
	return p
}

// peek is what uid is credited for (up, down) at factor f, and the
// remainders it leaves, without recording it.
func (r *mlRun) peek(uid uint32, f mlF, up, down uint64) (cu, cd uint64, rem [2]uint64) {
	c := r.carry[uid]
	nu, nd := up*f.up+c[0], down*f.down+c[1]
	return nu / mlScale, nd / mlScale, [2]uint64{nu % mlScale, nd % mlScale}
}

// credit records that uid reported (up, down) at factor f.
func (r *mlRun) credit(uid uint32, f mlF, up, down uint64) {
	cu, cd, rem := r.peek(uid, f, up, down)
	r.carry[uid] = rem
	w := r.want[uid]
	w.up += cu
	w.down += cd
	r.want[uid] = w
}

// announce reports up and down more bytes for p, which the tracker must
// credit at factor f.
func (r *mlRun) announce(t *testing.T, p *ftPeer, up, down uint64, f mlF) {
	t.Helper()
	syMustAnnounce(t, p.simPeer, up, down, "")
	r.credit(p.uid, f, up, down)
}

// check compares every user's xbt_users totals with the expectation and
// every peer's xbt_files_users row with the real bytes it reported.
func (r *mlRun) check() string {
	if msg := ftCheckUsers(r.cat, r.uids, r.want); msg != "" {
		return msg
	}
	return ftCheckFileUsers(r.cat, r.peers)
}

// settled waits until the database holds exactly what was announced, then
// checks again after two more flushes: a credit written twice, or late,
// fails.
func (r *mlRun) settled(t *testing.T) {
	t.Helper()
	syEventually(t, 15*time.Second, r.check)
	syWaitFlushes(t, r.base, 2, 10*time.Second)
	if msg := r.check(); msg != "" {
		t.Fatal("two flushes later: " + msg)
	}
}

// until waits for a change the catalog made to reach the tracker: it
// announces d bytes up and down for p, waits for two flushes and reads what
// p's user was credited, until that is what factor to gives. Before that
// only factor from may show; whichever did is expected from then on.
func (r *mlRun) until(t *testing.T, p *ftPeer, d uint64, from, to mlF, what string) {
	t.Helper()
	fu, fd, _ := r.peek(p.uid, from, d, d)
	tu, td, _ := r.peek(p.uid, to, d, d)
	if fu == tu && fd == td {
		t.Fatalf("%s: %d bytes credit %d/%d both before and after the change: the probe cannot tell", what, d, fu, fd)
	}
	r.settled(t)
	deadline := time.Now().Add(20 * time.Second)
	for n := 1; ; n++ {
		before, err := ftUser(r.cat, p.uid)
		if err != nil {
			t.Fatal(err)
		}
		syMustAnnounce(t, p.simPeer, d, d, "")
		syWaitFlushes(t, r.base, 2, 10*time.Second)
		after, err := ftUser(r.cat, p.uid)
		if err != nil {
			t.Fatal(err)
		}
		got := ftBytes{after.up - before.up, after.down - before.down}
		switch got {
		case ftBytes{tu, td}:
			r.credit(p.uid, to, d, d)
			t.Logf("%s: in effect at probe announce %d", what, n)
			return
		case ftBytes{fu, fd}:
			r.credit(p.uid, from, d, d)
		default:
			t.Fatalf("%s: an announce of %d/%d credited %d/%d; want %d/%d (before the change) or %d/%d (after)",
				what, d, d, got.up, got.down, fu, fd, tu, td)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not in effect after %d announces over 20s (read_db_interval and read_config_interval are 1s)", what, n)
		}
	}
}

// mlMultiColumns counts the multiplier columns of xbt_files and xbt_users.
func mlMultiColumns(t *testing.T, cat *syCatalog) int {
	t.Helper()
	var n int
	if err := cat.db.QueryRow("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() " +
		"AND TABLE_NAME IN ('xbt_files', 'xbt_users') AND COLUMN_NAME IN ('up_multi', 'down_multi')").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// mlQuiet fails t when the tracker logged a warning or an error, or a flush
// or reload failed.
func mlQuiet(t *testing.T, p *trackerProc, base string) {
	t.Helper()
	if l := ftLogs(p.stderr.String(), "warn", ""); len(l) > 0 {
		t.Errorf("%d warn/error lines, first: %v", len(l), l[0])
	}
	for _, m := range []string{"xbt_tracker_flush_failures_total", "xbt_tracker_reload_failures_total"} {
		if v := syMetric(t, base, m); v != 0 {
			t.Errorf("%s %v, want 0", m, v)
		}
	}
}

// TestMultipliers: freeleech, double upload, the three factors combined
// with rounding carried across announces, a freeleech token valid and then
// expired, and catalog changes (torrent, user and site factors, tokens)
// taking effect without a restart; xbt_files_users keeps the real bytes
// throughout. One tracker: the subtests run in order and share the users'
// carried remainders, which the expectation models.
func TestMultipliers(t *testing.T) {
	cat := newSyCatalog(t)
	env := []string{"XBT_DSN=" + cat.dsn}
	if out := mustRun(t, env, "migrate", "up", "--extras"); !strings.Contains(out, "00002") {
		t.Fatalf("migrate up --extras applied no 00002:\n%s", out)
	}
	if n := mlMultiColumns(t, cat); n != 4 {
		t.Fatalf("%d multiplier columns after migrate up --extras, want 4", n)
	}
	r := newMlRun(cat)

	// The catalog's rows before the tracker starts: the first load must
	// apply them, or the first read_db_interval after a start credits
	// freeleech torrents.
	free := r.torrent(t, "freeleech") // down_multi 0
	double := r.torrent(t, "double upload")
	mixed := r.torrent(t, "half") // 50 % both ways; the three-factor case
	tokT := r.torrent(t, "token")
	plain := r.torrent(t, "plain")
	changing := r.torrent(t, "changing")
	cat.exec(t, "UPDATE xbt_files SET down_multi = 0 WHERE fid = ?", free.fid)
	cat.exec(t, "UPDATE xbt_files SET up_multi = 200 WHERE fid = ?", double.fid)
	cat.exec(t, "UPDATE xbt_files SET up_multi = 50, down_multi = 50 WHERE fid = ?", mixed.fid)

	freeLeech, freeSeed := r.user(t), r.user(t)
	doubleSeed, doubleLeech := r.user(t), r.user(t)
	tokUser, tokOther := r.user(t), r.user(t)
	v, w, z := r.user(t), r.user(t), r.user(t)
	probe, changer := r.user(t), r.user(t)
	cat.exec(t, "UPDATE xbt_users SET up_multi = 300, down_multi = 300 WHERE uid = ?", v)
	cat.exec(t, "UPDATE xbt_users SET up_multi = 150, down_multi = 30 WHERE uid = ?", z)
	tokExpires := time.Now().Unix() + 15
	cat.exec(t, "INSERT INTO xbt_freeleech_tokens (uid, fid, expires) VALUES (?, ?, ?)", tokUser, tokT.fid, tokExpires)

	p := startServe(t, env, syncFlags...)
	r.base = p.syBaseURL(t)
	r.secret = configValue(t, cat.db, "torrent_pass_private_key")

	// Each step builds on the state the previous ones left (peers,
	// counters, carried remainders): the first failure ends the test.
	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}
	var held, other, pProbe, pV *ftPeer

	step("token valid", func(t *testing.T) {
		held = r.peer(t, tokUser, tokT)
		elsewhere := r.peer(t, tokUser, plain)
		other = r.peer(t, tokOther, tokT)
		r.announce(t, held, 100, 5000, mlF{mlScale, 0})
		r.announce(t, elsewhere, 0, 3000, mlNormal) // the token is for one torrent
		r.announce(t, other, 0, 2000, mlNormal)     // and one user
		if now := time.Now().Unix(); now >= tokExpires-2 {
			t.Fatalf("the announces ended at %d, the token expires at %d: too late to tell a valid token (slow start?)", now, tokExpires)
		}
		r.settled(t)
	})

	step("freeleech torrent", func(t *testing.T) {
		leech := r.peer(t, freeLeech, free)
		seed := r.peer(t, freeSeed, free)
		r.announce(t, leech, 0, 1_000_000, mlF{mlScale, 0})
		r.announce(t, leech, 17, 48_576, mlF{mlScale, 0})
		r.announce(t, seed, 1_048_576, 0, mlNormal)
		r.settled(t)
		if got := r.want[freeLeech]; got.down != 0 || got.up != 17 {
			t.Fatalf("test arithmetic: freeleech leecher expects %+v", got)
		}
	})

	step("double upload", func(t *testing.T) {
		seed := r.peer(t, doubleSeed, double)
		leech := r.peer(t, doubleLeech, double)
		r.announce(t, seed, 777_777, 0, mlF{200 * 100 * 100, mlScale})
		r.announce(t, leech, 11, 777_777, mlF{200 * 100 * 100, mlScale})
		r.settled(t)
		if got := r.want[doubleSeed].up; got != 1_555_554 {
			t.Fatalf("test arithmetic: double upload expects %d", got)
		}
	})

	step("torrent and user factors change", func(t *testing.T) {
		pc := r.peer(t, changer, changing)
		r.announce(t, pc, 1000, 1000, mlNormal)
		r.settled(t)
		cat.exec(t, "UPDATE xbt_files SET up_multi = 300, down_multi = 50 WHERE fid = ?", changing.fid)
		r.until(t, pc, 1000, mlNormal, mlF{300 * 100 * 100, 50 * 100 * 100}, "torrent factor 300/50")
		// 7 bytes at 50 %: 3 credited and half a byte carried, which the
		// next 7 make 4.
		r.announce(t, pc, 333, 7, mlF{300 * 100 * 100, 50 * 100 * 100})
		r.announce(t, pc, 333, 7, mlF{300 * 100 * 100, 50 * 100 * 100})
		r.settled(t)
		cat.exec(t, "UPDATE xbt_files SET up_multi = 100, down_multi = 100 WHERE fid = ?", changing.fid)
		r.until(t, pc, 1000, mlF{300 * 100 * 100, 50 * 100 * 100}, mlNormal, "torrent factor back to 100")
		cat.exec(t, "UPDATE xbt_users SET down_multi = 0 WHERE uid = ?", changer)
		r.until(t, pc, 1000, mlNormal, mlF{mlScale, 0}, "user down_multi 0")
		cat.exec(t, "UPDATE xbt_users SET down_multi = 100 WHERE uid = ?", changer)
		r.until(t, pc, 1000, mlF{mlScale, 0}, mlNormal, "user down_multi back to 100")
	})

	step("token added and removed", func(t *testing.T) {
		cat.exec(t, "INSERT INTO xbt_freeleech_tokens (uid, fid, expires) VALUES (?, ?, ?)", tokOther, tokT.fid, time.Now().Unix()+3600)
		r.until(t, other, 1000, mlNormal, mlF{mlScale, 0}, "token inserted")
		cat.exec(t, "DELETE FROM xbt_freeleech_tokens WHERE uid = ?", tokOther)
		r.until(t, other, 1000, mlF{mlScale, 0}, mlNormal, "token deleted")
	})

	step("token expired", func(t *testing.T) {
		// A second of margin for the tracker's clock granularity.
		if d := time.Until(time.Unix(tokExpires+1, 0)); d > 0 {
			time.Sleep(d)
		}
		r.announce(t, held, 0, 4000, mlNormal)
		r.settled(t)
		if got := r.want[tokUser].down; got != 3000+4000 {
			t.Fatalf("test arithmetic: token holder expects %d down", got)
		}
	})

	step("three factors", func(t *testing.T) {
		pProbe = r.peer(t, probe, plain)
		cat.exec(t, "INSERT INTO xbt_config (name, value) VALUES ('up_multi', '200')")
		r.until(t, pProbe, 1000, mlNormal, mlF{100 * 100 * 200, mlScale}, "site up_multi 200")

		pV = r.peer(t, v, mixed)
		pw := r.peer(t, w, mixed)
		pz := r.peer(t, z, mixed)
		pzPlain := r.peer(t, z, plain)
		// torrent 50 % × user 300 % × site 200 % = 3 up; down 50 × 300 × 100 = 1.5.
		fV := mlF{50 * 300 * 200, 50 * 300 * 100}
		r.announce(t, pV, 1_000_000, 2_000_000, fV)
		r.announce(t, pV, 1, 1, fV)
		r.announce(t, pV, 1, 1, fV)
		// No user factor: 1 up, 0.5 down.
		fW := mlF{50 * 100 * 200, 50 * 100 * 100}
		for range 3 {
			r.announce(t, pw, 5, 1, fW)
		}
		// 1.5 up and 0.15 down on the half torrent, 3 and 0.3 on the plain
		// one: the remainders carry per user across both torrents.
		fZ := mlF{50 * 150 * 200, 50 * 30 * 100}
		fZPlain := mlF{100 * 150 * 200, 100 * 30 * 100}
		for i := range 10 {
			r.announce(t, pz, 1, 3, fZ)
			if i%5 == 0 {
				r.announce(t, pzPlain, 1, 3, fZPlain)
			}
		}
		// Written out: floor(3,000,000 + 3 + 3) / floor(3,000,000 + 1.5 +
		// 1.5); W floor(15) / floor(1.5); Z floor(10 × 1.5 + 2 × 3) /
		// floor(10 × 0.45 + 2 × 0.9). Rounding each announce down would
		// give Z 16/0, to nearest 26/2, carrying per torrent 21/5.
		for uid, want := range map[uint32]ftBytes{v: {3_000_006, 3_000_003}, w: {15, 1}, z: {21, 6}} {
			if r.want[uid] != want {
				t.Fatalf("test arithmetic: uid %d expects %+v, the contract gives %+v", uid, r.want[uid], want)
			}
		}
		r.settled(t)
	})

	step("site freeleech", func(t *testing.T) {
		siteUp := mlF{100 * 100 * 200, mlScale}
		cat.exec(t, "INSERT INTO xbt_config (name, value) VALUES ('down_multi', '0')")
		r.until(t, pProbe, 1000, siteUp, mlF{100 * 100 * 200, 0}, "site down_multi 0")
		r.announce(t, pV, 7, 4321, mlF{50 * 300 * 200, 0})
		r.settled(t)
		cat.exec(t, "DELETE FROM xbt_config WHERE name = 'down_multi'")
		r.until(t, pProbe, 1000, mlF{100 * 100 * 200, 0}, siteUp, "site down_multi deleted")
		r.announce(t, pV, 0, 1000, mlF{50 * 300 * 200, 50 * 300 * 100})
		r.settled(t)
	})

	mlQuiet(t, p, r.base)
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d\n%s", code, p.stderr.String())
	}
	if msg := r.check(); msg != "" {
		t.Fatal("after stop: " + msg)
	}
}

// TestMultipliersWithoutColumns: a database without the multiplier columns
// (plain migrate up) or without the token table credits as before: exactly
// the reported bytes (a token, where its table exists, still counts), no
// flush or reload fails, nothing is warned about, and no column appears.
func TestMultipliersWithoutColumns(t *testing.T) {
	cases := []struct {
		name     string
		extras   bool // migrate up --extras: the columns exist
		noTokens bool // xbt_freeleech_tokens dropped
	}{
		{name: "no columns", extras: false},
		{name: "no columns no token table", noTokens: true},
		{name: "columns no token table", extras: true, noTokens: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cat := newSyCatalog(t)
			env := []string{"XBT_DSN=" + cat.dsn}
			if tc.extras {
				mustRun(t, env, "migrate", "up", "--extras")
			}
			if tc.noTokens {
				cat.exec(t, "DROP TABLE xbt_freeleech_tokens")
			}
			columns, want := mlMultiColumns(t, cat), 0
			if tc.extras {
				want = 4
			}
			if columns != want {
				t.Fatalf("%d multiplier columns, want %d", columns, want)
			}
			r := newMlRun(cat)
			f, g := r.torrent(t, "adopted "+tc.name), r.torrent(t, "adopted other "+tc.name)
			u1, u2 := r.user(t), r.user(t)
			tokenFactor := mlNormal
			if !tc.noTokens {
				cat.exec(t, "INSERT INTO xbt_freeleech_tokens (uid, fid, expires) VALUES (?, ?, ?)", u2, g.fid, time.Now().Unix()+3600)
				tokenFactor = mlF{mlScale, 0}
			}
			torrentFactor := mlNormal
			if tc.extras {
				cat.exec(t, "UPDATE xbt_files SET down_multi = 0 WHERE fid = ?", f.fid)
				torrentFactor = mlF{mlScale, 0}
			}
			p := startServe(t, env, syncFlags...)
			r.base = p.syBaseURL(t)
			r.secret = configValue(t, cat.db, "torrent_pass_private_key")
			a, b, c := r.peer(t, u1, f), r.peer(t, u2, f), r.peer(t, u2, g)
			r.announce(t, a, 12345, 6789, torrentFactor)
			r.announce(t, b, 1, 3, torrentFactor)
			r.announce(t, c, 1000, 999, tokenFactor)
			r.settled(t)
			// Reloads later (read_db_interval 1), the same.
			reloads := syMetric(t, r.base, "xbt_tracker_reload_duration_seconds_count")
			syEventually(t, 10*time.Second, func() string {
				if n := syMetric(t, r.base, "xbt_tracker_reload_duration_seconds_count"); n < reloads+2 {
					return fmt.Sprintf("%v reloads since %v, want 2", n-reloads, reloads)
				}
				return ""
			})
			r.announce(t, a, 5, 7, torrentFactor)
			r.announce(t, c, 11, 13, tokenFactor)
			r.settled(t)
			mlQuiet(t, p, r.base)
			if code := p.stop(t); code != 0 {
				t.Fatalf("exit %d\n%s", code, p.stderr.String())
			}
			if n := mlMultiColumns(t, cat); n != columns {
				t.Fatalf("%d multiplier columns after the run, %d before", n, columns)
			}
		})
	}
}

// mlRules are the factors the fault suite gives torrents and users (percent,
// 100 when absent), to compute the expected credit of peers that announce
// concurrently.
type mlRules struct {
	torrents map[uint32][2]uint64 // fid → up, down
	users    map[uint32][2]uint64 // uid → up, down
}

// factor is the credit factor of uid's announces on fid (the site's is 100).
func (m *mlRules) factor(fid, uid uint32) mlF {
	if m == nil {
		return mlNormal
	}
	tf, ok := m.torrents[fid]
	if !ok {
		tf = [2]uint64{100, 100}
	}
	uf, ok := m.users[uid]
	if !ok {
		uf = [2]uint64{100, 100}
	}
	return mlF{tf[0] * uf[0] * 100, tf[1] * uf[1] * 100}
}
