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
// Uploaded, Downloaded, SeedTime and LeechTime are added; Active, Left and
// Mtime overwrite. SeedTime and LeechTime are seconds spent seeding and
// leeching (columns timespent and leechtime, written when the table has
// them).
type FileUserDelta struct {
	Active                                     bool
	Announced, Completed, Uploaded, Downloaded uint64
	SeedTime, LeechTime                        uint64
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

// SnatchEntry is one xbt_snatched row: one completion the engine counted
// (flagCounted) for a known user on a torrent with a fid. A completion on a
// torrent auto-registered in this window, whose fid is not known yet, is not
// logged, just as its xbt_files row gets no completed count.
type SnatchEntry struct {
	Addr     netip.Addr
	UID, Fid uint32
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
	Snatches    []SnatchEntry // completions, in order (xbt_snatched)
}

// Len is the number of rows the batch holds.
func (b *Batch) Len() int {
	if b == nil {
		return 0
	}
	return len(b.Users) + len(b.Files) + len(b.FileUsers) + len(b.NewFiles) +
		len(b.AnnounceLog) + len(b.ScrapeLog) + len(b.Snatches)
}

// newBatch returns an empty batch whose maps are sized for the given
// numbers of entries: Drain passes the previous window's sizes so that the
// first announces of a window do not pay for growing the maps step by step.
func newBatch(nu, nf, nfu int) *Batch {
	return &Batch{
		Users:     make(map[uint32]UserDelta, nu),
		Files:     make(map[uint32]FileDelta, nf),
		FileUsers: make(map[FileUserKey]FileUserDelta, nfu),
		NewFiles:  make(map[InfoHash]int64),
	}
}

// MergeBatches returns older and newer combined as if newer had been
// recorded after older: summed fields add, overwritten fields and NewFiles
// take newer's value where it has the key, log entries keep their order.
// Neither argument is changed; either may be nil.
func MergeBatches(older, newer *Batch) *Batch {
	var o Batch
	if older != nil {
		o = *older
	}
	out := newBatch(len(o.Users), len(o.Files), len(o.FileUsers))
	for _, b := range []*Batch{older, newer} {
		if b != nil {
			out.mergeNewer(b)
		}
	}
	return out
}

// mergeNewer folds n, which is newer than b, into b: summed fields add,
// overwritten fields take n's value.
func (b *Batch) mergeNewer(n *Batch) {
	for k, d := range n.Users {
		o := b.Users[k]
		o.Uploaded = satAdd(o.Uploaded, d.Uploaded)
		o.Downloaded = satAdd(o.Downloaded, d.Downloaded)
		b.Users[k] = o
	}
	for k, d := range n.Files {
		d.Completed = satAdd(d.Completed, b.Files[k].Completed)
		b.Files[k] = d
	}
	for k, d := range n.FileUsers {
		o := b.FileUsers[k]
		d.Announced = satAdd(d.Announced, o.Announced)
		d.Completed = satAdd(d.Completed, o.Completed)
		d.Uploaded = satAdd(d.Uploaded, o.Uploaded)
		d.Downloaded = satAdd(d.Downloaded, o.Downloaded)
		d.SeedTime = satAdd(d.SeedTime, o.SeedTime)
		d.LeechTime = satAdd(d.LeechTime, o.LeechTime)
		b.FileUsers[k] = d
	}
	for k, v := range n.NewFiles {
		b.NewFiles[k] = v
	}
	b.AnnounceLog = append(b.AnnounceLog, n.AnnounceLog...)
	b.ScrapeLog = append(b.ScrapeLog, n.ScrapeLog...)
	b.Snatches = append(b.Snatches, n.Snatches...)
}

// ledgerShards splits the pending ledger so that announces on different
// torrents rarely contend for one mutex. (A single mutex was the first
// design; BenchmarkAnnounceParallel showed it as the top contention point,
// with cores spinning on it while it was held across cache-missing map
// operations.)
const ledgerShards = 32

// The ledger is the pending write-back, sharded by fid: every row keyed by
// a fid (files, files_users) lives in the shard of that fid, so all records
// of one torrent go through one mutex. They are made while the torrent's
// swarm lock is held (lock order: torrent shard, swarm, ledger shard), which
// is what makes "latest wins" true for the overwritten fields: two
// announces on one swarm record in the order they updated it. User rows
// have only summed fields, so they may sit in several shards (whichever the
// announce used) and are added up by Drain. Each critical section is a
// handful of map operations.
type ledger struct {
	shards [ledgerShards]ledgerShard

	// The logs are ordered and off by default: one mutex of their own.
	// Completions are always recorded (they are rare); the writer drops
	// them when the database has no xbt_snatched.
	logMu       sync.Mutex
	announceLog []AnnounceLogEntry
	scrapeLog   []ScrapeLogEntry
	snatches    []SnatchEntry
}

type ledgerShard struct {
	mu sync.Mutex
	b  *Batch // its logs stay empty
	_  [48]byte
}

func (l *ledger) init() {
	for i := range l.shards {
		l.shards[i].b = newBatch(0, 0, 0)
	}
}

// fidShard is the shard holding fid's rows (fids are sequential: modulo
// spreads them evenly). User rows of fid-0 torrents use it with the uid.
func fidShard(fid uint32) int { return int(fid % ledgerShards) }

// hashShard is the shard holding an auto-registered torrent's NewFiles row.
func hashShard(ih *InfoHash) int { return int(ih[19] % ledgerShards) }

func (l *ledger) forFid(fid uint32) *ledgerShard    { return &l.shards[fidShard(fid)] }
func (l *ledger) forHash(ih *InfoHash) *ledgerShard { return &l.shards[hashShard(ih)] }

// announceRecord is what one accepted announce contributes.
type announceRecord struct {
	uid      uint32
	user     bool // a known user (uid may be 0 only when !user)
	fid      uint32
	up, down uint64 // real bytes (xbt_files_users)
	// credited bytes (xbt_users): up and down times the credit factors
	creditUp, creditDown uint64
	complete             uint64 // 1 if this announce counted a completion
	seeders              int
	leechers             int
	active               bool // the user still has a live peer on the torrent
	left                 uint64
	mtime                int64
	// seconds the peer spent seeding or leeching since its previous
	// announce (0 for a first announce or a too-long gap)
	seedTime, leechTime uint32
}

func (l *ledger) recordAnnounce(r *announceRecord) {
	credit := r.user && (r.creditUp|r.creditDown) != 0
	var ls *ledgerShard
	switch {
	case r.fid != 0:
		ls = l.forFid(r.fid)
	case credit:
		ls = l.forFid(r.uid) // fid 0: only a user row; any shard will do
	default:
		return // nothing to write: XBT writes neither for anonymous peers nor fid 0
	}
	ls.mu.Lock()
	b := ls.b
	if credit {
		d := b.Users[r.uid]
		d.Uploaded = satAdd(d.Uploaded, r.creditUp)
		d.Downloaded = satAdd(d.Downloaded, r.creditDown)
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
			fu.Uploaded = satAdd(fu.Uploaded, r.up)
			fu.Downloaded = satAdd(fu.Downloaded, r.down)
			fu.SeedTime = satAdd(fu.SeedTime, uint64(r.seedTime))
			fu.LeechTime = satAdd(fu.LeechTime, uint64(r.leechTime))
			fu.Active, fu.Left, fu.Mtime = r.active, r.left, r.mtime
			b.FileUsers[k] = fu
		}
	}
	ls.mu.Unlock()
}

