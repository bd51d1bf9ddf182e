package sql

import (
	"fmt"
	"net/netip"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// xbtEvent maps the engine's events to the numbers XBT stores in
// xbt_announce_log.event (tracker_input_t: none, completed, started,
// stopped); paused is a regular announce there.
func xbtEvent(e tracker.Event) int {
	switch e {
	case tracker.EventCompleted:
		return 1
	case tracker.EventStarted:
		return 2
	case tracker.EventStopped:
		return 3
	}
	return 0
}

// addrValues returns the ipa and ipv6 column values for a: ipa is the IPv4
// address as an unsigned 32-bit integer (0 for IPv6); ipv6 is the 16-byte
// address for IPv6 and empty for IPv4, except in a table without ipa (XBT
// HEAD's), where IPv4 goes into ipv6 as its 4 bytes, as XBT writes it.
func addrValues(a netip.Addr, hasIPA bool) (ipa uint32, ipv6 []byte) {
	if !a.IsValid() {
		return 0, []byte{}
	}
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		ipa = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		if hasIPA {
			return ipa, []byte{}
		}
		return ipa, b[:]
	}
	b := a.As16()
	return 0, b[:]
}

// logPart is a log table's share of a Batch (xbt_announce_log,
// xbt_scrape_log): a plain multi-row INSERT of the entries, in the order
// they came, into the columns the table has (writer_env.go). The two logs
// differ only in their entries, their columns and how an entry gives its
// values, so one part serves both.
type logPart[E any] struct {
	name    string   // the table as configured (table())
	quoted  string   // the table, quoted
	columns []string // the columns written, in order
	fixed   int      // fixedBytes
	binCols int      // binary columns per row, for rowBytes
	rows    []E
	// values sets vals[j] to entry r's value for columns[j].
	values func(r *E, vals []any)
	// back appends rows to the Batch's log (restore).
	back func(dst *tracker.Batch, rows []E)
	// text is an entry as an operator reads it (row).
	text func(r *E) string
}

func (p *logPart[E]) table() string   { return p.name }
func (p *logPart[E]) len() int        { return len(p.rows) }
func (p *logPart[E]) cols() int       { return len(p.columns) }
func (p *logPart[E]) fixedBytes() int { return p.fixed }
func (p *logPart[E]) rowBytes() int   { return 4 + p.binCols*binBytes + p.cols()*numBytes }

func (p *logPart[E]) build(lo, hi int) (string, []any, error) {
	nc := len(p.columns)
	all := make([]any, (hi-lo)*nc)
	for i := range p.rows[lo:hi] {
		p.values(&p.rows[lo+i], all[i*nc:(i+1)*nc:(i+1)*nc])
	}
	return insertRows(false, p.quoted, quoteAll(p.columns), hi-lo, ""), all, nil
}

func (p *logPart[E]) restore(dst *tracker.Batch, lo, hi int) { p.back(dst, p.rows[lo:hi]) }

func (p *logPart[E]) key(int) rowKey { return rowKey{kind: kindLog} }

func (p *logPart[E]) row(i int) rowInfo { return rowInfo{key: p.key(i), text: p.text(&p.rows[i])} }

// logText is a log entry as an operator reads it.
func logText(uid uint32, ih tracker.InfoHash, mtime int64) string {
	return fmt.Sprintf("uid=%d info_hash=%x mtime=%d", uid, ih, mtime)
}

