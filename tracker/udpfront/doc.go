// Package udpfront is xbt-tracker's UDP frontend: the UDP tracker protocol
// of BEP 15 with the URL data of BEP 41, so that private torrents work over
// UDP with the same passkeys as over HTTP:
//
//	udp://tracker.example:2710/<passkey>/announce
//
// It parses packets into tracker.Announce and tracker.ScrapeRequest, calls
// the same engine as the HTTP frontend (same rules, limits, ledger and XBT
// failure messages) and answers in BEP 15's binary format. It keeps no
// per-client state.
//
// Decisions a client can notice:
//   - Connection ids are a MAC of the client's address, source port and a
//     coarse time window under a random key drawn at start (see connIDs):
//     they cannot be forged, do not work from another address or port, and
//     expire after two to four minutes (Config.ConnIDWindow). A packet with
//     a bad id gets no answer, as in XBT: only a 16-byte connect answer ever
//     goes to an address that has not proved it receives there, so the
//     tracker cannot be used to reflect or amplify traffic.
//   - The passkey is the first path segment of the BEP 41 request string
//     ("/<passkey>/announce"), exactly 32 bytes; the engine verifies it as
//     for HTTP. No URL data, or a path without such a segment, is an
//     anonymous announce: refused with "unregistered torrent pass" unless
//     anonymous_announce is on.
//   - Failures are BEP 15 error packets (action 3) carrying the engine's
//     message, byte for byte XBT's. An unparsable announce or scrape with a
//     valid connection id gets an error packet naming the problem ("invalid
//     event", "invalid left", ...), as over HTTP.
//   - The requester's address is the packet's source address. The announce's
//     IP field is ignored, always (a client behind NAT does not know its
//     address, and honouring it would let anyone place other hosts in a
//     swarm); so is key.
//   - Peers follow the address family of the packet (BEP 15): an IPv4
//     requester gets the swarm's IPv4 peers (6 bytes each), an IPv6
//     requester its IPv6 peers (18 bytes each). The engine samples numwant
//     peers from the whole swarm, so in a swarm of both families a requester
//     may get fewer than numwant.
//   - num_want -1 (any negative value) is the default; event 0 none, 1
//     completed, 2 started, 3 stopped; negative downloaded, left or uploaded
//     are refused.
//   - A scrape is answered in the order asked, repeats repeated and unknown
//     torrents as zeros (BEP 15). It carries no passkey (BEP 15 has no room
//     for one and no client sends options after a scrape), so it is an
//     anonymous scrape: refused with "unregistered torrent pass" unless
//     anonymous_scrape is on. Packets are at most Config.MaxPacket bytes
//     (default 1496: a scrape of 74 hashes).
//   - Packets under 16 bytes, over MaxPacket, with an unknown action, a
//     connect without the protocol id, or from a denied address are dropped
//     without an answer and counted in xbt_udp_errors_total.
package udpfront
