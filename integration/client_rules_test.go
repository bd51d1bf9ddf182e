package integration

import (
	"strings"
	"testing"
	"time"
)

// crAnnounce announces p and returns the failure reason ("" when accepted).
func crAnnounce(t *testing.T, p *simPeer) string {
	t.Helper()
	body, err := p.announce(0, 0, "")
	if err != nil {
		t.Fatalf("announce: %v", err)
	}
	return syFailure(body)
}

// crPeer is a simulated client of user uid on ih whose peer_id starts with
// prefix (the rest is padding).
func crPeer(base, secret string, uid uint32, ih [20]byte, n int, prefix string) *simPeer {
	p := newSimPeer(base, secret, 0, uid, ih, n, 100)
	copy(p.id[:], prefix)
	return p
}

const (
	crNotAllowed = "access denied, client not in the allow list (xbt_client_whitelist)"
	crDenied     = "access denied, client banned (xbt_deny_from_clients)"
)

// TestClientRules: the catalog's allow list (xbt_client_whitelist, Gazelle's
// table) and deny list (xbt_deny_from_clients) refuse clients with a
// failure reason naming the rule, and a row inserted while the tracker runs
// takes effect at the next reload.
func TestClientRules(t *testing.T) {
	cat := newSyCatalog(t)
	cat.exec(t, "INSERT INTO xbt_client_whitelist(peer_id, vstring) VALUES ('-TR3', 'Transmission 3'), ('-qB4', 'qBittorrent 4')")
	cat.exec(t, "INSERT INTO xbt_deny_from_clients(peer_id) VALUES ('-qB41')")
	p := startServe(t, []string{"XBT_DSN=" + cat.dsn}, syncFlags...)
	base := p.syBaseURL(t)
	secret := configValue(t, cat.db, "torrent_pass_private_key")
	uid := cat.addUser(t)
	ih := syInfoHash("client rules")
	cat.addFile(t, ih)

	tr := crPeer(base, secret, uid, ih, 1, "-TR3000-")
	if f := crAnnounce(t, tr); f != "" {
		t.Fatalf("allowed client refused: %q", f)
	}
	if f := crAnnounce(t, crPeer(base, secret, uid, ih, 2, "-UT3550-")); f != crNotAllowed {
		t.Fatalf("client outside the allow list: %q, want %q", f, crNotAllowed)
	}
	if f := crAnnounce(t, crPeer(base, secret, uid, ih, 3, "-qB4150-")); f != crDenied {
		t.Fatalf("client on the deny list: %q, want %q", f, crDenied)
	}
	if f := crAnnounce(t, crPeer(base, secret, uid, ih, 4, "-qB4650-")); f != "" {
		t.Fatalf("allowed qBittorrent refused: %q", f)
	}
	// A refused client does not need a valid passkey to learn why.
	bad := crPeer(base, secret, uid, ih, 5, "-UT3550-")
	bad.pk = strings.Repeat("0", 32)
	if f := crAnnounce(t, bad); f != crNotAllowed {
		t.Fatalf("bad passkey, client outside the allow list: %q", f)
	}
	if v := syMetric(t, base, `xbt_tracker_client_refused_total{rule="allow"}`); v != 2 {
		t.Fatalf("refused by the allow list: %v, want 2", v)
	}
	if v := syMetric(t, base, `xbt_tracker_client_refused_total{rule="deny"}`); v != 1 {
		t.Fatalf("refused by the deny list: %v, want 1", v)
	}
	if st := syGet(t, base+"/statistics"); !strings.Contains(st, "client not in the allow list") {
		t.Fatalf("/statistics does not count client refusals:\n%s", st)
	}

	// The catalog bans Transmission 3 and allows uTorrent 3: no restart.
	cat.exec(t, "INSERT INTO xbt_deny_from_clients(peer_id) VALUES ('-TR3')")
	cat.exec(t, "INSERT INTO xbt_client_whitelist(peer_id, vstring) VALUES ('-UT3', 'uTorrent 3')")
	syEventually(t, 15*time.Second, func() string {
		if f := crAnnounce(t, tr); f != crDenied {
			return "Transmission after its ban: " + f
		}
		if f := crAnnounce(t, crPeer(base, secret, uid, ih, 2, "-UT3550-")); f != "" {
			return "uTorrent after it was allowed: " + f
		}
		return ""
	})

	// Emptying both tables lifts every rule.
	cat.exec(t, "DELETE FROM xbt_client_whitelist")
	cat.exec(t, "DELETE FROM xbt_deny_from_clients")
	syEventually(t, 15*time.Second, func() string {
		if f := crAnnounce(t, crPeer(base, secret, uid, ih, 6, "-XX0001-")); f != "" {
			return "any client after the rules were emptied: " + f
		}
		return ""
	})
}

// TestClientRulesWithoutTables: a database without the client rule tables
// (made before migration 00005, or rolled back) works as before: one info
// line at start, every client announces.
func TestClientRulesWithoutTables(t *testing.T) {
	cat := newSyCatalog(t)
	cat.exec(t, "DROP TABLE xbt_client_whitelist")
	cat.exec(t, "DROP TABLE xbt_deny_from_clients")
	p := startServe(t, []string{"XBT_DSN=" + cat.dsn}, syncFlags...)
	base := p.syBaseURL(t)
	secret := configValue(t, cat.db, "torrent_pass_private_key")
	uid := cat.addUser(t)
	ih := syInfoHash("no client rules")
	cat.addFile(t, ih)
	for i, prefix := range []string{"-TR3000-", "-UT3550-", "-XX0001-"} {
		if f := crAnnounce(t, crPeer(base, secret, uid, ih, i+1, prefix)); f != "" {
			t.Fatalf("%s refused without client rule tables: %q", prefix, f)
		}
	}
	log := p.stderr.String()
	for _, tb := range []string{"xbt_client_whitelist", "xbt_deny_from_clients"} {
		if n := strings.Count(log, "table "+tb+" not in use"); n != 1 {
			t.Fatalf("%d start lines about %s, want 1:\n%s", n, tb, log)
		}
	}
	if strings.Contains(log, `"level":"warn"`) && strings.Contains(log, "client") {
		t.Fatalf("warning about client rules:\n%s", log)
	}
	// A reload later, still fine.
	time.Sleep(1500 * time.Millisecond)
	if f := crAnnounce(t, crPeer(base, secret, uid, ih, 9, "-ZZ0001-")); f != "" {
		t.Fatalf("refused after a reload: %q", f)
	}
}
