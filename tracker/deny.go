package tracker

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"
)

// DenyList is an immutable set of address ranges refused service
// (xbt_deny_from_hosts, and IPv6 ranges as an extension). Ranges are
// inclusive; they are sorted and merged at construction so that a lookup is
// one binary search and allocates nothing.
type DenyList struct {
	v4 []v4Range
	v6 []v6Range
}

type v4Range struct{ lo, hi uint32 }

// v6Range holds a range's bounds as (high, low) 64-bit halves, which compare
// like the 16 bytes they came from.
type v6Range struct{ lo, hi u128 }

type u128 struct{ hi, lo uint64 }

func (a u128) cmp(b u128) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, b.lo)
}

func (a u128) next() (u128, bool) {
	if a.lo != ^uint64(0) {
		return u128{a.hi, a.lo + 1}, true
	}
	if a.hi != ^uint64(0) {
		return u128{a.hi + 1, 0}, true
	}
	return a, false
}

func toU128(b [16]byte) u128 {
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// NewDenyList builds a deny list from inclusive ranges: IPv4 ranges as
// (begin, end) host-order integers like xbt_deny_from_hosts, IPv6 ranges as
// (begin, end) 16-byte addresses. Ranges with begin > end are ignored;
// overlapping and adjacent ranges are merged.
func NewDenyList(v4 [][2]uint32, v6 [][2][16]byte) *DenyList {
	d := &DenyList{}
	for _, r := range v4 {
		if r[0] <= r[1] {
			d.v4 = append(d.v4, v4Range{r[0], r[1]})
		}
	}
	slices.SortFunc(d.v4, func(a, b v4Range) int { return cmp.Compare(a.lo, b.lo) })
	out4 := d.v4[:0]
	for _, r := range d.v4 {
		if n := len(out4); n > 0 && (out4[n-1].hi == ^uint32(0) || r.lo <= out4[n-1].hi+1) {
			out4[n-1].hi = max(out4[n-1].hi, r.hi)
			continue
		}
		out4 = append(out4, r)
	}
	d.v4 = out4

	for _, r := range v6 {
		lo, hi := toU128(r[0]), toU128(r[1])
		if lo.cmp(hi) <= 0 {
			d.v6 = append(d.v6, v6Range{lo, hi})
		}
	}
	slices.SortFunc(d.v6, func(a, b v6Range) int { return a.lo.cmp(b.lo) })
	out6 := d.v6[:0]
	for _, r := range d.v6 {
		if n := len(out6); n > 0 {
			last := &out6[n-1]
			nx, ok := last.hi.next()
			if !ok || r.lo.cmp(nx) <= 0 {
				if r.hi.cmp(last.hi) > 0 {
					last.hi = r.hi
				}
				continue
			}
		}
		out6 = append(out6, r)
	}
	d.v6 = out6
	return d
}

// Contains reports whether a is in one of the ranges. IPv4-mapped IPv6
// addresses are checked as IPv4. A nil list contains nothing.
func (d *DenyList) Contains(a netip.Addr) bool {
	if d == nil || !a.IsValid() {
		return false
	}
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		x := binary.BigEndian.Uint32(b[:])
		// First range starting above x; the one before it is the candidate.
		i, _ := slices.BinarySearchFunc(d.v4, x, func(r v4Range, x uint32) int {
			if r.lo <= x {
				return -1
			}
			return 1
		})
		return i > 0 && x <= d.v4[i-1].hi
	}
	x := toU128(a.As16())
	i, _ := slices.BinarySearchFunc(d.v6, x, func(r v6Range, x u128) int {
		if r.lo.cmp(x) <= 0 {
			return -1
		}
		return 1
	})
	return i > 0 && x.cmp(d.v6[i-1].hi) <= 0
}

// Len is the number of (merged) ranges.
func (d *DenyList) Len() int {
	if d == nil {
		return 0
	}
	return len(d.v4) + len(d.v6)
}

// SetDenyList replaces the deny list (nil: deny nobody).
func (t *Tracker) SetDenyList(d *DenyList) { t.deny.Store(d) }

// Denied reports whether a is in the current deny list. Announce and
// Scrape check it themselves (failure ErrHostDenied); a frontend may call it
// to refuse even earlier.
func (t *Tracker) Denied(a netip.Addr) bool { return t.deny.Load().Contains(a) }
