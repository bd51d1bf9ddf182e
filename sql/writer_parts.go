package sql

import (
	"strconv"
	"strings"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// A part is one table's share of a Batch, sorted by the table's key, cut
// into chunks by Write. It builds the statement for rows [lo, hi) and, when
// those rows could not be written, copies them back into a Batch.
type part interface {
	table() string
	len() int
	cols() int       // placeholders per row
	fixedBytes() int // statement text outside the rows (upper bound)
	rowBytes() int   // statement text per row once interpolated (upper bound)
	build(lo, hi int) (string, []any, error)
	restore(dst *tracker.Batch, lo, hi int)
	// key is row i's primary key (cheap: no formatting).
	key(i int) rowKey
	// row describes row i for the quarantine and the log: its key, the key
	// as text and the bytes it carries.
	row(i int) rowInfo
}

// clamper is a part whose sums can overflow their columns: buildClamped
// builds the same statement with every sum saturating at the column's
// maximum (LEAST), used for rows whose plain sum the server refused as out
// of range. The plain statement is the common case and stays the cheapest.
type clamper interface {
	buildClamped(lo, hi int) (string, []any, error)
}

// rowInfo identifies one row of a part.
type rowInfo struct {
	key                  rowKey
	text                 string // the key as an operator reads it, e.g. "uid=7"
	uploaded, downloaded uint64
}

// rowKind says which table and key type a rowKey is of.
type rowKind uint8

const (
	kindUser rowKind = iota + 1
	kindFile
	kindFileUser
	kindNewFile
	kindLog // log rows have no key; each is its own
)

// rowKey is a row's primary key in the writer's terms, so that newer deltas
// of a quarantined row can be routed to it (Writer.divert).
type rowKey struct {
	kind rowKind
	a, b uint32
	ih   tracker.InfoHash
}

// Upper bounds of an interpolated value's text: a 64-bit integer is at most
// 20 digits; go-sql-driver sends []byte as _binary'...' with each byte
// possibly escaped to two characters.
const (
	numBytes = 20 + 2 // value and ", "
	binBytes = 9 + 2*20 + 2
)

// plan cuts b into parts in write order: new torrents first (so the next
// reload sees their fids soon), then files, users, files_users, logs (the
// completion log last). A log whose table is absent is dropped.
func (w *Writer) plan(b *tracker.Batch) []part {
	e := w.env
	var parts []part
	add := func(p part) {
		if p.len() > 0 {
			parts = append(parts, p)
		}
	}
	if b == nil {
		return nil
	}
	add(newRegisterPart(e, b.NewFiles))
	add(newFilePart(e, b.Files))
	add(newUserPart(e, b.Users))
	add(newFileUserPart(e, fileUserCols{w.s.HasAnnounced, w.s.HasTimeSpent, w.s.HasLeechTime}, b.FileUsers))
	if w.s.HasAnnounceLog && len(e.announceCols) > 0 {
		add(newAnnounceLogPart(e, b.AnnounceLog))
	}
	if w.s.HasScrapeLog && len(e.scrapeCols) > 0 {
		add(newScrapeLogPart(e, b.ScrapeLog))
	}
	if w.s.HasSnatched && len(e.snatchedCols) > 0 {
		add(newSnatchedPart(e, b.Snatches))
	}
	return parts
}

// remainder is what was not written when rows [lo:] of parts[pi] failed:
// those rows and every later part.
func remainder(parts []part, pi, lo int) *tracker.Batch {
	dst := &tracker.Batch{}
	fill(dst)
	for i := pi; i < len(parts); i++ {
		from := 0
		if i == pi {
			from = lo
		}
		parts[i].restore(dst, from, parts[i].len())
	}
	return dst
}

// fill gives b the maps it lacks, so a remainder can be used like a Batch
// from tracker.Drain.
func fill(b *tracker.Batch) {
	if b.Users == nil {
		b.Users = make(map[uint32]tracker.UserDelta)
	}
	if b.Files == nil {
		b.Files = make(map[uint32]tracker.FileDelta)
	}
	if b.FileUsers == nil {
		b.FileUsers = make(map[tracker.FileUserKey]tracker.FileUserDelta)
	}
	if b.NewFiles == nil {
		b.NewFiles = make(map[tracker.InfoHash]int64)
	}
}

// The users, files and files_users statements carry only integers (ids,
// counters, times), so their values are written into the statement text
// (strconv, nothing a value could escape from) rather than passed as
// placeholders: with interpolateParams=true the driver would send the same
// text, but only after every value had been boxed into an []any and the
// text copied once more. That was ~400 bytes of garbage per row, several
// garbage collections per flush on the tracker's one core, each a pause
// for the announces (docs/BENCHMARKS.md, "Latency during a flush").

// appendTuple appends "(v1, v2, ...)".
func appendTuple(b []byte, vals ...uint64) []byte {
	b = append(b, '(')
	for i, v := range vals {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = strconv.AppendUint(b, v, 10)
	}
	return append(b, ')')
}

// appendUnionRow appends one row of the derived table "SELECT v1 AS a1, v2
// AS a2 UNION ALL SELECT v1, v2 ..." (the aliases on the first row only).
func appendUnionRow(b []byte, first bool, aliases []string, vals ...uint64) []byte {
	if first {
		b = append(b, "SELECT "...)
	} else {
		b = append(b, " UNION ALL SELECT "...)
	}
	for i, v := range vals {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = strconv.AppendUint(b, v, 10)
		if first {
			b = append(b, " AS "...)
			b = append(b, aliases[i]...)
		}
	}
	return b
}

// unixTime is a stored time as the unsigned value the statement carries
// (the tracker's times are never before 1970).
func unixTime(t int64) uint64 { return uint64(max(t, 0)) }

// insertRows returns "INSERT[ IGNORE] INTO table (cols) VALUES (?, ?),
// (?, ?) ..." for n rows, then suffix.
//
// Multi-row INSERTs are written by hand rather than with squirrel: its
// immutable builder copies state on every Values call, so a 1,000-row
// statement took 10 ms and 1.6 MB to build (BenchmarkWriterBuild), against
// about 0.3 ms here (0.09 ms now that the integer-only parts write their
// values inline, see appendTuple). Values that are not integers travel as
// placeholders and the identifiers come from the checked Schema, exactly as
// with squirrel.
func insertRows(ignore bool, table string, cols []string, n int, suffix string) string {
	var sb strings.Builder
	row := "(?" + strings.Repeat(", ?", len(cols)-1) + ")"
	sb.Grow(64 + len(suffix) + n*(len(row)+2))
	sb.WriteString("INSERT ")
	if ignore {
		sb.WriteString("IGNORE ")
	}
	sb.WriteString("INTO ")
	sb.WriteString(table)
	sb.WriteString(" (")
	sb.WriteString(strings.Join(cols, ", "))
	sb.WriteString(") VALUES ")
	for i := 0; i < n; i++ {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(row)
	}
	if suffix != "" {
		sb.WriteString(" ")
		sb.WriteString(suffix)
	}
	return sb.String()
}

func quoteAll(cols []string) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = "`" + c + "`"
	}
	return out
}
