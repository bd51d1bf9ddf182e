package tracker

import (
	"math"
	"math/bits"
	"sync"
)

// Credit multipliers: freeleech, neutral leech, double upload, class
// factors and personal freeleech tokens (issue 15).
//
// What an announce credits to a user (xbt_users.uploaded and downloaded) is
// the delta it reports times three factors in percent: the torrent's, the
// user's and the site's (Settings.UpMulti and DownMulti); a valid token
// makes the download factor 0. The real bytes still go to the per-torrent
// row (xbt_files_users), so a catalog can show both.
//
// The product of three percentages has the denominator 100³ = 10⁶; the
// sub-byte remainder of each credit is carried per user and counter into
// the next one (carryStore), so rounding loses nothing across announces:
// three announces of 1 byte at 50 % credit 2 bytes, not 0 or 3. The
// arithmetic is 128-bit and saturates, like every sum in the ledger.

// MaxPercent is the largest factor a Multiplier holds (1,000 times);
// larger values are clamped to it. Three of them multiplied still fit in 64
// bits, and no site gives more.
const MaxPercent = 100_000

// creditScale is the denominator of three percent factors multiplied.
const creditScale = 100 * 100 * 100

// Multiplier is a credit factor in percent: 100 credits the bytes as
// reported, 0 credits nothing (freeleech for a download factor), 200
// credits twice. Its zero value is 100 %, so a Settings or Factors left
// unset credits normally; build other values with Percent.
type Multiplier struct {
	off int32 // percent − 100
}

// Percent returns the multiplier of p percent (clamped to MaxPercent).
func Percent(p uint32) Multiplier {
	return Multiplier{off: int32(min(p, MaxPercent)) - 100} //nolint:gosec // G115: min(p, MaxPercent) ≤ 100,000 fits an int32
}

// Percent is the factor in percent.
func (m Multiplier) Percent() uint32 { return uint32(m.off + 100) } //nolint:gosec // G115: off ≥ -100 by construction (Percent clamps p ≥ 0)

// Factors are the upload and download multipliers of one torrent or user.
// The zero value is 100 % each: normal credit.
type Factors struct {
	Up, Down Multiplier
}

// CreditRules are the per-torrent and per-user factors and the freeleech
// tokens the catalog set: only rows that are not 100 % each, and only
// tokens not expired when read. The engine never changes the maps: the
// caller hands them over to SetCreditRules and must not change them
// afterwards.
type CreditRules struct {
	Torrents map[uint32]Factors // by fid (xbt_files.up_multi, down_multi)
	Users    map[uint32]Factors // by uid (xbt_users.up_multi, down_multi)
	// Tokens: personal freeleech (xbt_freeleech_tokens); the value is the
	// Unix time the token expires. While now < expires, the user's download
	// on that torrent is credited nothing.
	Tokens map[FileUserKey]int64
}

func (r *CreditRules) empty() bool {
	return r == nil || len(r.Torrents)+len(r.Users)+len(r.Tokens) == 0
}

// SetCreditRules replaces the per-torrent and per-user factors and the
// tokens; nil (or all maps empty) means none. Announces already running
// finish with the old rules.
func (t *Tracker) SetCreditRules(r *CreditRules) {
	if r.empty() {
		r = nil // one nil test per announce in the common case
	}
	t.credit.Store(r)
}

// CreditRules returns the rules last given to SetCreditRules (nil: none).
// The maps are shared: do not change them.
func (t *Tracker) CreditRules() *CreditRules { return t.credit.Load() }

// multiply returns what an announce's real deltas credit the user: each
// times its torrent × user × site factor, plus the user's carried
// remainder. The common case (every factor 100 %) returns them unchanged
// without touching the carry.
func (t *Tracker) multiply(c *config, uid, fid uint32, now int64, up, down uint64) (uint64, uint64) {
	fUp, fDown := c.siteUp*100*100, c.siteDown*100*100
	if r := t.credit.Load(); r != nil {
		var tf, uf Factors
		if fid != 0 {
			tf = r.Torrents[fid]
		}
		uf = r.Users[uid]
		fUp = c.siteUp * uint64(tf.Up.Percent()) * uint64(uf.Up.Percent())
		fDown = c.siteDown * uint64(tf.Down.Percent()) * uint64(uf.Down.Percent())
		if fid != 0 && len(r.Tokens) != 0 {
			if exp, ok := r.Tokens[FileUserKey{fid, uid}]; ok && now < exp {
				fDown = 0
			}
		}
	}
	if fUp == creditScale && fDown == creditScale {
		return up, down
	}
	return t.carry.scale(uid, up, fUp, down, fDown)
}

// carryShards spreads the carried remainders over several mutexes; only
// announces with a factor other than 100 % take one.
const carryShards = 32

// carryStore holds, per user, the millionths of a byte each counter's
// credits have left over. An entry whose remainders are both 0 is deleted,
// so the store holds at most one entry per user credited through a factor.
// It is not saved in the state file: a restart drops less than one byte per
// user and counter.
type carryStore struct {
	shards [carryShards]carryShard
}

type carryShard struct {
	mu sync.Mutex
	m  map[uint32][2]uint32 // uid → remainders (up, down), each < creditScale
	_  [40]byte
}

// scale credits up×fUp and down×fDown (factors over creditScale) with uid's
// carried remainders, and keeps the new remainders.
func (cs *carryStore) scale(uid uint32, up, fUp, down, fDown uint64) (uint64, uint64) {
	sh := &cs.shards[uid%carryShards]
	sh.mu.Lock()
	r := sh.m[uid]
	up, r[0] = scaleCredit(up, fUp, r[0])
	down, r[1] = scaleCredit(down, fDown, r[1])
	switch {
	case r != [2]uint32{}:
		if sh.m == nil {
			sh.m = make(map[uint32][2]uint32)
		}
		sh.m[uid] = r
	case sh.m != nil:
		delete(sh.m, uid)
	}
	sh.mu.Unlock()
	return up, down
}

// carried returns uid's remainders (tests).
func (cs *carryStore) carried(uid uint32) [2]uint32 {
	sh := &cs.shards[uid%carryShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.m[uid]
}

// scaleCredit returns (delta × f + carry) / creditScale and the remainder,
// in 128-bit arithmetic; a quotient over 64 bits saturates (and carries
// nothing).
func scaleCredit(delta, f uint64, carry uint32) (uint64, uint32) {
	hi, lo := bits.Mul64(delta, f)
	var c uint64
	lo, c = bits.Add64(lo, uint64(carry), 0)
	hi += c
	if hi >= creditScale {
		return math.MaxUint64, 0
	}
	q, rem := bits.Div64(hi, lo, creditScale)
	return q, uint32(rem) //nolint:gosec // G115: rem < creditScale
}
