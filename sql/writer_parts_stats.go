// The parts of a Batch that carry statistics: xbt_users, xbt_files (and the
// torrents to register in it) and xbt_files_users.

package sql

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

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
	b = fmt.Appendf(b, ") v STRAIGHT_JOIN %s t ON t.%s = v.k SET t.%s = t.%s + v.c, ",
		p.e.files, p.e.fid, p.e.completed, p.e.completed)
	return string(p.appendCounts(b)), nil, nil
}

func (p *filePart) buildClamped(lo, hi int) (string, []any, error) {
	b := make([]byte, 0, 400+(hi-lo)*(5*numBytes+18))
	b = append(b, "UPDATE ("...)
	aliases := []string{"k", "c", "l", "s", "m"}
	for i, r := range p.rows[lo:hi] {
		b = appendUnionRow(b, i == 0, aliases, uint64(r.fid), min(r.d.Completed, p.e.maxFilesCompleted),
			uint64(max(r.d.Leechers, 0)), uint64(max(r.d.Seeders, 0)), unixTime(r.d.Mtime))
	}
	b = fmt.Appendf(b, ") v STRAIGHT_JOIN %s t ON t.%s = v.k SET t.%s = t.%s + LEAST(v.c, %d - t.%s), ",
		p.e.files, p.e.fid, p.e.completed, p.e.completed, p.e.maxFilesCompleted, p.e.completed)
	return string(p.appendCounts(b)), nil, nil
}

// appendCounts appends the overwritten columns' assignments. With
// newestWins the counts change only when the delta is not older than the
// row: a multi-table UPDATE assigns in no guaranteed order, but since mtime
// becomes GREATEST(mtime, v.m), "v.m >= mtime" has the same value before
// and after it is assigned.
func (p *filePart) appendCounts(b []byte) []byte {
	if !p.e.newestWins {
		return fmt.Appendf(b, "t.%s = v.l, t.%s = v.s, t.`mtime` = v.m", p.e.leechers, p.e.seeders)
	}
	return fmt.Appendf(b, "t.%s = IF(v.m >= t.`mtime`, v.l, t.%s), t.%s = IF(v.m >= t.`mtime`, v.s, t.%s), t.`mtime` = GREATEST(t.`mtime`, v.m)",
		p.e.leechers, p.e.leechers, p.e.seeders, p.e.seeders)
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
// overwritten. The optional columns announced, timespent (seconds seeding,
// Gazelle's name) and leechtime (seconds leeching) are written, summed, only
// when the table has them (fileUserCols, from the Schema). VALUES() in the update clause is the form MariaDB and MySQL 8
// both accept (MySQL's row alias is rejected by MariaDB).
type fileUserPart struct {
	e *writerEnv
	fileUserCols
	rows []fileUserRow
}

// fileUserCols says which optional xbt_files_users columns exist.
type fileUserCols struct {
	announced, timeSpent, leechTime bool
}

type fileUserRow struct {
	k tracker.FileUserKey
	d tracker.FileUserDelta
}

func newFileUserPart(e *writerEnv, oc fileUserCols, m map[tracker.FileUserKey]tracker.FileUserDelta) *fileUserPart {
	p := &fileUserPart{e: e, fileUserCols: oc, rows: make([]fileUserRow, 0, len(m))}
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
	n := 8
	for _, on := range []bool{p.announced, p.timeSpent, p.leechTime} {
		if on {
			n++
		}
	}
	return n
}
func (p *fileUserPart) fixedBytes() int {
	n := 640
	for _, on := range []bool{p.timeSpent, p.leechTime} {
		if on {
			n += 128 // column name, and the clamped sum clause with its limit
		}
	}
	return n
}
func (p *fileUserPart) rowBytes() int { return 4 + p.cols()*numBytes }

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
	// overwrite is the update clause of an overwritten column. With
	// newestWins it keeps the row's value when the row's mtime is newer
	// (another instance announced since); mtime becomes the greater of the
	// two, which leaves the condition's value the same whichever order the
	// assignments run in.
	overwrite := func(col string) string {
		if e.newestWins {
			return "`" + col + "` = IF(VALUES(`mtime`) >= `mtime`, VALUES(`" + col + "`), `" + col + "`), "
		}
		return "`" + col + "` = VALUES(`" + col + "`), "
	}
	mtime := "`mtime` = VALUES(`mtime`)"
	if e.newestWins {
		mtime = "`mtime` = GREATEST(`mtime`, VALUES(`mtime`))"
	}
	upd := overwrite("active")
	if p.announced {
		cols = append(cols, "`announced`")
		upd += sum("announced", e.maxFUAnnounced)
	}
	if p.timeSpent {
		cols = append(cols, "`timespent`")
		upd += sum("timespent", e.maxFUTimeSpent)
	}
	if p.leechTime {
		cols = append(cols, "`leechtime`")
		upd += sum("leechtime", e.maxFULeechTime)
	}
	cols = append(cols, "`completed`", "`downloaded`", "`left`", "`uploaded`", "`mtime`")
	upd += sum("completed", e.maxFUCompleted) + sum("downloaded", e.maxFUDown) +
		overwrite("left") + sum("uploaded", e.maxFUUp) + mtime
	vals := make([]uint64, 0, len(cols))
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
		vals = append(vals[:0], uint64(r.k.Fid), uint64(r.k.UID), active)
		if p.announced {
			vals = append(vals, capped(r.d.Announced, e.maxFUAnnounced))
		}
		if p.timeSpent {
			vals = append(vals, capped(r.d.SeedTime, e.maxFUTimeSpent))
		}
		if p.leechTime {
			vals = append(vals, capped(r.d.LeechTime, e.maxFULeechTime))
		}
		vals = append(vals, capped(r.d.Completed, e.maxFUCompleted), capped(r.d.Downloaded, e.maxFUDown),
			r.d.Left, capped(r.d.Uploaded, e.maxFUUp), unixTime(r.d.Mtime))
		b = appendTuple(b, vals...)
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
