package loadgen

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram is a log-linear latency histogram in the manner of HDR
// histograms: values below 128 ns are exact, larger ones fall into one of 64
// buckets per power of two, so a quantile is within 1/64 (1.6%) of the true
// value whatever its magnitude. Record is safe for concurrent use and does
// not allocate.
type Histogram struct {
	counts [histBuckets]atomic.Uint64
	total  atomic.Uint64
	max    atomic.Uint64
}

const (
	histSubBits = 7
	histSub     = 1 << histSubBits // exact values below this
	histHalf    = histSub / 2      // buckets per power of two above it
	histBuckets = histSub + (64-histSubBits)*histHalf
)

// histIndex maps a value to its bucket.
func histIndex(v uint64) int {
	if v < histSub {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits // >= 1
	return histSub + (shift-1)*histHalf + int(v>>uint(shift)) - histHalf
}

// histLow and histHigh bound the values of bucket i: [low, high].
func histLow(i int) uint64 {
	if i < histSub {
		return uint64(i)
	}
	i -= histSub
	shift := uint(i/histHalf + 1)
	return uint64(i%histHalf+histHalf) << shift
}

func histHigh(i int) uint64 {
	if i < histSub {
		return uint64(i)
	}
	i -= histSub
	shift := uint(i/histHalf + 1)
	return (uint64(i%histHalf+histHalf+1) << shift) - 1
}

// Record adds one latency.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[histIndex(v)].Add(1)
	h.total.Add(1)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
}

// Count returns the number of values recorded.
func (h *Histogram) Count() uint64 { return h.total.Load() }

// Max returns the largest value recorded (exact).
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Quantile returns the value below which a fraction q (0..1) of the recorded
// values fall: the upper bound of the bucket holding the q-th value, never
// more than the maximum. 0 when nothing was recorded.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.5)
	rank = max(rank, 1)
	rank = min(rank, n)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return time.Duration(min(histHigh(i), h.max.Load()))
		}
	}
	return h.Max()
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	for i := range o.counts {
		if c := o.counts[i].Load(); c != 0 {
			h.counts[i].Add(c)
		}
	}
	h.total.Add(o.total.Load())
	for {
		m, v := h.max.Load(), o.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
}

// Reset empties h. Not atomic with respect to concurrent Records.
func (h *Histogram) Reset() {
	for i := range h.counts {
		h.counts[i].Store(0)
	}
	h.total.Store(0)
	h.max.Store(0)
}
