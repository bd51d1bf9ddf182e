package tracker

// Stats is a snapshot of the engine's size and activity.
type Stats struct {
	Torrents          int // torrents in memory
	TorrentsWithPeers int
	Peers             int // Seeders + Leechers
	Seeders           int
	Leechers          int
	Users             int // loaded users
	LedgerLen         int // rows pending write-back

	AnnouncesOK     uint64 // accepted announces since start
	AnnouncesFailed uint64 // refused announces (any failure reason)
	ScrapesOK       uint64
	ScrapesFailed   uint64
	Expired         uint64 // peers removed by Expire
	CreditCapped    uint64 // announces whose delta was over MaxCreditPerAnnounce (credited nothing for that counter)

	ClientNotAllowed uint64 // announces refused: peer_id not in the allow list (ErrClientNotAllowed)
	ClientDenied     uint64 // announces refused: peer_id in the deny list (ErrClientDenied)

	// Credit rules in force (SetCreditRules): torrents and users with a
	// factor other than 100 %, and freeleech tokens valid when read.
	FactorTorrents, FactorUsers, Tokens int
}

// Stats sums the per-shard counters, which every swarm change keeps exact,
// so it costs 256 × a few atomic loads however many peers there are, plus
// one short ledger lock.
func (t *Tracker) Stats() Stats {
	var st Stats
	for i := range t.shards {
		sh := &t.shards[i]
		st.Torrents += int(sh.torrents.Load())
		st.TorrentsWithPeers += int(sh.withPeers.Load())
		st.Seeders += int(sh.seeders.Load())
		st.Leechers += int(sh.leechers.Load())
		st.AnnouncesOK += sh.announceOK.Load()
		st.AnnouncesFailed += sh.announceFail.Load()
		st.ScrapesOK += sh.scrapeOK.Load()
		st.ScrapesFailed += sh.scrapeFail.Load()
		st.Expired += sh.expired.Load()
	}
	st.Peers = st.Seeders + st.Leechers
	st.Users = int(t.users.count.Load())
	st.LedgerLen = t.LedgerLen()
	st.CreditCapped = t.caps.total.Load()
	st.ClientNotAllowed = t.clientRefused[ruleAllow].Load()
	st.ClientDenied = t.clientRefused[ruleDeny].Load()
	if r := t.credit.Load(); r != nil {
		st.FactorTorrents, st.FactorUsers, st.Tokens = len(r.Torrents), len(r.Users), len(r.Tokens)
	}
	return st
}
