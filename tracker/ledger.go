package tracker

import (
	"net/netip"
	"sync"
)

// UserDelta is what to add to one xbt_users row.
type UserDelta struct {
	Uploaded, Downloaded uint64
}

// FileDelta is one xbt_files row's update: Completed is added, the other
// fields overwrite (the latest value wins).
type FileDelta struct {
	Completed         uint64
	Seeders, Leechers int
	Mtime             int64
}

// FileUserKey is the primary key of xbt_files_users.
type FileUserKey struct {
	Fid, UID uint32
}

// FileUserDelta is one xbt_files_users row's update: Announced, Completed,
// Uploaded and Downloaded are added; Active, Left and Mtime overwrite.
type FileUserDelta struct {
	Active                                     bool
	Announced, Completed, Uploaded, Downloaded uint64
	Left                                       uint64
	Mtime                                      int64
}

// AnnounceLogEntry is one xbt_announce_log row (Settings.LogAnnounce).
type AnnounceLogEntry struct {
	Addr                       netip.Addr
	Port                       uint16
	Event                      Event
	InfoHash                   InfoHash
	PeerID                     PeerID
	Uploaded, Downloaded, Left uint64
	UID                        uint32
	Mtime                      int64
}

// ScrapeLogEntry is one xbt_scrape_log row (Settings.LogScrape). InfoHash
// is the first hash requested (zero for a full scrape); XBT's table has no
// such column, a writer may ignore it.
type ScrapeLogEntry struct {
	Addr     netip.Addr
	InfoHash InfoHash
	UID      uint32
	Mtime    int64
}

// Batch is everything to write back to the database, coalesced by primary
// key: one entry per uid, per fid and per (fid,uid) however many announces
// touched it.
type Batch struct {
	Users       map[uint32]UserDelta
	Files       map[uint32]FileDelta
	FileUsers   map[FileUserKey]FileUserDelta
	NewFiles    map[InfoHash]int64 // auto-registered torrents: ctime
	AnnounceLog []AnnounceLogEntry
	ScrapeLog   []ScrapeLogEntry
}

// Len is the number of rows the batch holds.
func (b *Batch) Len() int {
	if b == nil {
		return 0
	}
	return len(b.Users) + len(b.Files) + len(b.FileUsers) + len(b.NewFiles) +
		len(b.AnnounceLog) + len(b.ScrapeLog)
}

func newBatch(hint *Batch) *Batch {
	// Size the new maps like the previous window's so that the first
	// announces of a window do not pay for growing them step by step.
	var nu, nf, nfu int
	if hint != nil {
		nu, nf, nfu = len(hint.Users), len(hint.Files), len(hint.FileUsers)
	}
	return &Batch{
		Users:     make(map[uint32]UserDelta, nu),
		Files:     make(map[uint32]FileDelta, nf),
		FileUsers: make(map[FileUserKey]FileUserDelta, nfu),
		NewFiles:  make(map[InfoHash]int64),
	}
}

// fill gives a batch handed to Restore the maps it may lack.
func (b *Batch) fill() {
	if b.Users == nil {
		b.Users = make(map[uint32]UserDelta)
	}
	if b.Files == nil {
		b.Files = make(map[uint32]FileDelta)
	}
	if b.FileUsers == nil {
		b.FileUsers = make(map[FileUserKey]FileUserDelta)
	}
	if b.NewFiles == nil {
		b.NewFiles = make(map[InfoHash]int64)
	}
}

// mergeNewer folds n, which is newer than b, into b: summed fields add,
// overwritten fields take n's value.
func (b *Batch) mergeNewer(n *Batch) {
	for k, d := range n.Users {
		o := b.Users[k]
		o.Uploaded += d.Uploaded
		o.Downloaded += d.Downloaded
		b.Users[k] = o
	}
	for k, d := range n.Files {
		d.Completed += b.Files[k].Completed
		b.Files[k] = d
	}
	for k, d := range n.FileUsers {
		o := b.FileUsers[k]
		d.Announced += o.Announced
		d.Completed += o.Completed
		d.Uploaded += o.Uploaded
		d.Downloaded += o.Downloaded
		b.FileUsers[k] = d
	}
	for k, v := range n.NewFiles {
		b.NewFiles[k] = v
	}
	b.AnnounceLog = append(b.AnnounceLog, n.AnnounceLog...)
	b.ScrapeLog = append(b.ScrapeLog, n.ScrapeLog...)
}

// ledger is the pending write-back. A single mutex guards it: every
// critical section is a handful of map operations (well under a
// microsecond), and BenchmarkAnnounceParallel shows no contention worth
// sharding for. Callers may hold a swarm lock while recording (lock order:
// torrent shard, swarm, ledger), which is what makes "latest wins" true for
// the per-file and per-(fid,uid) overwritten fields: two announces on one
// swarm record in the order they updated it.
type ledger struct {
	mu sync.Mutex
	b  *Batch
}

