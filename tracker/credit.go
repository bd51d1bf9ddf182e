package tracker

import (
	"math"
	"sync"
	"sync/atomic"
)

// satAdd is a + b, saturating at the largest uint64: a byte counter that
// would wrap is clamped instead, so no sum of deltas can turn a huge credit
// into a tiny one.
func satAdd(a, b uint64) uint64 {
	s := a + b
	if s < a {
		return math.MaxUint64
	}
	return s
}

// maxCappedUIDs bounds the uids remembered between two TakeCappedCredits:
// a flood of lying clients costs a fixed amount of memory (they are still
// counted, just not named).
const maxCappedUIDs = 1000

// CappedCredit is one user's announces whose delta was over
// Settings.MaxCreditPerAnnounce since the last TakeCappedCredits.
type CappedCredit struct {
	UID       uint32
	Announces int
	// Uploaded and Downloaded are the largest refused deltas (0: that
	// counter was never over the cap).
	Uploaded, Downloaded uint64
}

// creditCaps records announces refused credit by the cap: a counter for the
// metric, and the uids since the last take for the log.
type creditCaps struct {
	total atomic.Uint64

	mu      sync.Mutex
	byUID   map[uint32]*CappedCredit
	unnamed int // announces of uids past maxCappedUIDs
}

func (c *creditCaps) record(uid uint32, up, down uint64) {
	c.total.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.byUID[uid]
	if e == nil {
		if len(c.byUID) >= maxCappedUIDs {
			c.unnamed++
			return
		}
		if c.byUID == nil {
			c.byUID = map[uint32]*CappedCredit{}
		}
		e = &CappedCredit{UID: uid}
		c.byUID[uid] = e
	}
	e.Announces++
	e.Uploaded = max(e.Uploaded, up)
	e.Downloaded = max(e.Downloaded, down)
}

// capCredit applies Settings.MaxCreditPerAnnounce to one announce's
// deltas: a counter over the cap credits nothing (the other counter is
// unaffected) and the announce is recorded for the log and the metric.
func (t *Tracker) capCredit(c *config, uid uint32, up, down uint64) (uint64, uint64) {
	lim := c.s.MaxCreditPerAnnounce
	if lim == 0 || (up <= lim && down <= lim) {
		return up, down
	}
	var refusedUp, refusedDown uint64
	if up > lim {
		refusedUp, up = up, 0
	}
	if down > lim {
		refusedDown, down = down, 0
	}
	t.caps.record(uid, refusedUp, refusedDown)
	return up, down
}

// TakeCappedCredits returns the users whose announces were refused credit
// by MaxCreditPerAnnounce since the last call (at most 1,000 of them, plus
// the number of announces of the users past that), and forgets them. The
// sync loop logs them once per write interval.
func (t *Tracker) TakeCappedCredits() (users []CappedCredit, unnamed int) {
	c := &t.caps
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.byUID {
		users = append(users, *e)
	}
	unnamed = c.unnamed
	c.byUID, c.unnamed = nil, 0
	return users, unnamed
}
