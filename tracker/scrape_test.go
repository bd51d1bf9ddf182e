package tracker

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

func TestScrape(t *testing.T) {
	h1, h2, h3, unknown := hashN(1), hashN(2), hashN(3), hashN(99)
	legacy := strings.Repeat("L", 32)
	type want struct {
		failure Failure
		files   []InfoHash
		full    bool
	}
	cases := []struct {
		name   string
		mod    func(*Settings)
		pk     []byte
		hashes []InfoHash
		want   want
	}{
		{"one", nil, pk(1, h1), []InfoHash{h1}, want{files: []InfoHash{h1}}},
		{"many, unknown omitted", nil, pk(1, h2), []InfoHash{h3, unknown, h1, h2},
			want{files: []InfoHash{h1, h2, h3}}},
		{"duplicates once", nil, pk(1, h1), []InfoHash{h1, h1, h2, h1}, want{files: []InfoHash{h1, h2}}},
		{"unknown only", nil, pk(1, unknown), []InfoHash{unknown}, want{}},
		{"passkey of another torrent", nil, pk(1, h2), []InfoHash{h1}, want{failure: ErrUnregisteredTorrentPass}},
		{"many, passkey of none of them", nil, pk(1, h3), []InfoHash{h1, h2}, want{failure: ErrUnregisteredTorrentPass}},
		{"unknown user", nil, pk(2, h1), []InfoHash{h1}, want{failure: ErrUnregisteredTorrentPass}},
		{"no passkey", nil, nil, []InfoHash{h1}, want{failure: ErrUnregisteredTorrentPass}},
		{"legacy pass", nil, []byte(legacy), []InfoHash{h1, h2}, want{files: []InfoHash{h1, h2}}},
		{"anonymous", func(s *Settings) { s.AnonymousScrape = true }, nil, []InfoHash{h2},
			want{files: []InfoHash{h2}}},
		{"full disabled", nil, []byte(legacy), nil, want{}},
		{"full, peers only", func(s *Settings) { s.FullScrape = true }, []byte(legacy), nil,
			want{files: []InfoHash{h1, h2}, full: true}}, // h3 has no peer
		{"full needs a user", func(s *Settings) { s.FullScrape = true }, nil, nil,
			want{failure: ErrUnregisteredTorrentPass}},
		{"full: a derived passkey cannot be verified", func(s *Settings) { s.FullScrape = true }, pk(1, h1), nil,
			want{failure: ErrUnregisteredTorrentPass}},
		{"full, anonymous", func(s *Settings) { s.FullScrape, s.AnonymousScrape = true, true }, nil, nil,
			want{files: []InfoHash{h1, h2}, full: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr, _ := newTest(t, c.mod)
			tr.UpsertUser(User{UID: 1, CanLeech: true, TorrentPass: legacy})
			tr.UpsertTorrent(Torrent{Fid: 1, InfoHash: h1, Ctime: t0, Completed: 5})
			tr.UpsertTorrent(torrent(2, h2, t0))
			tr.UpsertTorrent(torrent(3, h3, t0))
			mustOK(t, tr, ann(1, h1, 1, 0))
			mustOK(t, tr, ann(1, h1, 2, 10))
			mustOK(t, tr, ann(1, h1, 3, 10))
			mustOK(t, tr, ann(1, h2, 1, 10))

			var out ScrapeResult
			tr.Scrape(&ScrapeRequest{Passkey: c.pk, InfoHashes: c.hashes, Addr: addr4(1)}, &out)
			if out.Failure != c.want.failure {
				t.Fatalf("failure %q, want %q", out.Failure, c.want.failure)
			}
			st := tr.Stats()
			if c.want.failure != "" {
				if len(out.Files) != 0 || st.ScrapesFailed != 1 {
					t.Fatalf("refused scrape: %+v, stats %+v", out, st)
				}
				return
			}
			if st.ScrapesOK != 1 || out.MinRequestInterval != 900 || out.Full != c.want.full {
				t.Fatalf("result %+v, stats %+v", out, st)
			}
			wantFiles := slices.Clone(c.want.files)
			slices.SortFunc(wantFiles, func(a, b InfoHash) int { return bytes.Compare(a[:], b[:]) })
			var got []InfoHash
			for _, f := range out.Files {
				got = append(got, f.InfoHash)
				var w ScrapeFile
				switch f.InfoHash {
				case h1:
					w = ScrapeFile{h1, 1, 5, 2}
				case h2:
					w = ScrapeFile{h2, 0, 0, 1}
				case h3:
					w = ScrapeFile{h3, 0, 0, 0}
				}
				if f != w {
					t.Errorf("file %+v, want %+v", f, w)
				}
			}
			if !slices.Equal(got, wantFiles) {
				t.Fatalf("files %x, want %x (sorted)", got, wantFiles)
			}
		})
	}
}

func TestScrapeLogAndDeny(t *testing.T) {
	h := hashN(1)
	tr, clk := newTest(t, func(s *Settings) { s.LogScrape = true; s.LogAnnounce = true })
	tr.UpsertUser(user(1))
	tr.UpsertTorrent(torrent(1, h, t0))
	var out ScrapeResult
	tr.Scrape(&ScrapeRequest{Passkey: pk(1, h), InfoHashes: []InfoHash{h}, Addr: addr4(1)}, &out)
	clk.Add(1)
	tr.Scrape(&ScrapeRequest{InfoHashes: []InfoHash{h}, Addr: addr4(2)}, &out) // refused, logged too
	tr.SetDenyList(NewDenyList([][2]uint32{{0x0a000003, 0x0a000003}}, nil))
	tr.Scrape(&ScrapeRequest{InfoHashes: []InfoHash{h}, Addr: addr4(3)}, &out)
	if out.Failure != ErrHostDenied {
		t.Fatalf("denied host: %q", out.Failure)
	}
	// Announce log: accepted and refused announces alike, like XBT.
	a := ann(1, h, 1, 10)
	a.Uploaded, a.Event = 77, EventStarted
	mustOK(t, tr, a)
	mustFail(t, tr, ann(0, h, 2, 10), ErrUnregisteredTorrentPass)

	b := tr.Drain()
	wantS := []ScrapeLogEntry{
		{Addr: addr4(1), InfoHash: h, UID: 1, Mtime: t0},
		{Addr: addr4(2), InfoHash: h, UID: 0, Mtime: t0 + 1},
	}
	if !slices.Equal(b.ScrapeLog, wantS) {
		t.Errorf("scrape log %+v", b.ScrapeLog)
	}
	wantA := []AnnounceLogEntry{
		{Addr: a.Addr, Port: a.Port, Event: EventStarted, InfoHash: h, PeerID: a.PeerID, Uploaded: 77, Left: 10, UID: 1, Mtime: t0 + 1},
		{Addr: addr4(2), Port: 6883, InfoHash: h, PeerID: peerN(2), Left: 10, Mtime: t0 + 1},
	}
	if !slices.Equal(b.AnnounceLog, wantA) {
		t.Errorf("announce log %+v", b.AnnounceLog)
	}
	// Off by default.
	tr2, _ := newTest(t, nil)
	tr2.UpsertUser(user(1))
	tr2.UpsertTorrent(torrent(1, h, t0))
	tr2.Scrape(&ScrapeRequest{Passkey: pk(1, h), InfoHashes: []InfoHash{h}}, &out)
	mustOK(t, tr2, ann(1, h, 1, 10))
	if b := tr2.Drain(); len(b.ScrapeLog)+len(b.AnnounceLog) != 0 {
		t.Error("logs written with logging off")
	}
}