// newAnnounceLogPart is the announce log's part.
func newAnnounceLogPart(e *writerEnv, rows []tracker.AnnounceLogEntry) *logPart[tracker.AnnounceLogEntry] {
	return &logPart[tracker.AnnounceLogEntry]{
		name: e.names.AnnounceLog, quoted: e.announceLog, columns: e.announceCols,
		fixed: 512, binCols: 4, rows: rows,
		values: func(r *tracker.AnnounceLogEntry, vals []any) {
			ipa, ipv6 := addrValues(r.Addr, e.announceIPA)
			for j, c := range e.announceCols {
				switch c {
				case "ipa":
					vals[j] = ipa
				case "ipv6":
					vals[j] = ipv6
				case "port":
					vals[j] = r.Port
				case "event":
					vals[j] = xbtEvent(r.Event)
				case "info_hash":
					vals[j] = r.InfoHash[:]
				case "peer_id":
					vals[j] = r.PeerID[:]
				case "downloaded":
					vals[j] = r.Downloaded
				case "left0":
					vals[j] = r.Left
				case "uploaded":
					vals[j] = r.Uploaded
				case "uid":
					vals[j] = r.UID
				case "mtime":
					vals[j] = r.Mtime
				}
			}
		},
		back: func(dst *tracker.Batch, rows []tracker.AnnounceLogEntry) {
			dst.AnnounceLog = append(dst.AnnounceLog, rows...)
		},
		text: func(r *tracker.AnnounceLogEntry) string { return logText(r.UID, r.InfoHash, r.Mtime) },
	}
}

// newScrapeLogPart is the scrape log's part.
func newScrapeLogPart(e *writerEnv, rows []tracker.ScrapeLogEntry) *logPart[tracker.ScrapeLogEntry] {
	return &logPart[tracker.ScrapeLogEntry]{
		name: e.names.ScrapeLog, quoted: e.scrapeLog, columns: e.scrapeCols,
		fixed: 256, binCols: 2, rows: rows,
		values: func(r *tracker.ScrapeLogEntry, vals []any) {
			ipa, ipv6 := addrValues(r.Addr, e.scrapeIPA)
			for j, c := range e.scrapeCols {
				switch c {
				case "ipa":
					vals[j] = ipa
				case "ipv6":
					vals[j] = ipv6
				case "info_hash":
					vals[j] = r.InfoHash[:]
				case "uid":
					vals[j] = r.UID
				case "mtime":
					vals[j] = r.Mtime
				}
			}
		},
		back: func(dst *tracker.Batch, rows []tracker.ScrapeLogEntry) {
			dst.ScrapeLog = append(dst.ScrapeLog, rows...)
		},
		text: func(r *tracker.ScrapeLogEntry) string { return logText(r.UID, r.InfoHash, r.Mtime) },
	}
}

// snatchedIP is the completing peer's address as xbt_snatched's IP column
// stores it: the textual address (IPv4 dotted, IPv6 as netip prints it),
// or an empty string when it does not fit the column (width, 0 = no limit):
// Gazelle's varchar(15) holds every IPv4 address but not most IPv6 ones,
// and a value too long must never fail the row (strict mode refuses it).
func snatchedIP(a netip.Addr, width int) string {
	if !a.IsValid() {
		return ""
	}
	s := a.Unmap().String()
	if width > 0 && len(s) > width {
		return ""
	}
	return s
}

// newSnatchedPart is the completion log's part (xbt_snatched): one row per
// completion, in the columns the table has of uid, tstamp, fid and IP.
func newSnatchedPart(e *writerEnv, rows []tracker.SnatchEntry) *logPart[tracker.SnatchEntry] {
	return &logPart[tracker.SnatchEntry]{
		name: e.names.Snatched, quoted: e.snatched, columns: e.snatchedCols,
		fixed: 256, binCols: 1, rows: rows,
		values: func(r *tracker.SnatchEntry, vals []any) {
			for j, c := range e.snatchedCols {
				switch c {
				case "uid":
					vals[j] = r.UID
				case "tstamp":
					vals[j] = r.Mtime
				case "fid":
					vals[j] = r.Fid
				case "ip":
					vals[j] = snatchedIP(r.Addr, e.snatchedIPW)
				}
			}
		},
		back: func(dst *tracker.Batch, rows []tracker.SnatchEntry) {
			dst.Snatches = append(dst.Snatches, rows...)
		},
		text: func(r *tracker.SnatchEntry) string {
			return fmt.Sprintf("uid=%d fid=%d tstamp=%d", r.UID, r.Fid, r.Mtime)
		},
	}
}