// fileCounts records a torrent's current counts (and completions to add).
func (l *ledger) fileCounts(fid uint32, completed uint64, seeders, leechers int, mtime int64) {
	ls := l.forFid(fid)
	ls.mu.Lock()
	f := ls.b.Files[fid]
	f.Completed += completed
	f.Seeders, f.Leechers, f.Mtime = seeders, leechers, mtime
	ls.b.Files[fid] = f
	ls.mu.Unlock()
}

// inactive records that uid has no live peer left on fid.
func (l *ledger) inactive(fid, uid uint32, left uint64, mtime int64) {
	ls := l.forFid(fid)
	ls.mu.Lock()
	k := FileUserKey{fid, uid}
	fu := ls.b.FileUsers[k]
	fu.Active, fu.Left, fu.Mtime = false, left, mtime
	ls.b.FileUsers[k] = fu
	ls.mu.Unlock()
}

// deactivate records active = 0 for (fid, uid) without undoing what an
// announce recorded: an entry already pending keeps its left and mtime
// (newer than the database's) and its summed fields; a new entry takes the
// database row's own left and mtime, so the flush changes nothing but
// active.
func (l *ledger) deactivate(fid, uid uint32, left uint64, mtime int64) {
	ls := l.forFid(fid)
	ls.mu.Lock()
	k := FileUserKey{fid, uid}
	fu, ok := ls.b.FileUsers[k]
	if !ok {
		fu.Left, fu.Mtime = left, mtime
	}
	fu.Active = false
	ls.b.FileUsers[k] = fu
	ls.mu.Unlock()
}

func (l *ledger) newFile(ih *InfoHash, ctime int64) {
	ls := l.forHash(ih)
	ls.mu.Lock()
	ls.b.NewFiles[*ih] = ctime
	ls.mu.Unlock()
}

func (l *ledger) logAnnounce(e *AnnounceLogEntry) {
	l.logMu.Lock()
	l.announceLog = append(l.announceLog, *e)
	l.logMu.Unlock()
}

func (l *ledger) logScrape(e *ScrapeLogEntry) {
	l.logMu.Lock()
	l.scrapeLog = append(l.scrapeLog, *e)
	l.logMu.Unlock()
}

