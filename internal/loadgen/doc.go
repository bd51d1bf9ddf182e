// Package loadgen is the load generator behind `xbt-tracker bench`: a
// simulated population of BitTorrent clients of a private tracker (many
// users, real derived passkeys, Zipf-skewed torrent popularity, seeders and
// leechers whose cumulative uploaded/downloaded/left counters advance like a
// real client's, started/periodic/completed/stopped events and a share of
// scrapes) driven against a tracker over HTTP (hand-written client on
// net.Conn, with or without keep-alive) or UDP (BEP 15 with BEP 41 URL
// data), reporting throughput, latency percentiles, errors by kind and the
// target's resident memory.
//
// Traffic goes only to loopback addresses (127.0.0.0/8, ::1) unless
// Config.AllowRemote is set.
package loadgen
