// Package statefile reads and writes the tracker's state file: the swarms
// saved at a clean stop and loaded at the next start (a warm restart; see
// sync/state.go for when a file is written and when one is believed).
//
// The format (version 1), all integers little-endian unless said otherwise:
//
//	magic        8 bytes  "XBTSTATE"
//	version      uint32   1
//	header size  uint32   n
//	header       n bytes:
//	    saved at       int64   unix nanoseconds
//	    secret hash    32 bytes  SecretHash(torrent_pass_private_key), never the secret
//	    writer         16 bytes  the commit marker's writer id (xbt_tracker_writers.writer)
//	    seq            uint64    that writer's last committed sequence number at the final flush
//	    database       uint16 length + bytes: DATABASE()
//	    server         uint16 length + bytes: @@server_uuid, or @@hostname:@@port
//	records, one per torrent with peers:
//	    'T', info_hash (20 bytes), fid uint32, peer count uvarint, then per peer:
//	        flags     byte     1: IPv6, 2: completion counted
//	        uid       uvarint
//	        age       varint   saved at (seconds) - last seen (seconds)
//	        uploaded, downloaded, left   uvarint each
//	        peer id   20 bytes
//	        port      uint16 big-endian
//	        address   4 bytes (IPv4) or 16 (IPv6)
//	'E'
//	torrents     uint64
//	peers        uint64
//	checksum     uint32   CRC-32C (Castagnoli) of every byte before it
//
// A file is written to a temporary file in the same directory, synced, and
// renamed over the old one (then the directory is synced), so a reader sees
// the old file or the new one, never a part. Open checks the magic, the
// version, the checksum and the whole structure before it hands out a
// single record, so a corrupt, truncated or foreign-format file is refused
// as a whole.
//
// Files: statefile.go the format's constants, the header and its errors;
// write.go the Writer; read.go the Reader and its verification; check.go
// the header's checks against the running tracker.
package statefile

import (
	"crypto/sha256"
	"fmt"
	"hash/crc32"
	"time"
)

// Version is the format version this package writes and reads.
const Version = 1

var magic = [8]byte{'X', 'B', 'T', 'S', 'T', 'A', 'T', 'E'}

const (
	tagTorrent byte = 'T'
	tagEnd     byte = 'E'

	peerV6      byte = 1
	peerCounted byte = 2

	prefixLen  = 16        // magic, version, header size
	trailerLen = 8 + 8 + 4 // torrents, peers, checksum
	maxHeader  = 1 << 16
	// maxHeaderString is the longest Database or Server the writer stores
	// (two of them and the fixed fields stay well below maxHeader).
	maxHeaderString = 1024
	// minPeerLen is the smallest encoded peer: flags, five one-byte
	// varints (uid, age, uploaded, downloaded, left), peer id, port, IPv4.
	minPeerLen = 1 + 5 + 20 + 2 + 4
	bufSize    = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header is what a state file says about itself: when it was saved and
// what it belongs to. Torrents and Peers come from the file's trailer (zero
// in the Header given to Create).
type Header struct {
	SavedAt    time.Time
	SecretHash [32]byte
	Writer     [16]byte // commit marker: the writer id
	Seq        uint64   // commit marker: its last committed sequence number
	Database   string
	Server     string

	Torrents, Peers uint64
}

// SecretHash identifies a torrent_pass_private_key without revealing it: a
// domain-separated SHA-256, so a state file never holds the secret.
func SecretHash(secret string) [32]byte {
	return sha256.Sum256([]byte("xbt-tracker state file secret\x00" + secret))
}

// FormatError is a file that is not a valid state file of this version:
// corrupt, truncated, another format or another version.
type FormatError struct{ Reason string }

func (e *FormatError) Error() string { return "state file: " + e.Reason }

func formatErr(format string, args ...any) error {
	return &FormatError{Reason: fmt.Sprintf(format, args...)}
}
