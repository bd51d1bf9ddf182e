// Package tracker is the domain and the hot path of xbt-tracker: users,
// torrents, swarms and peers in memory; the announce and scrape rules of an
// XBT-compatible private tracker; and the delta ledger that records what must
// be written back to the database.
//
// It knows nothing of SQL or of any wire protocol. The sync package feeds it
// users, torrents and settings through plain methods and drains its ledger;
// frontends (tracker/httpfront, tracker/udpfront) parse requests into
// Announce and ScrapeRequest values and encode AnnounceResult and
// ScrapeResult. Everything a client can be refused with, by the engine or
// by a frontend's parser, is a Failure declared in failure.go.
package tracker
