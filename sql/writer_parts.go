package sql

import (
	"bytes"
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	sq "github.com/Masterminds/squirrel"

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
// reload sees their fids soon), then files, users, files_users, logs.
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
	add(newFileUserPart(e, w.s.HasAnnounced, b.FileUsers))
	if w.s.HasAnnounceLog && len(e.announceCols) > 0 {
		add(&announceLogPart{e: e, rows: b.AnnounceLog})
	}
	if w.s.HasScrapeLog && len(e.scrapeCols) > 0 {
		add(&scrapeLogPart{e: e, rows: b.ScrapeLog})
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

// userPart: xbt_users downloaded/uploaded, summed.
//
// Written as UPDATE ... JOIN (derived rows), never INSERT ... ON DUPLICATE
// KEY UPDATE: the upsert XBT uses would re-create a user the catalog has
// deleted (a row with only uid and totals) the moment one of their peers
// announces again, and the catalog would see a ghost account. The join
// updates only rows that exist; deltas for deleted uids are dropped (counted
// in WriterStats.UsersDropped) and not retried. STRAIGHT_JOIN makes the
// server walk the derived rows (sorted by uid) and look each user up by
// primary key, so row locks are taken in uid order and only on those rows.
// squirrel has no UPDATE ... JOIN (derived table), hence the hand-built
// text: values are integers written with strconv (appendUnionRow),
// identifiers come from the checked Schema.
type userPart struct {
	e    *writerEnv
	rows []userRow
}

type userRow struct {
	uid uint32
	d   tracker.UserDelta
}

func newUserPart(e *writerEnv, m map[uint32]tracker.UserDelta) *userPart {
	p := &userPart{e: e, rows: make([]userRow, 0, len(m))}
	for uid, d := range m {
		if d.Uploaded|d.Downloaded == 0 {
			continue // nothing to add; writing it would only take a lock
		}
		p.rows = append(p.rows, userRow{uid, d})
	}
	slices.SortFunc(p.rows, func(a, b userRow) int { return cmp.Compare(a.uid, b.uid) })
	return p
}

func (p *userPart) table() string   { return p.e.names.Users }
func (p *userPart) len() int        { return len(p.rows) }
func (p *userPart) cols() int       { return 3 }
func (p *userPart) fixedBytes() int { return 256 }
func (p *userPart) rowBytes() int   { return 20 + 3*numBytes }

func (p *userPart) build(lo, hi int) (string, []any, error) {
	b := make([]byte, 0, 200+(hi-lo)*(3*numBytes+18))
	b = append(b, "UPDATE ("...)
	aliases := []string{"k", "d", "u"}
	for i, r := range p.rows[lo:hi] {
		b = appendUnionRow(b, i == 0, aliases, uint64(r.uid), r.d.Downloaded, r.d.Uploaded)
	}
	b = fmt.Appendf(b, ") v STRAIGHT_JOIN %s t ON t.%s = v.k SET t.`downloaded` = t.`downloaded` + v.d, t.`uploaded` = t.`uploaded` + v.u",
		p.e.users, p.e.uid)
	return string(b), nil, nil
}

func (p *userPart) buildClamped(lo, hi int) (string, []any, error) {
	b := make([]byte, 0, 300+(hi-lo)*(3*numBytes+18))
	b = append(b, "UPDATE ("...)
	aliases := []string{"k", "d", "u"}
	for i, r := range p.rows[lo:hi] {
		b = appendUnionRow(b, i == 0, aliases, uint64(r.uid), min(r.d.Downloaded, p.e.maxUsersDown), min(r.d.Uploaded, p.e.maxUsersUp))
	}
	b = fmt.Appendf(b, ") v STRAIGHT_JOIN %s t ON t.%s = v.k SET t.`downloaded` = t.`downloaded` + LEAST(v.d, %d - t.`downloaded`), t.`uploaded` = t.`uploaded` + LEAST(v.u, %d - t.`uploaded`)",
		p.e.users, p.e.uid, p.e.maxUsersDown, p.e.maxUsersUp)
	return string(b), nil, nil
}

func (p *userPart) restore(dst *tracker.Batch, lo, hi int) {
	for _, r := range p.rows[lo:hi] {
		dst.Users[r.uid] = r.d
	}
}

func (p *userPart) key(i int) rowKey { return rowKey{kind: kindUser, a: p.rows[i].uid} }

func (p *userPart) row(i int) rowInfo {
	r := &p.rows[i]
	return rowInfo{p.key(i), fmt.Sprintf("uid=%d", r.uid), r.d.Uploaded, r.d.Downloaded}
}

// filePart: xbt_files completed summed; leechers, seeders, mtime
// overwritten. UPDATE ... JOIN for the same reason as users: an upsert keyed
// by fid would create a row (without info_hash) for a torrent the tracker
// itself deleted after the catalog flagged it.
type filePart struct {
	e    *writerEnv
	rows []fileRow
}

type fileRow struct {
	fid uint32
	d   tracker.FileDelta
}

func newFilePart(e *writerEnv, m map[uint32]tracker.FileDelta) *filePart {
	p := &filePart{e: e, rows: make([]fileRow, 0, len(m))}
	for fid, d := range m {
		if fid == 0 {
			continue // an auto-registered torrent without a row yet
		}
		p.rows = append(p.rows, fileRow{fid, d})
	}
	slices.SortFunc(p.rows, func(a, b fileRow) int { return cmp.Compare(a.fid, b.fid) })
	return p
}

func (p *filePart) table() string   { return p.e.names.Files }
func (p *filePart) len() int        { return len(p.rows) }
func (p *filePart) cols() int       { return 5 }
func (p *filePart) fixedBytes() int { return 320 }
func (p *filePart) rowBytes() int   { return 20 + 5*numBytes }

func (p *filePart) build(lo, hi int) (string, []any, error) {
	b := make([]byte, 0, 300+(hi-lo)*(5*numBytes+18))
	b = append(b, "UPDATE ("...)
	aliases := []string{"k", "c", "l", "s", "m"}
	for i, r := range p.rows[lo:hi] {
		b = appendUnionRow(b, i == 0, aliases, uint64(r.fid), r.d.Completed,
			uint64(max(r.d.Leechers, 0)), uint64(max(r.d.Seeders, 0)), unixTime(r.d.Mtime))
	}
	b = fmt.Appendf(b, ") v STRAIGHT_JOIN %s t ON t.%s = v.k SET t.%s = t.%s + v.c, t.%s = v.l, t.%s = v.s, t.`mtime` = v.m",
		p.e.files, p.e.fid, p.e.completed, p.e.completed, p.e.leechers, p.e.seeders)
	return string(b), nil, nil
}

func (p *filePart) buildClamped(lo, hi int) (string, []any, error) {
	b := make([]byte, 0, 400+(hi-lo)*(5*numBytes+18))
	b = append(b, "UPDATE ("...)
	aliases := []string{"k", "c", "l", "s", "m"}
	for i, r := range p.rows[lo:hi] {
		b = appendUnionRow(b, i == 0, aliases, uint64(r.fid), min(r.d.Completed, p.e.maxFilesCompleted),
			uint64(max(r.d.Leechers, 0)), uint64(max(r.d.Seeders, 0)), unixTime(r.d.Mtime))
	}
	b = fmt.Appendf(b, ") v STRAIGHT_JOIN %s t ON t.%s = v.k SET t.%s = t.%s + LEAST(v.c, %d - t.%s), t.%s = v.l, t.%s = v.s, t.`mtime` = v.m",
		p.e.files, p.e.fid, p.e.completed, p.e.completed, p.e.maxFilesCompleted, p.e.completed, p.e.leechers, p.e.seeders)
	return string(b), nil, nil
}

func (p *filePart) restore(dst *tracker.Batch, lo, hi int) {
	for _, r := range p.rows[lo:hi] {
		dst.Files[r.fid] = r.d
	}
}

func (p *filePart) key(i int) rowKey { return rowKey{kind: kindFile, a: p.rows[i].fid} }

func (p *filePart) row(i int) rowInfo {
	r := &p.rows[i]
	return rowInfo{key: p.key(i), text: fmt.Sprintf("fid=%d", r.fid)}
}

// fileUserPart: xbt_files_users, INSERT ... ON DUPLICATE KEY UPDATE like
// XBT: the row is created on a user's first announce of a torrent.
// announced, completed, downloaded, uploaded are summed; active, left, mtime
// overwritten. VALUES() in the update clause is the form MariaDB and MySQL 8
// both accept (MySQL's row alias is rejected by MariaDB).
type fileUserPart struct {
	e         *writerEnv
	announced bool
	rows      []fileUserRow
}

type fileUserRow struct {
	k tracker.FileUserKey
	d tracker.FileUserDelta
}

func newFileUserPart(e *writerEnv, announced bool, m map[tracker.FileUserKey]tracker.FileUserDelta) *fileUserPart {
	p := &fileUserPart{e: e, announced: announced, rows: make([]fileUserRow, 0, len(m))}
	for k, d := range m {
		if k.Fid == 0 {
			continue // torrent without a row yet: nothing to key it by
		}
		p.rows = append(p.rows, fileUserRow{k, d})
	}
	slices.SortFunc(p.rows, func(a, b fileUserRow) int {
		if c := cmp.Compare(a.k.Fid, b.k.Fid); c != 0 {
			return c
		}
		return cmp.Compare(a.k.UID, b.k.UID)
	})
	return p
}

func (p *fileUserPart) table() string { return p.e.names.FilesUsers }
func (p *fileUserPart) len() int      { return len(p.rows) }
func (p *fileUserPart) cols() int {
	if p.announced {
		return 9
	}
	return 8
}
func (p *fileUserPart) fixedBytes() int { return 640 }
func (p *fileUserPart) rowBytes() int   { return 4 + p.cols()*numBytes }

func (p *fileUserPart) build(lo, hi int) (string, []any, error) { return p.buildWith(lo, hi, false) }

func (p *fileUserPart) buildClamped(lo, hi int) (string, []any, error) {
	return p.buildWith(lo, hi, true)
}

// buildWith builds the upsert; clamp makes every sum saturate at its
// column's maximum, in the inserted values and in the update clause.
func (p *fileUserPart) buildWith(lo, hi int, clamp bool) (string, []any, error) {
	e := p.e
	// sum is the update clause's "col = col + VALUES(col)", saturating at
	// limit when clamping.
	sum := func(col string, limit uint64) string {
		if clamp {
			return fmt.Sprintf("`%s` = `%s` + LEAST(VALUES(`%s`), %d - `%s`), ", col, col, col, limit, col)
		}
		return "`" + col + "` = `" + col + "` + VALUES(`" + col + "`), "
	}
	capped := func(v, limit uint64) uint64 {
		if clamp {
			return min(v, limit)
		}
		return v
	}
	cols := []string{e.fuFid, "`uid`", "`active`"}
	upd := "`active` = VALUES(`active`), "
	if p.announced {
		cols = append(cols, "`announced`")
		upd += sum("announced", e.maxFUAnnounced)
	}
	cols = append(cols, "`completed`", "`downloaded`", "`left`", "`uploaded`", "`mtime`")
	upd += sum("completed", e.maxFUCompleted) + sum("downloaded", e.maxFUDown) +
		"`left` = VALUES(`left`), " + sum("uploaded", e.maxFUUp) + "`mtime` = VALUES(`mtime`)"
	b := make([]byte, 0, 128+len(upd)+(hi-lo)*(len(cols)*numBytes+4))
	b = append(b, "INSERT INTO "...)
	b = append(b, e.filesUsers...)
	b = append(b, " ("...)
	b = append(b, strings.Join(cols, ", ")...)
	b = append(b, ") VALUES "...)
	for i, r := range p.rows[lo:hi] {
		if i > 0 {
			b = append(b, ", "...)
		}
		var active uint64
		if r.d.Active {
			active = 1
		}
		completed := capped(r.d.Completed, e.maxFUCompleted)
		down, up := capped(r.d.Downloaded, e.maxFUDown), capped(r.d.Uploaded, e.maxFUUp)
		if p.announced {
			b = appendTuple(b, uint64(r.k.Fid), uint64(r.k.UID), active, capped(r.d.Announced, e.maxFUAnnounced),
				completed, down, r.d.Left, up, unixTime(r.d.Mtime))
		} else {
			b = appendTuple(b, uint64(r.k.Fid), uint64(r.k.UID), active,
				completed, down, r.d.Left, up, unixTime(r.d.Mtime))
		}
	}
	b = append(b, " ON DUPLICATE KEY UPDATE "...)
	b = append(b, upd...)
	return string(b), nil, nil
}

func (p *fileUserPart) restore(dst *tracker.Batch, lo, hi int) {
	for _, r := range p.rows[lo:hi] {
		dst.FileUsers[r.k] = r.d
	}
}

func (p *fileUserPart) key(i int) rowKey {
	return rowKey{kind: kindFileUser, a: p.rows[i].k.Fid, b: p.rows[i].k.UID}
}

func (p *fileUserPart) row(i int) rowInfo {
	r := &p.rows[i]
	return rowInfo{p.key(i), fmt.Sprintf("fid=%d uid=%d", r.k.Fid, r.k.UID), r.d.Uploaded, r.d.Downloaded}
}

// registerPart: torrents auto-registered in memory (auto_register=1).
// INSERT IGNORE like XBT: a row the catalog (or another tracker) inserted
// meanwhile is kept as it is. Sorted by info_hash, the unique key.
type registerPart struct {
	e    *writerEnv
	rows []registerRow
}

type registerRow struct {
	ih    tracker.InfoHash
	ctime int64
}

func newRegisterPart(e *writerEnv, m map[tracker.InfoHash]int64) *registerPart {
	p := &registerPart{e: e, rows: make([]registerRow, 0, len(m))}
	for ih, ctime := range m {
		p.rows = append(p.rows, registerRow{ih, ctime})
	}
	slices.SortFunc(p.rows, func(a, b registerRow) int { return bytes.Compare(a.ih[:], b.ih[:]) })
	return p
}

func (p *registerPart) table() string   { return p.e.names.Files }
func (p *registerPart) len() int        { return len(p.rows) }
func (p *registerPart) cols() int       { return 3 }
func (p *registerPart) fixedBytes() int { return 128 }
func (p *registerPart) rowBytes() int   { return 4 + binBytes + 2*numBytes }

func (p *registerPart) build(lo, hi int) (string, []any, error) {
	args := make([]any, 0, 3*(hi-lo))
	for i := lo; i < hi; i++ {
		r := &p.rows[i]
		args = append(args, r.ih[:], r.ctime, r.ctime)
	}
	return insertRows(true, p.e.files, []string{"`info_hash`", "`mtime`", "`ctime`"}, hi-lo, ""), args, nil
}

func (p *registerPart) restore(dst *tracker.Batch, lo, hi int) {
	for _, r := range p.rows[lo:hi] {
		dst.NewFiles[r.ih] = r.ctime
	}
}

func (p *registerPart) key(i int) rowKey { return rowKey{kind: kindNewFile, ih: p.rows[i].ih} }

func (p *registerPart) row(i int) rowInfo {
	r := &p.rows[i]
	return rowInfo{key: p.key(i), text: fmt.Sprintf("info_hash=%x", r.ih)}
}

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

// announceLogPart: plain multi-row INSERT, in the order the announces came.
type announceLogPart struct {
	e    *writerEnv
	rows []tracker.AnnounceLogEntry
}

func (p *announceLogPart) table() string   { return p.e.names.AnnounceLog }
func (p *announceLogPart) len() int        { return len(p.rows) }
func (p *announceLogPart) cols() int       { return len(p.e.announceCols) }
func (p *announceLogPart) fixedBytes() int { return 512 }
func (p *announceLogPart) rowBytes() int   { return 4 + 4*binBytes + p.cols()*numBytes }

func (p *announceLogPart) build(lo, hi int) (string, []any, error) {
	nc := len(p.e.announceCols)
	all := make([]any, (hi-lo)*nc)
	for i := range p.rows[lo:hi] {
		r := &p.rows[lo+i]
		vals := all[i*nc : (i+1)*nc : (i+1)*nc]
		ipa, ipv6 := addrValues(r.Addr, p.e.announceIPA)
		for j, c := range p.e.announceCols {
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
	}
	return insertRows(false, p.e.announceLog, quoteAll(p.e.announceCols), hi-lo, ""), all, nil
}

func (p *announceLogPart) restore(dst *tracker.Batch, lo, hi int) {
	dst.AnnounceLog = append(dst.AnnounceLog, p.rows[lo:hi]...)
}

func (p *announceLogPart) key(int) rowKey { return rowKey{kind: kindLog} }

func (p *announceLogPart) row(i int) rowInfo {
	r := &p.rows[i]
	return rowInfo{key: p.key(i), text: fmt.Sprintf("uid=%d info_hash=%x mtime=%d", r.UID, r.InfoHash, r.Mtime)}
}

// scrapeLogPart: plain multi-row INSERT.
type scrapeLogPart struct {
	e    *writerEnv
	rows []tracker.ScrapeLogEntry
}

func (p *scrapeLogPart) table() string   { return p.e.names.ScrapeLog }
func (p *scrapeLogPart) len() int        { return len(p.rows) }
func (p *scrapeLogPart) cols() int       { return len(p.e.scrapeCols) }
func (p *scrapeLogPart) fixedBytes() int { return 256 }
func (p *scrapeLogPart) rowBytes() int   { return 4 + 2*binBytes + p.cols()*numBytes }

func (p *scrapeLogPart) build(lo, hi int) (string, []any, error) {
	nc := len(p.e.scrapeCols)
	all := make([]any, (hi-lo)*nc)
	for i := range p.rows[lo:hi] {
		r := &p.rows[lo+i]
		vals := all[i*nc : (i+1)*nc : (i+1)*nc]
		ipa, ipv6 := addrValues(r.Addr, p.e.scrapeIPA)
		for j, c := range p.e.scrapeCols {
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
	}
	return insertRows(false, p.e.scrapeLog, quoteAll(p.e.scrapeCols), hi-lo, ""), all, nil
}

func (p *scrapeLogPart) restore(dst *tracker.Batch, lo, hi int) {
	dst.ScrapeLog = append(dst.ScrapeLog, p.rows[lo:hi]...)
}

func (p *scrapeLogPart) key(int) rowKey { return rowKey{kind: kindLog} }

func (p *scrapeLogPart) row(i int) rowInfo {
	r := &p.rows[i]
	return rowInfo{key: p.key(i), text: fmt.Sprintf("uid=%d info_hash=%x mtime=%d", r.UID, r.InfoHash, r.Mtime)}
}

// deletePart: DeleteFiles' chunks. Only rows still flagged deleted go.
type deletePart struct {
	files, fid string
	name       string
	fids       []uint32
}

func newDeletePart(s Schema, fids []uint32) (*deletePart, error) {
	files, err := quoteIdent(s.Files)
	if err != nil {
		return nil, fmt.Errorf("delete from %s: %w", s.Files, err)
	}
	fid, err := quoteIdent(s.FilesFid)
	if err != nil {
		return nil, fmt.Errorf("delete from %s: %w", s.Files, err)
	}
	sorted := slices.Clone(fids)
	slices.Sort(sorted)
	return &deletePart{files: files, fid: fid, name: s.Files, fids: slices.Compact(sorted)}, nil
}

func (p *deletePart) table() string   { return p.name }
func (p *deletePart) len() int        { return len(p.fids) }
func (p *deletePart) cols() int       { return 1 }
func (p *deletePart) fixedBytes() int { return 128 }
func (p *deletePart) rowBytes() int   { return numBytes }

func (p *deletePart) build(lo, hi int) (string, []any, error) {
	return sq.Delete(p.files).Where(sq.Eq{p.fid: p.fids[lo:hi]}).Where("`flags` & 1 = 1").ToSql()
}

func (p *deletePart) restore(*tracker.Batch, int, int) {}

func (p *deletePart) key(i int) rowKey { return rowKey{kind: kindFile, a: p.fids[i]} }

func (p *deletePart) row(i int) rowInfo {
	return rowInfo{key: p.key(i), text: fmt.Sprintf("fid=%d", p.fids[i])}
}

func quoteAll(cols []string) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = "`" + c + "`"
	}
	return out
}
