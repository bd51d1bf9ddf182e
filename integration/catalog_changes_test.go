package integration

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 13, section 3: catalog changes take effect in seconds. Every test
// here runs serve with the default change_poll_interval and
// read_db_interval (60 s, so no reload happens while it runs): what takes
// effect does so through the on-demand version lookup or the change poll.

// ccBound is how soon after the catalog's write a change must take effect.
const ccBound = 5 * time.Second

// ccServe is a catalog and serve with default database intervals.
type ccServe struct {
	cat    *syCatalog
	p      *trackerProc
	base   string
	secret string
}

func ccStart(t *testing.T) *ccServe {
	t.Helper()
	return ccServeCatalog(t, newSyCatalog(t))
}

// ccServeCatalog starts serve on cat with the default database intervals
// (its state file in a directory of the test's own).
func ccServeCatalog(t *testing.T, cat *syCatalog) *ccServe {
	t.Helper()
	p := startServe(t, []string{"XBT_DSN=" + cat.dsn}, "--listen-http", "127.0.0.1:0",
		"--state-file", filepath.Join(t.TempDir(), "xbt-tracker.state"))
	return &ccServe{cat: cat, p: p, base: p.syBaseURL(t), secret: configValue(t, cat.db, "torrent_pass_private_key")}
}

// stop stops serve and checks that it exits 0 and that no reload or change
// poll failed.
func (s *ccServe) stop(t *testing.T) {
	t.Helper()
	if code := s.p.stop(t); code != 0 {
		t.Fatalf("exit %d\n%s", code, s.p.stderr.String())
	}
	if log := s.p.stderr.String(); strings.Contains(log, "reloading users and torrents failed") {
		t.Fatalf("a reload or change poll failed:\n%s", log)
	}
}

// ccWithin polls f until it returns "" and fails the test unless that
// happens within ccBound of wrote, the catalog's write.
func ccWithin(t *testing.T, wrote time.Time, f func() string) {
	t.Helper()
	syEventually(t, ccBound-time.Since(wrote), f)
	t.Logf("took effect %v after the catalog's write", time.Since(wrote).Round(10*time.Millisecond))
}

// ccFailure announces and returns the failure reason ("" when accepted).
func ccFailure(p *simPeer) string {
	body, err := p.announce(0, 0, "")
	if err != nil {
		return "transport: " + err.Error()
	}
	return syFailure(body)
}

// ccWant returns a check for syEventually: p's announce fails with want
// ("" = accepted).
func ccWant(p *simPeer, want string) func() string {
	return func() string {
		if got := ccFailure(p); got != want {
			return fmt.Sprintf("announce: failure %q, want %q", got, want)
		}
		return ""
	}
}

// A user's torrent_pass_version is bumped: the new passkey works on its very
// first announce, and from that moment the old ones (for every torrent) are
// refused, while the new ones keep working.
func TestCatalogVersionBump(t *testing.T) {
	cat := newSyCatalog(t)
	uid := cat.addUser(t)
	ihA, ihB := syInfoHash("cc version bump A"), syInfoHash("cc version bump B")
	cat.addFile(t, ihA)
	cat.addFile(t, ihB)
	s := ccServeCatalog(t, cat)

	oldA := newSimPeer(s.base, s.secret, 0, uid, ihA, 1, 100)
	oldB := newSimPeer(s.base, s.secret, 0, uid, ihB, 2, 100)
	syMustAnnounce(t, oldA, 0, 0, "started")
	syMustAnnounce(t, oldB, 0, 0, "started")

	cat.exec(t, "UPDATE xbt_users SET torrent_pass_version = torrent_pass_version + 1 WHERE uid = ?", uid)
	newA := newSimPeer(s.base, s.secret, 1, uid, ihA, 3, 100)
	newB := newSimPeer(s.base, s.secret, 1, uid, ihB, 4, 100)
	if f := ccFailure(newA); f != "" {
		t.Fatalf("the new passkey's first announce right after the bump: %q", f)
	}
	// From then on (across change polls: about 4 s) the old passkeys are
	// refused and the new ones work.
	for i := range 8 {
		for _, old := range []*simPeer{oldA, oldB} {
			if f := ccFailure(old); f != "unregistered torrent pass" {
				t.Fatalf("old passkey, check %d after the new one worked: %q", i, f)
			}
		}
		syMustAnnounce(t, newA, 0, 0, "")
		syMustAnnounce(t, newB, 0, 0, "")
		time.Sleep(500 * time.Millisecond)
	}
	s.stop(t)
}

// A user and a torrent inserted after the start work within 5 s, even when
// their keys were tried before the INSERT (the tracker remembered "not
// found"); and a user and torrent never tried before work too.
func TestCatalogInsertsTakeEffect(t *testing.T) {
	s := ccStart(t)
	known := s.cat.addUser(t)
	loaded := syInfoHash("cc loaded torrent")
	s.cat.addFile(t, loaded)

	tests := []struct {
		name   string
		tried  bool // announced once before the INSERT
		user   bool // insert a new user
		file   bool // insert a new torrent
		nonce  int
		reason string // the refusal before the INSERT
	}{
		{name: "torrent announced before its INSERT", tried: true, file: true, nonce: 1, reason: "unregistered torrent"},
		{name: "user's passkey tried before its INSERT", tried: true, user: true, nonce: 2, reason: "unregistered torrent pass"},
		{name: "new user on a new torrent", user: true, file: true, nonce: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			uid, ih := known, loaded
			if tc.user {
				uid = 1000 + uint32(tc.nonce) // the uid the INSERT below gives it
			}
			if tc.file {
				ih = syInfoHash(fmt.Sprint("cc inserted torrent ", tc.nonce))
			}
			peer := newSimPeer(s.base, s.secret, 0, uid, ih, 100+tc.nonce, 50)
			if tc.tried {
				if f := ccFailure(peer); f != tc.reason {
					t.Fatalf("before the INSERT: %q, want %q", f, tc.reason)
				}
			}
			if tc.user {
				s.cat.exec(t, "INSERT INTO xbt_users(uid, torrent_pass) VALUES(?, '')", uid)
			}
			if tc.file {
				s.cat.addFile(t, ih)
			}
			ccWithin(t, time.Now(), ccWant(peer, ""))
		})
	}
	s.stop(t)
}

// A ban, a user's deletion and a torrent's deletion take effect within 5 s.
func TestCatalogRevocationsTakeEffect(t *testing.T) {
	s := ccStart(t)
	tests := []struct {
		name   string
		change string // SQL with one ? for the uid or the hex info_hash
		byHash bool
		want   string
	}{
		{name: "ban", change: "UPDATE xbt_users SET can_leech = 0 WHERE uid = ?",
			want: "access denied, leeching forbidden, you are only allowed to seed"},
		{name: "user deleted", change: "DELETE FROM xbt_users WHERE uid = ?", want: "unregistered torrent pass"},
		{name: "torrent flagged deleted", change: "UPDATE xbt_files SET flags = 1 WHERE info_hash = UNHEX(?)", byHash: true,
			want: "unregistered torrent"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			uid := s.cat.addUser(t)
			ih := syInfoHash(fmt.Sprint("cc revocation ", i))
			s.cat.addFile(t, ih)
			peer := newSimPeer(s.base, s.secret, 0, uid, ih, 200+i, 50)
			syMustAnnounce(t, peer, 0, 0, "started")
			var arg any = uid
			if tc.byHash {
				arg = fmt.Sprintf("%x", ih)
			}
			s.cat.exec(t, tc.change, arg)
			ccWithin(t, time.Now(), ccWant(peer, tc.want))
		})
	}
	s.stop(t)
}