func (l *ledger) init() { l.b = newBatch(nil) }

// announceRecord is what one accepted announce contributes.
type announceRecord struct {
	uid      uint32
	user     bool // a known user (uid may be 0 only when !user)
	fid      uint32
	up, down uint64
	complete uint64 // 1 if this announce counted a completion
	seeders  int
	leechers int
	active   bool // the user still has a live peer on the torrent
	left     uint64
	mtime    int64
}

func (l *ledger) recordAnnounce(r *announceRecord) {
	if !(r.user && (r.up|r.down) != 0) && r.fid == 0 {
		return // nothing to write: XBT writes neither for anonymous peers nor fid 0
	}
	l.mu.Lock()
	b := l.b
	if r.user && (r.up|r.down) != 0 {
		d := b.Users[r.uid]
		d.Uploaded += r.up
		d.Downloaded += r.down
		b.Users[r.uid] = d
	}
	if r.fid != 0 {
		f := b.Files[r.fid]
		f.Completed += r.complete
		f.Seeders, f.Leechers, f.Mtime = r.seeders, r.leechers, r.mtime
		b.Files[r.fid] = f
		if r.user {
			k := FileUserKey{r.fid, r.uid}
			fu := b.FileUsers[k]
			fu.Announced++
			fu.Completed += r.complete
			fu.Uploaded += r.up
			fu.Downloaded += r.down
			fu.Active, fu.Left, fu.Mtime = r.active, r.left, r.mtime
			b.FileUsers[k] = fu
		}
	}
	l.mu.Unlock()
}

// fileCounts records a torrent's current counts (and completions to add).
func (l *ledger) fileCounts(fid uint32, completed uint64, seeders, leechers int, mtime int64) {
	l.mu.Lock()
	f := l.b.Files[fid]
	f.Completed += completed
	f.Seeders, f.Leechers, f.Mtime = seeders, leechers, mtime
	l.b.Files[fid] = f
	l.mu.Unlock()
}

// inactive records that uid has no live peer left on fid.
func (l *ledger) inactive(fid, uid uint32, left uint64, mtime int64) {
	l.mu.Lock()
	k := FileUserKey{fid, uid}
	fu := l.b.FileUsers[k]
	fu.Active, fu.Left, fu.Mtime = false, left, mtime
	l.b.FileUsers[k] = fu
	l.mu.Unlock()
}

func (l *ledger) newFile(ih *InfoHash, ctime int64) {
	l.mu.Lock()
	l.b.NewFiles[*ih] = ctime
	l.mu.Unlock()
}

func (l *ledger) logAnnounce(e *AnnounceLogEntry) {
	l.mu.Lock()
	l.b.AnnounceLog = append(l.b.AnnounceLog, *e)
	l.mu.Unlock()
}

func (l *ledger) logScrape(e *ScrapeLogEntry) {
	l.mu.Lock()
	l.b.ScrapeLog = append(l.b.ScrapeLog, *e)
	l.mu.Unlock()
}

// Drain hands the whole pending ledger over and starts an empty one. The
// lock is held only to swap a pointer. The caller owns the batch; if writing
// it fails, it gives it back with Restore.
func (t *Tracker) Drain() *Batch {
	l := &t.ledger
	l.mu.Lock()
	hint := l.b
	l.mu.Unlock()
	fresh := newBatch(hint) // allocate outside the lock
	l.mu.Lock()
	b := l.b
	l.b = fresh
	l.mu.Unlock()
	return b
}

// Restore merges a batch that could not be written back into the pending
// ledger, so nothing is ever lost: summed fields are added (two windows'
// credit both count); for overwritten fields (seeders, leechers, active,
// left, mtime) and NewFiles the ledger's own value wins where it has the
// key, because it is newer; log entries are re-queued ahead of newer ones.
// b is taken over: the caller must not use it afterwards.
//
// The merge runs mostly outside the lock: the current ledger is swapped out,
// merged into b, and b swapped back in; only what announces recorded in
// between is merged under the lock.
func (t *Tracker) Restore(b *Batch) {
	if b == nil {
		return
	}
	b.fill()
	l := &t.ledger
	mid := newBatch(nil)
	l.mu.Lock()
	cur := l.b
	l.b = mid
	l.mu.Unlock()

	b.mergeNewer(cur)

	l.mu.Lock()
	b.mergeNewer(l.b) // what arrived during the merge above
	l.b = b
	l.mu.Unlock()
}

// LedgerLen is the number of rows pending write-back.
func (t *Tracker) LedgerLen() int {
	l := &t.ledger
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}
