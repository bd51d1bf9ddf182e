package loadgen

import (
	"math"
	"math/rand/v2"
	"sort"
)

// Zipf picks ranks 0..n-1 with probability proportional to 1/(rank+1)^s:
// with s = 1 and 100,000 torrents the most popular torrent gets 8% of the
// peers, the tenth 0.8%, and half of the torrents share about 6% (a few
// huge swarms and a long tail). s = 0 is uniform. Unlike math/rand's Zipf it
// accepts any s >= 0. A Zipf is read-only once built: share it between
// goroutines, each with its own *rand.Rand.
type Zipf struct {
	cdf []float64 // cdf[i] = P(rank <= i), cdf[n-1] = 1
}

// NewZipf builds the picker for n >= 1 ranks and exponent s >= 0.
func NewZipf(n int, s float64) *Zipf {
	z := &Zipf{cdf: make([]float64, n)}
	sum := 0.0
	for i := range n {
		sum += math.Pow(float64(i+1), -s)
		z.cdf[i] = sum
	}
	for i := range z.cdf {
		z.cdf[i] /= sum
	}
	z.cdf[n-1] = 1
	return z
}

// N returns the number of ranks.
func (z *Zipf) N() int { return len(z.cdf) }

// P returns the probability of rank i.
func (z *Zipf) P(i int) float64 {
	if i == 0 {
		return z.cdf[0]
	}
	return z.cdf[i] - z.cdf[i-1]
}

// Pick returns a rank drawn with r.
func (z *Zipf) Pick(r *rand.Rand) int {
	u := r.Float64()
	return sort.SearchFloat64s(z.cdf, u) // first i with cdf[i] >= u
}
