package tracker

import "net/netip"

// InfoHash is a torrent's 20-byte SHA-1 info_hash.
type InfoHash [20]byte

// PeerID is the 20-byte peer_id a client announces.
type PeerID [20]byte

// Event is the announce event parameter.
type Event uint8

// Announce events. EventNone is a regular periodic announce.
const (
	EventNone Event = iota
	EventStarted
	EventCompleted
	EventStopped
	EventPaused // BEP 21 "paused": treated like a regular announce
)

// Announce is one parsed announce request. Frontends reuse values of it, so
// the engine must not keep a reference to Passkey after Announce returns.
type Announce struct {
	Passkey    []byte // the 32 characters from /<passkey>/announce; nil when absent
	InfoHash   InfoHash
	PeerID     PeerID
	Addr       netip.Addr // the client's address as resolved by the frontend; IPv4 unmapped
	Port       uint16
	Uploaded   uint64
	Downloaded uint64
	Left       uint64
	Event      Event
	NumWant    int  // -1 when the client sent none
	WantPeerID bool // dict form without no_peer_id: the result carries peer ids
}

// AnnounceResult is what the engine answers. Frontends keep one per
// connection (or in a pool) and pass it back in, so the slices are reused and
// a warm announce allocates nothing.
type AnnounceResult struct {
	Failure     Failure  // non-empty: the request was refused with this reason
	Complete    int      // seeders
	Incomplete  int      // leechers
	Interval    int      // seconds
	MinInterval int      // seconds
	Peers4      []byte   // 6-byte compact entries (BEP 23)
	Peers6      []byte   // 18-byte compact entries (BEP 7)
	PeerIDs4    []PeerID // parallel to Peers4 when Announce.WantPeerID
	PeerIDs6    []PeerID // parallel to Peers6 when Announce.WantPeerID
}

// Reset empties r for reuse, keeping the slices' capacity.
func (r *AnnounceResult) Reset() {
	*r = AnnounceResult{
		Peers4:   r.Peers4[:0],
		Peers6:   r.Peers6[:0],
		PeerIDs4: r.PeerIDs4[:0],
		PeerIDs6: r.PeerIDs6[:0],
	}
}

// ScrapeRequest is one parsed scrape. An empty InfoHashes asks for a full
// scrape.
type ScrapeRequest struct {
	Passkey    []byte
	InfoHashes []InfoHash
	Addr       netip.Addr
}

// ScrapeFile is one torrent's entry in a scrape answer.
type ScrapeFile struct {
	InfoHash   InfoHash
	Complete   int // seeders
	Downloaded int // completed count
	Incomplete int // leechers
}

// ScrapeResult is what the engine answers to a scrape; reusable like
// AnnounceResult.
type ScrapeResult struct {
	Failure            Failure // non-empty: the request was refused with this reason
	Files              []ScrapeFile
	Full               bool // a full scrape: frontends may gzip it
	MinRequestInterval int  // scrape_interval; 0 = omit the flags dict
}

// Reset empties r for reuse.
func (r *ScrapeResult) Reset() {
	*r = ScrapeResult{Files: r.Files[:0]}
}

// Settings are the tracker-wide values the engine and frontends obey; they
// come from configuration (xbt_config and the operator's layers) and may be
// replaced at any time with SetSettings.
type Settings struct {
	AnnounceInterval  int // seconds; peers expire after 1.5 times this
	AnonymousAnnounce bool
	AnonymousScrape   bool
	AutoRegister      bool
	FullScrape        bool
	GzipScrape        bool
	ScrapeInterval    int
	OfflineMessage    string
	RedirectURL       string
	Secret            string // torrent_pass_private_key
	DefaultNumWant    int
	MaxNumWant        int
	LogAnnounce       bool
	LogScrape         bool
	LogAccess         bool // log_access: the HTTP frontend logs one line per request

	// MaxCreditPerAnnounce caps the uploaded and downloaded delta one
	// announce may credit (bytes; 0 = no cap). A delta over it credits
	// nothing for that counter: no real client moves a TiB between two
	// announces, so such a delta is a lie or a wrapped counter, and one
	// client must not mint exabytes of ratio.
	MaxCreditPerAnnounce uint64

	// UpMulti and DownMulti are the site-wide credit factors (xbt_config
	// up_multi and down_multi, in percent; the zero value is 100 %): a
	// freeleech weekend is DownMulti = Percent(0). They multiply with the
	// torrent's and the user's (CreditRules).
	UpMulti, DownMulti Multiplier
}

// User is a row of xbt_users as the engine needs it.
type User struct {
	UID                uint32
	TorrentPass        string // legacy exact-match passkey; may be empty
	TorrentPassVersion int
	CanLeech           bool
	WaitTime           int // seconds after a torrent's ctime before this user may leech it
	PeersLimit         int // 0 = unlimited
	TorrentsLimit      int // 0 = unlimited
}

// Torrent is a row of xbt_files as the engine needs it.
type Torrent struct {
	Fid       uint32 // 0 for a torrent auto-registered but not yet in the database
	InfoHash  InfoHash
	Ctime     int64  // unix seconds
	Completed uint64 // completed count from the database
}