func (l *ledger) snatch(e *SnatchEntry) {
	l.logMu.Lock()
	l.snatches = append(l.snatches, *e)
	l.logMu.Unlock()
}

// Drain hands the whole pending ledger over and starts an empty one. Each
// shard's lock is held only to swap a pointer; the shards' batches are then
// combined into one outside any lock (Files and FileUsers rows are disjoint
// between shards; User rows are added up). The caller owns the batch; if
// writing it fails, it gives it back with Restore.
func (t *Tracker) Drain() *Batch {
	l := &t.ledger
	var parts [ledgerShards]*Batch
	for i := range l.shards {
		ls := &l.shards[i]
		// Not presized like the last window: the empty maps would hold that
		// window's memory for a whole interval even when the next one is
		// quiet, and a map grows in steps of at most 1,024 entries anyway.
		fresh := newBatch(0, 0, 0) // allocate outside the lock
		ls.mu.Lock()
		parts[i] = ls.b
		ls.b = fresh
		ls.mu.Unlock()
	}
	l.logMu.Lock()
	alog, slog, snatches := l.announceLog, l.scrapeLog, l.snatches
	l.announceLog, l.scrapeLog, l.snatches = nil, nil, nil
	l.logMu.Unlock()

	// One batch sized for every part at once: merging the parts into the
	// largest one grew its maps step by step, and the rehashing was 13% of
	// a flush's CPU (perf, 260k rows). Files and FileUsers are disjoint
	// between shards; Users may repeat, so their sum is an upper bound.
	var nu, nf, nfu, nn int
	for _, p := range parts {
		nu, nf, nfu, nn = nu+len(p.Users), nf+len(p.Files), nfu+len(p.FileUsers), nn+len(p.NewFiles)
	}
	b := newBatch(nu, nf, nfu)
	if nn > 0 {
		b.NewFiles = make(map[InfoHash]int64, nn)
	}
	for _, p := range parts {
		b.mergeNewer(p)
	}
	b.AnnounceLog, b.ScrapeLog, b.Snatches = alog, slog, snatches
	return b
}

// Restore merges a batch that could not be written back into the pending
// ledger, so nothing is ever lost: summed fields are added (two windows'
// credit both count); for overwritten fields (seeders, leechers, active,
// left, mtime) and NewFiles the ledger's own value wins where it has the
// key, because it is newer; log entries are re-queued ahead of newer ones.
// b is taken over: the caller must not use it afterwards.
//
// b is split by shard first; each shard's part is then merged with its lock
// held only for swaps: the current shard batch is swapped out, merged into
// the part, and the part swapped in, merging under the lock only what
// announces recorded in between.
func (t *Tracker) Restore(b *Batch) {
	if b == nil {
		return
	}
	l := &t.ledger
	var parts [ledgerShards]*Batch
	part := func(i int) *Batch {
		if parts[i] == nil {
			parts[i] = newBatch(0, 0, 0)
		}
		return parts[i]
	}
	for uid, d := range b.Users {
		part(fidShard(uid)).Users[uid] = d
	}
	for fid, d := range b.Files {
		part(fidShard(fid)).Files[fid] = d
	}
	for k, d := range b.FileUsers {
		part(fidShard(k.Fid)).FileUsers[k] = d
	}
	for ih, ctime := range b.NewFiles {
		part(hashShard(&ih)).NewFiles[ih] = ctime
	}
	for i, p := range parts {
		if p == nil {
			continue
		}
		ls := &l.shards[i]
		mid := newBatch(0, 0, 0)
		ls.mu.Lock()
		cur := ls.b
		ls.b = mid
		ls.mu.Unlock()
		p.mergeNewer(cur)
		ls.mu.Lock()
		p.mergeNewer(ls.b) // what arrived during the merge above
		ls.b = p
		ls.mu.Unlock()
	}
	if len(b.AnnounceLog)+len(b.ScrapeLog)+len(b.Snatches) > 0 {
		l.logMu.Lock()
		l.announceLog = append(b.AnnounceLog, l.announceLog...)
		l.scrapeLog = append(b.ScrapeLog, l.scrapeLog...)
		l.snatches = append(b.Snatches, l.snatches...)
		l.logMu.Unlock()
	}
}

// LedgerLen is the number of rows pending write-back. It may count a uid
// credited through several ledger shards more than once (Drain merges
// them), so it is an upper bound of the batch Drain would return.
func (t *Tracker) LedgerLen() int {
	l := &t.ledger
	n := 0
	for i := range l.shards {
		ls := &l.shards[i]
		ls.mu.Lock()
		n += ls.b.Len()
		ls.mu.Unlock()
	}
	l.logMu.Lock()
	n += len(l.announceLog) + len(l.scrapeLog) + len(l.snatches)
	l.logMu.Unlock()
	return n
}
