package tracker

import (
	"bytes"
	"slices"
)

// Scrape answers a scrape into out (which it resets first).
//
// Passkeys are per user and per torrent, so a scrape's passkey is checked
// against the torrents it asks about: for one hash it must verify against
// that hash (XBT's rule); for several it is accepted if its uid is loaded
// and it verifies against any of them; for a full scrape (no hash) only a
// legacy torrent_pass can match, as in XBT. Without a valid user the scrape
// is refused unless anonymous_scrape is on.
//
// out.Files holds the requested torrents that exist, unknown ones omitted,
// sorted by info hash without duplicates (the order a bencoded dictionary
// needs). An empty InfoHashes is a full scrape: every torrent with at least
// one peer when full_scrape is on (out.Full set), nothing otherwise.
func (t *Tracker) Scrape(r *ScrapeRequest, out *ScrapeResult) {
	out.Reset()
	c := t.cfg.Load()
	sh := &t.shards[0]
	if len(r.InfoHashes) > 0 {
		sh = t.shardFor(&r.InfoHashes[0])
	}
	if reason := t.scrape(c, r, out); reason != "" {
		out.Failure = reason
		sh.scrapeFail.Add(1)
		return
	}
	out.MinRequestInterval = c.s.ScrapeInterval
	sh.scrapeOK.Add(1)
}

func (t *Tracker) scrape(c *config, r *ScrapeRequest, out *ScrapeResult) Failure {
	if t.Denied(r.Addr) {
		return ErrHostDenied
	}
	u := t.resolveUser(c, r.Passkey, r.InfoHashes)
	if c.s.LogScrape {
		e := ScrapeLogEntry{Addr: r.Addr, Mtime: t.now().Unix()}
		if u != nil {
			e.UID = u.UID
		}
		if len(r.InfoHashes) > 0 {
			e.InfoHash = r.InfoHashes[0]
		}
		t.ledger.logScrape(&e)
	}
	if u == nil && !c.s.AnonymousScrape {
		return ErrUnregisteredTorrentPass
	}
	if len(r.InfoHashes) == 0 {
		if c.s.FullScrape {
			out.Full = true
			t.fullScrape(out)
		}
		return ""
	}
	resolves := 0
	for i := range r.InfoHashes {
		ih := &r.InfoHashes[i]
		s := t.shardFor(ih).find(ih)
		if s == nil && resolves < maxResolvesPerScrape {
			resolves++
			if t.missTorrent(ih) {
				s = t.shardFor(ih).find(ih)
			}
		}
		if s == nil {
			continue
		}
		s.mu.Lock()
		if !s.removed {
			out.Files = append(out.Files, t.scrapeFile(s))
		}
		s.mu.Unlock()
	}
	if len(out.Files) > 1 {
		slices.SortFunc(out.Files, compareFiles)
		out.Files = slices.CompactFunc(out.Files, sameFile)
	}
	return ""
}

// fullScrape appends every torrent with peers, one shard at a time.
func (t *Tracker) fullScrape(out *ScrapeResult) {
	for si := range t.shards {
		sh := &t.shards[si]
		sh.mu.RLock()
		for _, s := range sh.m {
			s.mu.Lock()
			if f := t.scrapeFile(s); f.Complete+f.Incomplete > 0 {
				out.Files = append(out.Files, f)
			}
			s.mu.Unlock()
		}
		sh.mu.RUnlock()
	}
	slices.SortFunc(out.Files, compareFiles)
}

// scrapeFile is s's scrape entry (s locked): its peers here or, in a
// cluster while it has none here, the counts its owner wrote to the
// database (StoreCounts).
func (t *Tracker) scrapeFile(s *swarm) ScrapeFile {
	f := ScrapeFile{
		InfoHash:   s.ih,
		Complete:   len(s.seeders),
		Downloaded: int(s.completed),
		Incomplete: len(s.leechers),
	}
	if st := s.stored; st != nil && s.len() == 0 && st.pass >= t.storedPass.Load() {
		f.Complete, f.Incomplete = int(st.seeders), int(st.leechers)
	}
	return f
}

func compareFiles(a, b ScrapeFile) int { return bytes.Compare(a.InfoHash[:], b.InfoHash[:]) }
func sameFile(a, b ScrapeFile) bool    { return a.InfoHash == b.InfoHash }
