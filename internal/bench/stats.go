package bench

import (
	"math"
	"slices"
	"time"
)

// Percentile returns the q-th percentile (0 < q ≤ 100) of samples by the
// nearest-rank method: the smallest sample with at least q% of the samples at
// or below it. It sorts samples in place and returns 0 for no samples.
func Percentile(samples []time.Duration, q float64) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	slices.Sort(samples)
	rank := int(math.Ceil(q / 100 * float64(len(samples))))
	rank = max(1, min(rank, len(samples)))
	return samples[rank-1]
}

// Median returns the median of xs (the mean of the middle two for an even
// count) without modifying xs; 0 for none.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mibPerSec(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) / (1 << 20) / d.Seconds()
}

func perSec(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
