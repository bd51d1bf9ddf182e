package tracker

// Failure is a reason a request is refused, as the client is told it: the
// "failure reason" of an HTTP answer, the message of a UDP error packet.
// Every text a client can be told is declared here, once, so the engine
// and both frontends word it alike; catalogs, users and client software
// search for these strings, so their wording never changes. A Failure is
// an error, so the request parsers return one directly (a constant
// Failure held in an error does not allocate).
type Failure string

// Error returns f's text.
func (f Failure) Error() string { return string(f) }

// The engine's refusals, in the order XBT Tracker checks them and worded as
// XBT words them (offline_message, which comes first, is the operator's
// own text: Failure(Settings.OfflineMessage)).
const (
	ErrUnregisteredTorrentPass Failure = "unregistered torrent pass"
	ErrUnregisteredTorrent     Failure = "unregistered torrent"
	ErrCanNotLeech             Failure = "access denied, leeching forbidden, you are only allowed to seed"
	ErrWaitTime                Failure = "access denied, wait time in effect"
	ErrPeersLimitReached       Failure = "access denied, peers limit reached"
	ErrTorrentsLimitReached    Failure = "access denied, torrents limit reached"
)

// ErrHostDenied refuses a client whose address is in the deny list. The
// engine checks it before anything else; a frontend never sends it to the
// socket's own address (XBT answers a banned host nothing), only to a
// client a trusted proxy named.
const ErrHostDenied Failure = "access denied, host banned"

// Refusals by the client rules (ClientRules), checked right after the host
// deny list and offline_message. Each names the rule and its table, so a
// user can tell which client to use and an operator where to look.
const (
	ErrClientNotAllowed Failure = "access denied, client not in the allow list (xbt_client_whitelist)"
	ErrClientDenied     Failure = "access denied, client banned (xbt_deny_from_clients)"
)

// Refusals of a request that cannot be parsed, by either frontend. Each
// names the parameter at fault.
const (
	ErrMissingInfoHash   Failure = "missing info_hash"
	ErrInvalidInfoHash   Failure = "invalid info_hash"
	ErrMissingPeerID     Failure = "missing peer_id"
	ErrInvalidPeerID     Failure = "invalid peer_id"
	ErrMissingPort       Failure = "missing port"
	ErrInvalidPort       Failure = "invalid port"
	ErrMissingUploaded   Failure = "missing uploaded"
	ErrInvalidUploaded   Failure = "invalid uploaded"
	ErrMissingDownloaded Failure = "missing downloaded"
	ErrInvalidDownloaded Failure = "invalid downloaded"
	ErrMissingLeft       Failure = "missing left"
	ErrInvalidLeft       Failure = "invalid left"
	ErrInvalidEvent      Failure = "invalid event"
	ErrInvalidNumWant    Failure = "invalid numwant"
)

// Refusals of a UDP announce packet whose layout is broken (BEP 15, BEP 41
// options); sent only to a client with a valid connection id.
const (
	ErrTruncatedAnnounce Failure = "invalid announce: truncated"
	ErrMalformedOptions  Failure = "invalid announce: malformed options"
)
